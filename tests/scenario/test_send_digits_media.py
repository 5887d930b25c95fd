"""SWML send_digits on both media kinds, through `CallMedia.send_dtmf`: RTP sends RFC 4733
events (or refuses when the peer negotiated no telephone-event); a WebRTC leg refuses with
`DtmfUnsupported`, which the verb turns into its clean failure result and one log line."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from mediaserver.kernel.call import Call
from mediaserver.kernel.media import CallMedia, DtmfUnsupported, MediaParams, MediaStream
from mediaserver.kernel.verbs.misc import send_digits
from mediaserver.logs import CallEventLog
from mediaserver.swml.effects import SendDigits
from mediaserver.transport.webrtc import WebRtcMedia
from tests.support.fakes import FakeSignal


def make_call(media: CallMedia) -> tuple[Call, list[bytes]]:
    sent: list[bytes] = []
    call = Call(
        "digits-1",
        from_uri="a",
        to_uri="b",
        media=media,
        signal=FakeSignal(),
        send_media=sent.append,
        event_log=CallEventLog("digits-1"),
    )
    return call, sent


async def run_verb(call: Call, digits: str) -> dict[str, Any]:
    async def tick() -> None:
        now = 0
        while True:
            now += 20_000_000
            call.on_tick(now, 0.0)
            await asyncio.sleep(0.001)

    ticker = asyncio.ensure_future(tick())
    try:
        result = await asyncio.wait_for(send_digits(None, call, SendDigits(path="main[0]", digits=digits)), 5)  # type: ignore[arg-type]
    finally:
        ticker.cancel()
    return dict(result.variables)


def failures(call: Call) -> list[dict[str, Any]]:
    return [e for e in call.events.events if e["event"] == "send_digits_failed"]


async def test_rtp_with_telephone_event_sends_the_digits() -> None:
    call, sent = make_call(MediaStream(MediaParams("PCMU", 0, 8000, 101), "t", rng=random.Random(1)))
    assert await run_verb(call, "1#") == {"send_digits_result": "success"}
    assert any(len(d) > 1 and (d[1] & 0x7F) == 101 for d in sent)
    assert failures(call) == []


async def test_rtp_without_telephone_event_fails_cleanly() -> None:
    call, sent = make_call(MediaStream(MediaParams("PCMU", 0, 8000, None), "t", rng=random.Random(1)))
    assert await run_verb(call, "1") == {"send_digits_result": "failed"}
    [failure] = failures(call)
    assert "telephone-event" in failure["error"] and failure["path"] == "main[0]"


async def test_a_webrtc_leg_refuses_with_a_clear_reason_and_the_verb_fails_cleanly() -> None:
    media = WebRtcMedia()
    with pytest.raises(DtmfUnsupported, match="WebRTC legs carry no RFC 4733"):
        media.send_dtmf("1")
    call, sent = make_call(media)
    assert await run_verb(call, "12") == {"send_digits_result": "failed"}
    [failure] = failures(call)
    assert "WebRTC legs carry no RFC 4733" in failure["error"]
    assert not call.is_over  # the call goes on
    assert sent == []  # aiortc sends by itself: nothing went out as datagrams
