"""The kernel facade: builds calls, runs their SWML, ticks their media, keeps the registry.

Theory of operation: a front end (SIP, later WebRTC) negotiates media, opens the socket and
then asks `Kernel.start_call` for a call. The kernel loads the SWML document the route names
(errors are raised to the front end before anything is answered, so it can refuse the call
cleanly), registers the call with the ticker and runs its executor in a task it owns. When
the call is over the task removes it and invokes the front end's teardown callback.

The kernel's services (TTS, executor threads, HTTP client, AI and sidecar runners, the
dialer, the event bus, the agents, settings-derived options) come in one `KernelServices`
at construction (kernel/services.py says why the dialer is a port the SIP front end binds).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

from mediaserver.errors import HangupCause
from mediaserver.kernel.agent import AgentRegistry
from mediaserver.kernel.call import Call, CallSignal
from mediaserver.kernel.eventbus import EventBus
from mediaserver.kernel.executor import SwmlExecutor
from mediaserver.kernel.fetch import public_url, swml_call
from mediaserver.kernel.media import CallMedia
from mediaserver.kernel.services import Dialer, DialerPort, KernelServices
from mediaserver.kernel.speech import SpeechSynthesizer
from mediaserver.kernel.tick import MediaTicker
from mediaserver.logs import CallEventLog
from mediaserver.swml.document import Document, document_from_data, load_document
from mediaserver.swml.expr import JsEvaluator
from mediaserver.swml.interpreter import Interpreter

log = logging.getLogger(__name__)


class Kernel:
    def __init__(self, ticker: MediaTicker, services: KernelServices, route: Callable[[str], Path | str]) -> None:
        self.ticker = ticker
        self.services = services
        self.route = route
        self.calls: dict[str, Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls_started = 0
        self.calls_ended = 0
        self.draining = False  # set by SIGTERM: no new calls, live ones finish
        self._idle = asyncio.Event()  # set whenever the last live call has ended

    # -- services (read-only views of `services`) ----------------------------------------------
    @property
    def synthesizer(self) -> SpeechSynthesizer:
        return self.services.synthesizer

    @property
    def blocking(self) -> Executor:
        return self.services.blocking

    @property
    def call_log_dir(self) -> str:
        return self.services.call_log_dir

    @property
    def cname(self) -> str:
        return self.services.cname

    @property
    def events(self) -> EventBus:
        return self.services.events

    @property
    def agents(self) -> AgentRegistry:
        """The AI agent of each call that has one running (the control API and the page use it)."""
        return self.services.agents

    @property
    def dialer(self) -> DialerPort:
        return self.services.dialer

    @dialer.setter
    def dialer(self, dialer: Dialer) -> None:
        """The one late-bound service: the SIP front end binds its dialer here, once."""
        self.services.dialer.bind(dialer)

    def load_route(self, user: str) -> Document:
        """The SWML document for a called user; raises SwmlError / OSError for the front end."""
        path = self.route(user)
        if isinstance(path, str):
            # A URL route: the call starts by fetching its SWML with the call body (kernel/fetch.py);
            # a failed fetch is the transfer's error, so the caller hears the apology.
            return document_from_data({"sections": {"main": [{"transfer": {"dest": path}}]}}, source=public_url(path))
        return load_document(path.read_text(), source=str(path))

    def start_call(
        self,
        call_id: str,
        *,
        from_uri: str,
        to_uri: str,
        document: Document,
        media: CallMedia,
        signal: CallSignal,
        send_media: Callable[[bytes], None],
        on_ended: Callable[[Call], None],
        info: dict[str, object] | None = None,
    ) -> Call:
        events = CallEventLog(call_id, self.call_log_dir)
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
        events.record(
            "call_started",
            from_uri=from_uri,
            to_uri=to_uri,
            codec=media.codec_name,
            document=document.source,
            front_end=dict(info or {}),
        )
        self.calls[call_id] = call
        self._idle.clear()
        self.calls_started += 1
        self.ticker.add(call)
        options = self.services.swml
        interpreter = Interpreter(
            document,
            call=swml_call(call),
            envs=options.envs,
            evaluator=JsEvaluator(options.expression_timeout_ms),
        )
        executor = SwmlExecutor(interpreter, self.services)
        task = asyncio.create_task(self._own(call, executor, on_ended), name=f"call:{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    async def _own(self, call: Call, executor: SwmlExecutor, on_ended: Callable[[Call], None]) -> None:
        try:
            await call.run(executor.run)
        finally:
            self.ticker.remove(call)
            self.calls.pop(call.call_id, None)
            self.calls_ended += 1
            if not self.calls:
                self._idle.set()
            counters = call.media.counters
            call.events.record(
                "call_ended",
                cause=call.cause.name if call.cause else None,
                packets_in=counters.packets_in,
                packets_out=counters.packets_out,
                played_samples=call.media.playout.played_samples,
            )
            try:
                on_ended(call)
            except Exception:
                log.exception("call teardown failed", extra={"call_id": call.call_id})

    def start_draining(self) -> None:
        """Take no new calls (front ends answer 503); live calls go on until they end."""
        if not self.draining:
            self.draining = True
            log.info("draining", extra={"live_calls": len(self.calls)})

    async def wait_drained(self, timeout_s: float) -> bool:
        """Wait until every live call has ended; False if the timeout came first."""
        if self.calls:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout_s)
            except TimeoutError:
                return False
        return True

    async def shutdown(self) -> None:
        for call in list(self.calls.values()):
            call.hangup(HangupCause.SERVER_SHUTDOWN, reason="server shutting down")
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=3)
