"""The kernel facade: builds calls, runs their SWML, ticks their media, keeps the registry.

Theory of operation: a front end (SIP, WebRTC) negotiates media, opens the socket and then
asks `Kernel.start_call` for a call. The front end loads the SWML document with `load_route`
first (errors are raised before anything is answered, so it can refuse the call cleanly);
`start_call` hands the leg to the one leg lifecycle (kernel/legs.py), which registers it with
the ticker, runs its executor in a task it owns, and when the call is over removes it and
invokes the front end's teardown callback exactly once. `open_leg` is the same lifecycle for
a leg without a document (the SIP dialer's answered outbound legs).

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
from mediaserver.events import CallStarted
from mediaserver.kernel.admission import Admission
from mediaserver.kernel.agent import AgentRegistry
from mediaserver.kernel.call import Call, CallSignal
from mediaserver.kernel.eventbus import LOG, EventBus
from mediaserver.kernel.executor import SwmlExecutor
from mediaserver.kernel.fetch import public_url, swml_call
from mediaserver.kernel.legs import LegLifecycle, wait_ended
from mediaserver.kernel.media import CallMedia
from mediaserver.kernel.services import Dialer, DialerPort, KernelServices
from mediaserver.kernel.speech import SpeechSynthesizer
from mediaserver.kernel.tick import MediaTicker
from mediaserver.kernel.verbs.registry import kernel_builders
from mediaserver.logs import CallLogWriter
from mediaserver.swml.document import Document, document_from_data, load_document
from mediaserver.swml.expr import JsEvaluator
from mediaserver.swml.interpreter import Interpreter

log = logging.getLogger(__name__)


def document_label(document: Document) -> str:
    """How a document without a route name is shown to callers: a URL without its credentials,
    a file by its name alone (no server path), `<inline>` as it is."""
    source = document.source
    if "://" in source:
        return public_url(source)
    return Path(source).name if source and not source.startswith("<") else source


class Kernel:
    def __init__(
        self,
        ticker: MediaTicker,
        services: KernelServices,
        route: Callable[[str], Path | str],
        admission: Admission | None = None,
    ) -> None:
        self.ticker = ticker
        # The call and AI-session limits the front ends ask before taking a call (kernel/admission.py).
        self.admission = admission or Admission()
        self.services = services
        self.route = route
        self.calls: dict[str, Call] = {}
        self.legs = LegLifecycle(ticker, services.events)
        # The per-call JSONL files: a listener of the kernel's bus that writes from a thread.
        call_log = self.call_log = CallLogWriter(services.call_log_dir) if services.call_log_dir else None
        if call_log is not None:
            services.events.listen(lambda e: call_log.write(e.call_id, e.data), kinds=[LOG])
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
        log_digits: bool = False,
        route: str = "",
    ) -> Call:
        """An inbound leg running `document`: the leg lifecycle (kernel/legs.py) with an SWML
        executor as its script, kept in `calls` while it lives; `on_ended` is the front end's
        teardown, called exactly once. `route` names the route that picked the document: it is
        what `call_started` shows (events reach browsers; the document's file path never does)."""
        options = self.services.swml

        async def script(call: Call) -> None:
            interpreter = Interpreter(
                document,
                call=swml_call(call),
                envs=options.envs,
                evaluator=JsEvaluator(options.expression_timeout_ms),
                builders=kernel_builders(),
            )
            await SwmlExecutor(interpreter, self.services).run(call)

        call = self.legs.open(
            call_id,
            from_uri=from_uri,
            to_uri=to_uri,
            media=media,
            signal=signal,
            send_media=send_media,
            script=script,
            teardown=on_ended,
            info=info,
            started=CallStarted(
                from_uri=from_uri,
                to_uri=to_uri,
                codec=media.codec_name,
                document=route or document_label(document),
                front_end=dict(info or {}),
            ),
            log_digits=log_digits,
            on_closed=self._closed,
        )
        self.calls[call_id] = call
        self._idle.clear()
        self.calls_started += 1
        return call

    def open_leg(
        self,
        call_id: str,
        *,
        from_uri: str,
        to_uri: str,
        media: CallMedia,
        signal: CallSignal,
        send_media: Callable[[bytes], None],
        teardown: Callable[[Call], None],
        info: dict[str, object] | None = None,
        started: CallStarted | None = None,
    ) -> Call:
        """A leg with no document of its own (an answered outbound leg): it waits until it is
        bridged and hung up; not one of `calls` (the call that dialled it is)."""
        return self.legs.open(
            call_id,
            from_uri=from_uri,
            to_uri=to_uri,
            media=media,
            signal=signal,
            send_media=send_media,
            script=wait_ended,
            teardown=teardown,
            info=info,
            started=started,
            log_digits=True,
        )

    def _closed(self, call: Call) -> None:
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
            self.admission.release(call.call_id)
        self.calls_ended += 1
        if not self.calls:
            self._idle.set()

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
        for call in list(self.legs.live.values()):  # inbound calls and outbound legs
            call.hangup(HangupCause.SERVER_SHUTDOWN, reason="server shutting down")
        if self.legs.tasks:
            await asyncio.wait(self.legs.tasks, timeout=3)
        if self.call_log is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.call_log.close)
