"""A call: its state machine, its media stream, its event log, and the tasks it owns.

Theory of operation: a Call is created by a front end (SIP today, WebRTC later) with a
`CallSignal` that knows how to ring, answer and hang up on that front end. Everything that
changes the call runs on the event loop, one event at a time: the front end reports
`remote_hung_up` / `signaling_ended`, the ticker calls `on_tick` every 20 ms, and the call's
script (the SWML executor) awaits `answer`, `play` and `hangup`. `run(script)` owns the
script task; when the call ends for any reason the script is cancelled, and returning from
`run` is the teardown point for the front end (free the port, close the socket).

An inbound SIP call starts `awaiting_confirmation`: its ticks send and play nothing until the
front end reports the ACK of our 2xx, or the peer's first RTP/RTCP datagram arrives (`confirm`).
An INVITE flood that never ACKs (RFC 3261 §13.3.1.4: we resend the 2xx and end the call after
64*T1) then costs no media, and a real caller's greeting starts at the ACK instead of clipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from mediaserver.audio.frame import Pcm
from mediaserver.clock import NS_PER_S
from mediaserver.errors import HangupCause
from mediaserver.events import (
    AudioStarted,
    AudioStopped,
    HangupRequested,
    MediaConfirmed,
    RemoteHangup,
    ScriptFailed,
    SignalingEnded,
    StateChanged,
)
from mediaserver.kernel.media import CallMedia
from mediaserver.kernel.media_timeout import MediaTimeouts, MediaWatchdog
from mediaserver.kernel.state import CallEvent, CallState, next_state
from mediaserver.logs import CallEventLog, current_call_id

log = logging.getLogger(__name__)


class CallSignal(Protocol):
    """What the kernel asks of a front end; each call returns at once (the I/O is queued)."""

    def ring(self) -> None: ...
    def answer(self) -> None: ...
    def hangup(self) -> None: ...


class CallEnded(Exception):
    """Raised into the script when it awaits something on a call that has ended."""


def _drop_datagram(data: bytes) -> None:
    """The send callback of a released call (a datagram after the end goes nowhere)."""


class Call:
    def __init__(
        self,
        call_id: str,
        *,
        from_uri: str,
        to_uri: str,
        media: CallMedia,
        signal: CallSignal,
        send_media: Callable[[bytes], None],
        event_log: CallEventLog,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.call_id = call_id
        self.from_uri = from_uri
        self.to_uri = to_uri
        self.media = media
        self.info = info or {}
        self.events = event_log
        self.state = CallState.NEW
        self.cause: HangupCause | None = None
        self.ended = asyncio.Event()
        self._signal = signal
        self._send_media = send_media
        self._waiters: list[tuple[int, asyncio.Future[bool]]] = []
        self._speaking = False
        # The RTP inactivity timeout (kernel/media_timeout.py): armed by a front end with RTP (SIP).
        self.media_watchdog: MediaWatchdog | None = None
        # Set by the SIP front end for an inbound INVITE; no media until `confirm` clears it. The
        # SIP layer ends a call whose 2xx is never ACKed (64*T1); the watchdog waits for confirm.
        self.awaiting_confirmation: bool = False

    def __repr__(self) -> str:
        return f"Call({self.call_id!r}, {self.state.name})"

    # -- state -----------------------------------------------------------------------------
    def _apply(self, event: CallEvent) -> CallState:
        old = self.state
        self.state = next_state(old, event)
        if self.state is not old:
            self.events.emit(StateChanged(old=old.value, new=self.state.value, trigger=event.value))
        if self.state is CallState.ENDED and not self.ended.is_set():
            self._finish()
        return self.state

    def _finish(self) -> None:
        self.media.stop_playout()
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(False)
        self._waiters.clear()
        self.ended.set()

    def release(self) -> None:
        """After the leg's teardown: cut the references that lead from its parts back to it
        (tap subscribers, the send callback), so that reference counting frees the whole leg
        at once. Left to the cyclic collector, every ended call would wait in the oldest
        generation for a full pass, which stalls the loop for tens of ms at a few hundred calls."""
        self.media.taps.close()
        self._send_media = _drop_datagram

    @property
    def answered(self) -> bool:
        return self.state is CallState.ACTIVE

    @property
    def is_over(self) -> bool:
        return self.state in (CallState.HANGING_UP, CallState.ENDED)

    # -- commands from the script ------------------------------------------------------------
    def ring(self) -> None:
        if self.state is CallState.NEW:
            self._signal.ring()
            self._apply(CallEvent.RINGING_SENT)

    def answer(self) -> None:
        if self.is_over:
            raise CallEnded(self.call_id)
        if self.state is not CallState.ACTIVE:
            self._signal.answer()
            self._apply(CallEvent.ANSWERED)

    def hangup(self, cause: HangupCause = HangupCause.NORMAL_CLEARING, reason: str = "") -> None:
        if self.is_over:
            return
        self.cause = cause
        self.events.emit(HangupRequested(cause=cause.name, reason=reason))
        self._apply(CallEvent.HANGUP_REQUESTED)
        self.media.stop_playout()
        bye = None if self.awaiting_confirmation else self.media.goodbye()  # no RTCP for an unused SSRC
        if bye is not None:
            try:
                self._send_media(bye)
            except OSError:
                pass
        self._signal.hangup()

    def enqueue_audio(self, pcm: Pcm, sample_rate: int, *, final: bool = True) -> int:
        if self.is_over:
            raise CallEnded(self.call_id)
        return self.media.enqueue(pcm, sample_rate, final=final)

    async def wait_played(self, mark: int) -> bool:
        """Wait until the played cursor reaches mark; False if the call ended first."""
        if self.media.playout.reached(mark):
            return True
        if self.ended.is_set():
            return False
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append((mark, waiter))
        return await waiter

    # -- events from the front end ----------------------------------------------------------
    def remote_hung_up(self, reason: str) -> None:
        if self.cause is None:
            self.cause = HangupCause.REMOTE_HANGUP
        self.events.emit(RemoteHangup(reason=reason))
        self._apply(CallEvent.REMOTE_HUNG_UP)

    def signaling_ended(self, reason: str) -> None:
        self.events.emit(SignalingEnded(reason=reason))
        self._apply(CallEvent.SIGNALING_ENDED)

    def confirm(self, reason: Literal["ack", "rtp"]) -> None:
        """The dialog is confirmed ("ack": our 2xx was ACKed; "rtp": the peer's media came first,
        its ACK maybe lost on UDP): media starts at the next tick. Only the first call counts."""
        if self.awaiting_confirmation:
            self.awaiting_confirmation = False
            self.events.emit(MediaConfirmed(reason=reason))

    def receive_media(self, data: bytes, arrival_ns: int) -> None:
        if self.state is not CallState.ENDED:
            if self.awaiting_confirmation and data[:1] and data[0] >> 6 == 2:
                self.confirm("rtp")  # RTP/RTCP version 2 only: stray garbage confirms nothing
            if self.media_watchdog is not None:
                self.media_watchdog.heard(arrival_ns)
            self.media.receive_datagram(data, arrival_ns)

    def watch_media(self, timeouts: MediaTimeouts) -> None:
        """End the call with MEDIA_TIMEOUT when the peer sends no RTP/RTCP for the timeout in
        force; the watch starts at the first tick after the answer."""
        if timeouts.enabled:
            self.media_watchdog = MediaWatchdog(timeouts)

    def media_held(self, held: bool) -> None:
        """The peer's SDP stopped (True) or resumed (False) sending us media: hold_timeout_s applies."""
        if self.media_watchdog is not None:
            self.media_watchdog.hold(held)

    # -- the 20 ms tick ----------------------------------------------------------------------
    def on_tick(self, now_ns: int, unix_time: float) -> None:
        if self.state is not CallState.ACTIVE or self.awaiting_confirmation:
            # No media before the answer (no early media yet), after the hangup, or before the
            # dialog is confirmed (an unACKed flood); the watchdog's watch starts at confirmation.
            return
        if self.media_watchdog is not None and self.media_watchdog.expired(now_ns):
            self._media_timed_out(self.media_watchdog, now_ns)
            return
        playout = self.media.playout
        if not self._speaking and playout.queued_samples > 0:
            self._speaking = True
            self.events.emit(AudioStarted(played_samples=playout.played_samples))
        for datagram in self.media.tick(now_ns, unix_time):
            self._send_media(datagram)
        if self._speaking and playout.queued_samples == 0:
            self._speaking = False
            self.events.emit(AudioStopped(played_samples=playout.played_samples))
        if self._waiters:
            still: list[tuple[int, asyncio.Future[bool]]] = []
            for mark, waiter in self._waiters:
                if playout.reached(mark):
                    if not waiter.done():
                        waiter.set_result(True)
                else:
                    still.append((mark, waiter))
            self._waiters = still

    def _media_timed_out(self, watchdog: MediaWatchdog, now_ns: int) -> None:
        silence_s = round(watchdog.silence_ns(now_ns) / NS_PER_S, 1)
        log.warning(
            "no media from the peer: ending the call",
            extra={
                "call_id": self.call_id,
                "silence_s": silence_s,
                "timeout_s": watchdog.limit_ns / NS_PER_S,
                "held": watchdog.held,
                "rtp_received": watchdog.heard_any,
            },
        )
        reason = f"no RTP for {silence_s} s" + ("" if watchdog.heard_any else " since the answer")
        self.hangup(HangupCause.MEDIA_TIMEOUT, reason=reason + (" on hold" if watchdog.held else ""))

    def on_frames_skipped(self, frames: int) -> None:
        if self.state is CallState.ACTIVE and not self.awaiting_confirmation:
            self.media.skip_frames(frames)

    # -- ownership ---------------------------------------------------------------------------
    async def run(self, script: Callable[[Call], Awaitable[None]]) -> None:
        """Run the call's script until it returns or the call ends; then the call is over."""
        current_call_id.set(self.call_id)
        script_task = asyncio.create_task(self._run_script(script), name=f"script:{self.call_id}")
        ended_task = asyncio.create_task(self.ended.wait(), name=f"ended:{self.call_id}")
        try:
            await asyncio.wait({script_task, ended_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (script_task, ended_task):
                if not task.done():
                    task.cancel()
            await asyncio.gather(script_task, ended_task, return_exceptions=True)

    async def _run_script(self, script: Callable[[Call], Awaitable[None]]) -> None:
        try:
            await script(self)
        except CallEnded:
            pass
        except Exception as exc:
            self.events.emit(ScriptFailed(error=repr(exc)))
            log.exception("call script failed")
            self.hangup(HangupCause.INTERNAL_ERROR, reason=str(exc))
        else:
            if not self.is_over:
                self.hangup(HangupCause.NORMAL_CLEARING, reason="script finished")
        # After our hangup the signaling needs a moment for the BYE; the call ends when it does.
        await self.ended.wait()
