"""The RTP inactivity timeout on whole calls, on a manual clock (issue 17: a call whose BYE was
lost lived forever). A leg watched with `[rtp] timeout_s` is hung up with MEDIA_TIMEOUT on the
first tick at which the peer has sent nothing for exactly that long, counted from the first tick
after the answer; every RTP or RTCP datagram starts the silence again; while the peer holds the
call only `hold_timeout_s` applies. The hangup is the normal one: the front end is asked for its
BYE, the script is cancelled when the signaling ends, `call_ended` carries the cause, the warning
names the call and the seconds of silence, and /metrics counts it."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from mediaserver.clock import NS_PER_MS, NS_PER_S, ManualClock
from mediaserver.kernel.call import Call
from mediaserver.kernel.eventbus import LOG, EventBus
from mediaserver.kernel.legs import LegLifecycle
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.media_timeout import MediaTimeouts
from mediaserver.kernel.state import CallState
from mediaserver.kernel.tick import MediaTicker
from mediaserver.metrics import Metrics
from mediaserver.rtp.packet import RtpPacket
from mediaserver.rtp.rtcp import ReceiverReport
from tests.support.fakes import FakeSignal

FRAME = 20 * NS_PER_MS
PEER_SSRC = 0x1234


class Harness:
    """One answered SIP-like leg on a one-phase ticker driven by a manual clock."""

    def __init__(self, timeouts: MediaTimeouts) -> None:
        self.clock = ManualClock()
        self.ticker = MediaTicker(self.clock, phases=1)  # its first tick is one frame after 0
        self.bus = EventBus()
        self.metrics = Metrics()
        self.bus.listen(lambda e: self.metrics.observe(e.call_id, e.data), kinds=[LOG])
        self.legs = LegLifecycle(self.ticker, self.bus)
        self.signal = FakeSignal()
        self.script_cancelled = asyncio.Event()
        self.torn_down: list[str] = []
        self.call = self.legs.open(
            "mt-1",
            from_uri="sip:a@x",
            to_uri="sip:b@y",
            media=MediaStream(MediaParams("PCMU", 0, 8000, 101), "t", rng=random.Random(1)),
            signal=self.signal,
            send_media=lambda _: None,
            script=self._script,
            teardown=lambda call: self.torn_down.append(call.call_id),
        )
        self.call.watch_media(timeouts)
        self.call.answer()
        self.seq = 0

    async def _script(self, call: Call) -> None:
        try:
            await asyncio.Event().wait()  # an SWML document that waits for a long time
        except asyncio.CancelledError:
            self.script_cancelled.set()
            raise

    @property
    def first_tick_ns(self) -> int:
        return FRAME

    def run_until(self, until_ns: int) -> None:
        """Tick every frame up to until_ns (inclusive) unless the call stops being active."""
        while self.ticker.next_deadline_ns <= until_ns and self.call.state is CallState.ACTIVE:
            self.clock.set(self.ticker.next_deadline_ns)
            self.ticker.run_due(self.clock.now_ns())

    def rtp_arrives(self) -> None:
        self.seq += 1
        packet = RtpPacket(0, self.seq, self.seq * 160, PEER_SSRC, b"\xff" * 160).serialize()
        self.call.receive_media(packet, self.clock.now_ns())

    def rtcp_arrives(self) -> None:
        self.call.receive_media(ReceiverReport(PEER_SSRC).serialize(), self.clock.now_ns())

    def events(self, name: str) -> list[dict[str, object]]:
        return [e for e in self.call.events.events if e["event"] == name]

    async def bye_answered(self) -> None:
        """The peer (or timer F) ends the BYE transaction: the signaling is over."""
        self.call.signaling_ended("BYE answered")
        await asyncio.wait(set(self.legs.tasks), timeout=2)


async def test_a_silent_peer_is_hung_up_exactly_at_the_timeout_and_torn_down_normally(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness(MediaTimeouts(timeout_s=60))
    await asyncio.sleep(0)  # the script starts
    deadline = h.first_tick_ns + 60 * NS_PER_S
    h.run_until(deadline - FRAME)
    assert h.call.state is CallState.ACTIVE and h.signal.actions == ["answer"]  # not a frame early
    with caplog.at_level(logging.WARNING, logger="mediaserver.kernel.call"):
        h.run_until(deadline)
    assert h.call.state is CallState.HANGING_UP and h.signal.actions == ["answer", "hangup"]  # the BYE
    hangup = h.events("hangup_requested")
    assert len(hangup) == 1 and hangup[0]["cause"] == "MEDIA_TIMEOUT"
    assert hangup[0]["reason"] == "no RTP for 60.0 s since the answer"
    warning = next(r for r in caplog.records if r.getMessage() == "no media from the peer: ending the call")
    assert (warning.call_id, warning.silence_s, warning.rtp_received) == ("mt-1", 60.0, False)  # type: ignore[attr-defined]
    await h.bye_answered()
    assert h.script_cancelled.is_set() and h.torn_down == ["mt-1"] and h.ticker.size == 0
    assert [e["cause"] for e in h.events("call_ended")] == ["MEDIA_TIMEOUT"]
    assert b"mediaserver_calls_media_timeout_total 1.0" in h.metrics.render()[0]


async def test_rtp_and_rtcp_each_restart_the_silence() -> None:
    h = Harness(MediaTimeouts(timeout_s=2))
    h.run_until(1 * NS_PER_S)
    h.rtp_arrives()  # at 1.00 s
    h.run_until(2_900 * NS_PER_MS)
    h.rtcp_arrives()  # at 2.90 s: RTCP alone shows the peer is there
    h.run_until(4_880 * NS_PER_MS)
    assert h.call.state is CallState.ACTIVE
    h.run_until(4_900 * NS_PER_MS)
    assert h.call.state is CallState.HANGING_UP
    assert h.events("hangup_requested")[0]["reason"] == "no RTP for 2.0 s"
    await h.bye_answered()


async def test_hold_suspends_the_timeout_and_resuming_restarts_it() -> None:
    h = Harness(MediaTimeouts(timeout_s=2))
    h.run_until(1 * NS_PER_S)
    h.call.media_held(True)  # re-INVITE with a=sendonly: the peer owes no RTP
    h.run_until(120 * NS_PER_S)
    assert h.call.state is CallState.ACTIVE
    h.call.media_held(False)  # resumed: the watch starts again at the next tick
    resumed_tick = h.ticker.next_deadline_ns
    h.run_until(resumed_tick + 2 * NS_PER_S - FRAME)
    assert h.call.state is CallState.ACTIVE
    h.run_until(resumed_tick + 2 * NS_PER_S)
    assert h.call.state is CallState.HANGING_UP
    await h.bye_answered()


async def test_hold_timeout_ends_a_call_held_too_long() -> None:
    h = Harness(MediaTimeouts(timeout_s=2, hold_timeout_s=30))
    h.run_until(1 * NS_PER_S)
    h.call.media_held(True)
    held_tick = h.ticker.next_deadline_ns
    h.run_until(held_tick + 30 * NS_PER_S - FRAME)
    assert h.call.state is CallState.ACTIVE
    h.run_until(held_tick + 30 * NS_PER_S)
    assert h.events("hangup_requested")[0]["reason"] == "no RTP for 30.0 s since the answer on hold"
    await h.bye_answered()


async def test_an_unwatched_leg_never_times_out() -> None:
    h = Harness(MediaTimeouts(timeout_s=0, hold_timeout_s=0))
    assert h.call.media_watchdog is None
    h.run_until(120 * NS_PER_S)
    assert h.call.state is CallState.ACTIVE
    h.call.hangup()
    await h.bye_answered()
