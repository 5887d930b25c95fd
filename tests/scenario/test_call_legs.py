"""The one call-leg lifecycle (kernel/legs.py) that SIP inbound, SIP outbound and WebRTC share:
the Call is created, logged, ticked and owned; whatever ends it (the script returning, the
far end hanging up, a failed script, cancellation) the ticker lets go of it, `call_ended` is
recorded and the front end's teardown runs exactly once."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from mediaserver.clock import ManualClock
from mediaserver.errors import HangupCause
from mediaserver.events import CallStarted
from mediaserver.kernel.call import Call
from mediaserver.kernel.eventbus import EventBus
from mediaserver.kernel.legs import LegLifecycle, wait_ended
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.taps import DigitSource
from mediaserver.kernel.tick import MediaTicker
from mediaserver.transport.webrtc import WebRtcMedia
from tests.support.fakes import FakeSignal


def rtp_media() -> MediaStream:
    return MediaStream(MediaParams("PCMU", 0, 8000, 101), "t", rng=random.Random(1))


class Front:
    """A front end's side of a leg: its signal, what it sent, and its teardowns."""

    def __init__(self) -> None:
        self.signal = FakeSignal()
        self.sent: list[bytes] = []
        self.torn_down: list[str] = []

    def teardown(self, call: Call) -> None:
        self.torn_down.append(call.call_id)


def names(call: Call) -> list[str]:
    return [e["event"] for e in call.events.events]


async def settle(task_set: set[asyncio.Task[None]]) -> None:
    if task_set:
        await asyncio.wait(set(task_set), timeout=2)


async def test_a_leg_is_ticked_and_owned_until_the_far_end_hangs_up_then_torn_down_once() -> None:
    ticker = MediaTicker(ManualClock())
    legs = LegLifecycle(ticker, EventBus())
    front = Front()
    call = legs.open(
        "leg-1",
        from_uri="sip:a@x",
        to_uri="sip:b@y",
        media=rtp_media(),
        signal=front.signal,
        send_media=front.sent.append,
        script=wait_ended,
        teardown=front.teardown,
        info={"type": "sip"},
        started=CallStarted(direction="outbound", codec="PCMU"),
    )
    assert ticker.size == 1 and legs.live == {"leg-1": call}
    assert call.events.events[0]["event"] == "call_started" and call.events.events[0]["direction"] == "outbound"
    assert call.info == {"type": "sip"}
    call.answer()
    ticker.run_due(20_000_000)
    assert front.sent  # the ticker drives the leg's media
    call.remote_hung_up("BYE")
    await settle(legs.tasks)
    assert front.torn_down == ["leg-1"]
    assert ticker.size == 0 and legs.live == {} and not legs.tasks
    ended = [e for e in call.events.events if e["event"] == "call_ended"]
    assert len(ended) == 1 and ended[0]["cause"] == "REMOTE_HANGUP" and ended[0]["packets_out"] >= 1
    call.signaling_ended("late")  # nothing after the end tears down twice
    await asyncio.sleep(0)
    assert front.torn_down == ["leg-1"]


async def test_a_failing_script_and_a_failing_teardown_end_the_leg_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    ticker = MediaTicker(ManualClock())
    legs = LegLifecycle(ticker, EventBus())
    front = Front()
    closed: list[str] = []

    async def broken(call: Call) -> None:
        raise RuntimeError("document exploded")

    def teardown(call: Call) -> None:
        front.teardown(call)
        raise OSError("socket already gone")

    call = legs.open(
        "leg-2",
        from_uri="a",
        to_uri="b",
        media=rtp_media(),
        signal=front.signal,
        send_media=front.sent.append,
        script=broken,
        teardown=teardown,
        on_closed=lambda c: closed.append(c.call_id),
    )
    await asyncio.sleep(0.01)
    assert front.signal.actions == ["hangup"] and call.cause is HangupCause.INTERNAL_ERROR
    with caplog.at_level(logging.ERROR, logger="mediaserver.kernel.legs"):
        call.signaling_ended("BYE answered")
        await settle(legs.tasks)
    assert closed == ["leg-2"] and front.torn_down == ["leg-2"]  # the hook first, then the teardown
    assert "call teardown failed" in caplog.text
    assert names(call)[-1] == "call_ended" and ticker.size == 0


async def test_cancelling_the_owner_still_tears_down_once() -> None:
    ticker = MediaTicker(ManualClock())
    legs = LegLifecycle(ticker, EventBus())
    front = Front()
    legs.open(
        "leg-3",
        from_uri="a",
        to_uri="b",
        media=WebRtcMedia(),
        signal=front.signal,
        send_media=front.sent.append,
        script=wait_ended,
        teardown=front.teardown,
    )
    await asyncio.sleep(0)
    for task in list(legs.tasks):
        task.cancel()
    await asyncio.gather(*legs.tasks, return_exceptions=True)
    assert front.torn_down == ["leg-3"] and ticker.size == 0 and legs.live == {}


async def test_log_digits_records_each_digit_of_the_leg_with_its_source() -> None:
    legs = LegLifecycle(MediaTicker(ManualClock()), EventBus())
    front = Front()
    media = rtp_media()
    call = legs.open(
        "leg-4",
        from_uri="a",
        to_uri="b",
        media=media,
        signal=front.signal,
        send_media=front.sent.append,
        script=wait_ended,
        teardown=front.teardown,
        log_digits=True,
    )
    media.deliver_dtmf("5", DigitSource.SIP_INFO)
    assert [(e["digit"], e["source"]) for e in call.events.events if e["event"] == "dtmf"] == [("5", "sip_info")]
    call.remote_hung_up("BYE")
    await settle(legs.tasks)
    assert front.torn_down == ["leg-4"]
