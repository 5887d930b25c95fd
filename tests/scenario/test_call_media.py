"""A whole call's outbound media on a manual clock: exact RTP numbering, marker bits, played cursor."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from mediaserver.kernel.call import Call
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.state import CallState
from mediaserver.logs import CallEventLog
from mediaserver.rtp.packet import RtpPacket, is_rtcp
from tests.support.fakes import FakeSignal

FRAME_NS = 20_000_000


def make_call(codec: str = "PCMU", pt: int = 0, clock: int = 8000) -> tuple[Call, list[bytes], FakeSignal]:
    sent: list[bytes] = []
    signal = FakeSignal()
    media = MediaStream(MediaParams(codec, pt, clock, 101), "test", rng=random.Random(7))
    call = Call(
        "c1",
        from_uri="sip:a@x",
        to_uri="sip:b@y",
        media=media,
        signal=signal,
        send_media=sent.append,
        event_log=CallEventLog("c1"),
    )
    return call, sent, signal


def tone(samples: int, rate: int) -> np.ndarray:
    t = np.arange(samples) / rate
    return (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def rtp_only(datagrams: list[bytes]) -> list[RtpPacket]:
    return [RtpPacket.parse(d) for d in datagrams if not is_rtcp(d)]


@pytest.mark.parametrize(
    ("codec", "pt", "clock", "step"), [("PCMU", 0, 8000, 160), ("G722", 9, 8000, 160), ("opus", 111, 48000, 960)]
)
def test_outbound_rtp_advances_exactly_with_marker_per_talkspurt(codec: str, pt: int, clock: int, step: int) -> None:
    call, sent, signal = make_call(codec, pt, clock)
    call.answer()
    assert signal.actions == ["answer"] and call.state is CallState.ACTIVE
    rate = call.media.sample_rate
    now = 0
    call.enqueue_audio(tone(rate // 5, rate), rate)  # 200 ms: 10 frames
    for _ in range(15):
        now += FRAME_NS
        call.on_tick(now, 0.0)
    call.enqueue_audio(tone(rate // 10, rate), rate)  # a second talkspurt of 5 frames
    for _ in range(10):
        now += FRAME_NS
        call.on_tick(now, 0.0)
    packets = rtp_only(sent)
    assert len(packets) == 25
    assert {p.ssrc for p in packets} == {packets[0].ssrc}
    assert {p.payload_type for p in packets} == {pt}
    for a, b in zip(packets, packets[1:], strict=False):
        assert b.sequence == (a.sequence + 1) & 0xFFFF
        assert b.timestamp == (a.timestamp + step) & 0xFFFFFFFF
    assert [i for i, p in enumerate(packets) if p.marker] == [0, 15]
    assert call.media.playout.played_samples == rate // 5 + rate // 10
    names = [e["event"] for e in call.events.events]
    assert names.count("audio_started") == 2 and names.count("audio_stopped") == 2


async def test_wait_played_resolves_when_the_cursor_passes_the_mark() -> None:
    call, sent, _ = make_call()
    call.answer()
    mark = call.enqueue_audio(tone(800, 8000), 8000)  # 100 ms = 5 frames
    waiter = asyncio.ensure_future(call.wait_played(mark))
    for i in range(4):
        call.on_tick((i + 1) * FRAME_NS, 0.0)
        await asyncio.sleep(0)
        assert not waiter.done()
    call.on_tick(5 * FRAME_NS, 0.0)
    assert await asyncio.wait_for(waiter, 1) is True


async def test_remote_hangup_ends_call_and_releases_waiters() -> None:
    call, sent, _ = make_call()
    call.answer()
    mark = call.enqueue_audio(tone(8000, 8000), 8000)
    waiter = asyncio.ensure_future(call.wait_played(mark))
    await asyncio.sleep(0)
    call.remote_hung_up("BYE")
    assert call.state is CallState.ENDED
    assert await asyncio.wait_for(waiter, 1) is False
    before = len(sent)
    call.on_tick(FRAME_NS, 0.0)
    assert len(sent) == before  # no media after the end


def test_local_hangup_sends_rtcp_bye_and_asks_signaling() -> None:
    call, sent, signal = make_call()
    call.answer()
    call.on_tick(FRAME_NS, 0.0)
    call.hangup()
    assert signal.actions == ["answer", "hangup"]
    assert call.state is CallState.HANGING_UP
    assert is_rtcp(sent[-1])
    call.signaling_ended("BYE answered")
    assert call.state is CallState.ENDED and call.ended.is_set()


def test_inbound_packets_are_decoded_one_frame_per_tick() -> None:
    call, _, _ = make_call()
    call.answer()
    frames = []
    call.media.taps.inbound.subscribe(frames.append)
    pcm = tone(160 * 6, 8000)
    for i in range(6):
        payload = call.media.codec.encode(pcm[i * 160 : (i + 1) * 160])
        call.receive_media(RtpPacket(0, 100 + i, 5000 + 160 * i, 42, payload).serialize(), i * FRAME_NS)
    for i in range(6):
        call.on_tick((i + 1) * FRAME_NS, 0.0)
    assert len(frames) >= 3
    assert [f.start for f in frames] == [160 * i for i in range(len(frames))]
    assert call.media.counters.packets_in == 6
