"""One call-leg lifecycle for every front end (SIP inbound, SIP outbound, WebRTC).

Theory of operation: a front end does its protocol work first (negotiate media, open the
socket or peer connection, refuse what it cannot serve) and then hands the leg to
`LegLifecycle.open` with its media, its `CallSignal`, how to send media, a script and a
teardown. From there the lifecycle owns the leg: it creates the `Call` and its event log,
records `call_started`, registers the call with the ticker, runs the script in an owner task
(`Call.run`), and when the call is over removes it from the ticker, records `call_ended`
with the media counters, runs the `on_closed` hooks (the kernel's registry) and calls the
front end's teardown exactly once, whatever ended the call (BYE, hangup, a failed script,
cancellation at shutdown). A teardown that raises is logged, never propagated.

The kernel's `start_call` (kernel/registry.py) is this plus an SWML executor as the script and
the call registry; the SIP dialer's answered outbound legs use it directly with a script that
only waits to be bridged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from mediaserver.events import CallEnded, CallStarted, Dtmf, EventSink
from mediaserver.kernel.call import Call, CallSignal
from mediaserver.kernel.media import CallMedia
from mediaserver.kernel.tick import MediaTicker
from mediaserver.logs import CallEventLog

log = logging.getLogger(__name__)

Script = Callable[[Call], Awaitable[None]]
Teardown = Callable[[Call], None]


async def wait_ended(call: Call) -> None:
    """The script of a leg that only waits (an outbound leg waiting to be bridged)."""
    await call.ended.wait()


class LegLifecycle:
    """Creates, ticks, owns and ends call legs; `live` holds the legs not yet torn down."""

    def __init__(self, ticker: MediaTicker, bus: EventSink) -> None:
        self.ticker = ticker
        self.bus = bus  # the kernel's event bus: every leg's event log publishes there
        self.live: dict[str, Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def tasks(self) -> set[asyncio.Task[None]]:
        """The owner tasks still running (shutdown waits for them)."""
        return self._tasks

    def open(
        self,
        call_id: str,
        *,
        from_uri: str,
        to_uri: str,
        media: CallMedia,
        signal: CallSignal,
        send_media: Callable[[bytes], None],
        script: Script,
        teardown: Teardown,
        info: Mapping[str, object] | None = None,
        started: CallStarted | None = None,
        log_digits: bool = False,
        on_closed: Teardown | None = None,
    ) -> Call:
        """Start a leg: its Call is created, logged, ticked and owned until it ends.

        `started` is the leg's `call_started` event (default: one with no fields); `log_digits`
        records every digit of the leg's dtmf tap as a `dtmf` event (with its source);
        `on_closed` runs before `teardown` (the kernel's bookkeeping). Returns the Call at once:
        the script starts on the next loop iteration, so the front end can finish its wiring
        (route the socket to `call.receive_media`, ring) synchronously after this returns.
        """
        events = CallEventLog(call_id, bus=self.bus)
        call = Call(
            call_id,
            from_uri=from_uri,
            to_uri=to_uri,
            media=media,
            signal=signal,
            send_media=send_media,
            event_log=events,
            info=dict(info or {}),
        )
        events.emit(started or CallStarted())
        if log_digits:
            media.taps.dtmf.subscribe(
                lambda d: call.events.emit(Dtmf(digit=d.digit, source=d.source.value)), name="call-log"
            )
        self.live[call_id] = call
        self.ticker.add(call)
        task = asyncio.create_task(self._own(call, script, teardown, on_closed), name=f"call:{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    async def _own(self, call: Call, script: Script, teardown: Teardown, on_closed: Teardown | None) -> None:
        try:
            await call.run(script)
        finally:
            self.ticker.remove(call)
            if self.live.get(call.call_id) is call:
                del self.live[call.call_id]
            counters = call.media.counters
            call.events.emit(
                CallEnded(
                    cause=call.cause.name if call.cause else None,
                    packets_in=counters.packets_in,
                    packets_out=counters.packets_out,
                    played_samples=call.media.playout.played_samples,
                )
            )
            for hook in (on_closed, teardown):
                if hook is None:
                    continue
                try:
                    hook(call)
                except Exception:
                    log.exception("call teardown failed", extra={"call_id": call.call_id})
            call.release()
