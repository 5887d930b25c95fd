"""Wiring: the only place that builds concrete objects from settings (docs/design.md §2)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web

from mediaserver.agents.ai.runner import LoopLagMonitor, SessionRunner
from mediaserver.agents.ai.session import AiEngines
from mediaserver.agents.sidecar import SidecarManager
from mediaserver.agents.sidecar.legs import ObservedDialer
from mediaserver.clock import MonotonicClock
from mediaserver.engine_loading import inference_pool, listening_vad, load_ai_engines, load_tts
from mediaserver.kernel.admission import Admission, AdmissionLimits, AdmittedAiRunner, load_overflow
from mediaserver.kernel.agent import AgentRegistry
from mediaserver.kernel.eventbus import LOG, EventBus, Listener
from mediaserver.kernel.inline import ScriptRegistry
from mediaserver.kernel.media_timeout import MediaTimeouts
from mediaserver.kernel.registry import Kernel
from mediaserver.kernel.services import AiRunner, DialerPort, KernelServices, NoAiRunner, SwmlOptions
from mediaserver.kernel.speech import LazyRecognizer, PromptRecognizer, SpeechSynthesizer, UnavailableRecognizer
from mediaserver.kernel.tick import MediaTicker
from mediaserver.kernel.url_policy import UrlPolicy, guarded_session
from mediaserver.metrics import Metrics
from mediaserver.pipeline.asr import PartialBudget, SpeechRecognizer
from mediaserver.pipeline.engine_process import EngineProcess
from mediaserver.pipeline.inference_threads import (
    executor_nices,
    favour_the_loop,
    main_thread_nice,
    single_threaded_blas,
)
from mediaserver.pipeline.tts import TtsEngine
from mediaserver.pipeline.tts_cache import TtsCache
from mediaserver.settings import Settings
from mediaserver.signaling.control import control_routes
from mediaserver.signaling.http import build_http_app, metrics_mount
from mediaserver.signaling.sip import SipFrontEnd
from mediaserver.signaling.sip_dialer import Registration
from mediaserver.signaling.sip_options import SipAccess, SipOptions, SipTls
from mediaserver.signaling.webrtc import WebRtcFrontEnd, WebRtcOptions
from mediaserver.swml import schema_check
from mediaserver.swml.errors import SwmlError
from mediaserver.telemetry import Telemetry, TelemetryUnavailable, otlp_telemetry
from mediaserver.transport.ports import PortPool

log = logging.getLogger("mediaserver")

# How long SIGTERM waits for live calls to end before stopping anyway (compose gives 5 min).
DRAIN_TIMEOUT_S = float(os.environ.get("MS_DRAIN_TIMEOUT_S", "290"))


class StartupError(RuntimeError):
    """The server cannot start (a port is taken, a model is missing); the message says which."""


def sip_options(settings: Settings) -> SipOptions:
    """The SIP front end's (and its dialer's) values from [sip], [rtp] and [routes]."""
    sip, sec = settings.sip, settings.sip.security
    return SipOptions(
        host=sip.host,
        port=sip.port,
        contact_host=sip.contact_host,
        user_agent=sip.user_agent,
        codecs=tuple(settings.rtp.codecs),
        jitter_depth_frames=settings.rtp.jitter_depth_frames,
        jitter_max_depth_frames=settings.rtp.jitter_max_depth_frames,
        unknown_user=sip.unknown_user,
        known_users=frozenset(settings.routes.users),
        route_header=sip.route_header,
        max_body_bytes=sip.max_body_bytes,
        outbound_proxy=sip.outbound_proxy,
        media_encryption=sip.media_encryption,
        media_timeouts=MediaTimeouts(settings.rtp.timeout_s, settings.rtp.hold_timeout_s),
        access=SipAccess(
            realm=sec.realm,
            challenge=sec.challenge,
            nonce_lifetime_s=sec.nonce_lifetime_s,
            rate_limit_per_s=sec.rate_limit_per_s,
            rate_limit_burst=sec.rate_limit_burst,
            trunks=dict(sec.trunks),
            users=dict(sec.users),
        ),
        tls=SipTls(port=sip.tls.port, cert=sip.tls.cert, key=sip.tls.key),
        register=Registration(
            registrar=sip.register.registrar,
            user=sip.register.user,
            password=sip.register.password,
            expires=sip.register.expires,
        ),
    )


def webrtc_options(settings: Settings) -> WebRtcOptions:
    """The WebRTC front end's values: its routes and [webrtc] (an `IceConfig` as it is)."""
    return WebRtcOptions(
        ice=settings.webrtc,
        routes=tuple(settings.routes.users),
        host_addresses=tuple(settings.webrtc.host_addresses),
    )


def admission_limits(settings: Settings) -> AdmissionLimits:
    """[admission] as the kernel's values."""
    section = settings.admission
    return AdmissionLimits(
        ai_capacity=section.ai_capacity, max_calls=section.max_calls, retry_after_s=section.retry_after_s
    )


def overflow_document(settings: Settings) -> dict[str, Any] | None:
    """[admission] overflow, loaded and checked now: a broken one stops the start, not a caller."""
    target = settings.admission.overflow
    if target is None:
        return None
    try:
        return load_overflow(target)
    except (SwmlError, OSError) as exc:
        raise StartupError(f"admission.overflow: {exc}") from exc


def running_tasks() -> int:
    """asyncio tasks alive in the running loop; 0 when read outside one (a test rendering /metrics)."""
    try:
        return len(asyncio.all_tasks(asyncio.get_running_loop()))
    except RuntimeError:
        return 0


class MediaServer:
    def __init__(self, settings: Settings, tts: TtsEngine | None = None) -> None:
        self.settings = settings
        self._tts = tts
        # Inference is CPU-bound; more threads than cores only adds queueing (docs/costs.md §7).
        # Its workers run [performance] inference_nice below the loop: the media clock comes first.
        perf = settings.performance
        self.blocking = inference_pool(perf, 2, "engine")
        # numpy's OpenBLAS pool was started by the main thread, at the loop's priority: keep the
        # engines' matrix products (Whisper's mel filterbank) on their own niced workers instead.
        self.blas = single_threaded_blas() if perf.inference_nice else []
        self.clock = MonotonicClock()
        self.tts_cache = TtsCache(int(perf.tts_cache_mb * 2**20), perf.tts_cache_max_chars)  # fillers, greetings
        self.partial_budget = PartialBudget(self.clock, perf.partial_asr_per_s)  # all calls' partial ASR passes
        self.ticker = MediaTicker(self.clock)
        self.kernel: Kernel | None = None
        self.admission = Admission(admission_limits(settings))  # the kernel's, read by /metrics too
        self.sip: SipFrontEnd | None = None
        self.webrtc: WebRtcFrontEnd | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._http_runner: web.AppRunner | None = None
        self._http_session: aiohttp.ClientSession | None = None
        self.http_port = settings.http.port
        self.loop_lag = LoopLagMonitor(self.clock)
        self._lag_task: asyncio.Task[None] | None = None
        self._ai_engines: asyncio.Future[AiEngines] | None = None
        self.events = EventBus()  # the kernel's bus: sidecar and call-control events, /api/events
        self.sidecars: SidecarManager | None = None  # once started
        self.metrics: Metrics | None = None
        self._metrics_listener: Listener | None = None
        self.telemetry: Telemetry | None = None  # [telemetry] otlp_endpoint: turn traces
        self._telemetry_listener: Listener | None = None
        self._unfavour_loop: Callable[[], None] = lambda: None  # the loop's scheduling, back as before start

    async def start(self) -> None:
        settings = self.settings
        loop = asyncio.get_running_loop()
        telemetry = self.telemetry = start_telemetry(settings)  # first: a missing SDK fails at once
        if telemetry is not None:  # every call's events, like /metrics: one trace per caller turn
            self._telemetry_listener = self.events.listen(lambda e: telemetry.observe(e.call_id, e.data), kinds=[LOG])
        perf = settings.performance  # this runs on the loop's thread, whose scheduling it sets
        loop_policy, self._unfavour_loop = favour_the_loop(perf.loop_realtime_priority, perf.gil_switch_ms)
        if self._tts is None:
            self._tts = await loop.run_in_executor(self.blocking, load_tts, settings)
        log.info(
            "inference priority",
            extra={
                "loop_policy": loop_policy,
                "gil_switch_ms": perf.gil_switch_ms,
                "inference_sched_idle": perf.inference_sched_idle,
                "inference_nice": perf.inference_nice,
                "loop_nice": main_thread_nice(),
                "engine_worker_nices": executor_nices(self.blocking),
                "blas_single_threaded": ", ".join(self.blas) or "no",
                "partial_asr_per_s": settings.performance.partial_asr_per_s,
                "tts_cache_mb": settings.performance.tts_cache_mb,
            },
        )
        # The SWML schema compiles once (~0.1-0.2 s), here rather than in the first call's fetch.
        await loop.run_in_executor(self.blocking, schema_check.prepare)
        # Every service first, then the kernel on them (KernelServices), then the front ends.
        synthesizer = SpeechSynthesizer(self._tts, self.blocking, self.tts_cache)
        # SWAIG, DataMap, post-prompt and hook URLs obey [swml] allowed_hosts like SWML fetches.
        self._http_session = guarded_session(UrlPolicy.from_entries(self.settings.swml.allowed_hosts), purpose="swaig")
        agents = AgentRegistry()
        scripts = ScriptRegistry()  # the running call scripts: agents' SWML actions run there
        sidecars = self.sidecars = self._sidecar_manager(synthesizer, scripts)
        ai_runner: AiRunner = NoAiRunner()
        prompt_recognizer: PromptRecognizer = UnavailableRecognizer()
        if settings.ai.enabled:
            session_runner = self._ai_runner(synthesizer, agents, scripts)
            ai_runner = session_runner
            # SWML `prompt` speech shares the ai verb's recognizer, loaded with its engines.
            prompt_recognizer = LazyRecognizer(lambda: _asr_of(session_runner))
        # [admission]: the AI sessions are counted at the runner; beyond capacity, the overflow document.
        admission = self.admission
        ai_runner = AdmittedAiRunner(ai_runner, admission, scripts, overflow_document(settings))

        services = KernelServices(
            synthesizer=synthesizer,
            blocking=self.blocking,
            http=self._http_session,
            swml=replace(SwmlOptions.from_settings(settings.swml), signing_key=settings.swaig.key),
            ai_runner=ai_runner,
            sidecar_runner=sidecars,
            prompt_recognizer=prompt_recognizer,
            # Bound by the SIP front end below (its dialer needs the kernel); bridges are reported
            # to the sidecar manager, which listens to the agent's leg.
            dialer=DialerPort(observe=lambda dialer: ObservedDialer(dialer, sidecars.bridged)),
            events=self.events,
            agents=agents,
            scripts=scripts,
            clock=self.clock,
            call_log_dir=settings.logging.call_log_dir,
        )
        self.kernel = Kernel(self.ticker, services, settings.routes.document_for, admission)
        self.sip = SipFrontEnd(
            sip_options(settings), self.kernel, PortPool(settings.rtp.port_min, settings.rtp.port_max)
        )
        try:
            await self.sip.start()
        except OSError as exc:
            raise StartupError(
                f"cannot listen for SIP on {settings.sip.host}:{settings.sip.port}: {exc.strerror or exc}"
            ) from exc
        sip = self.sip
        webrtc = self.webrtc = (
            WebRtcFrontEnd(webrtc_options(settings), self.kernel) if settings.webrtc.enabled else None
        )
        control = control_routes(self.kernel, sidecars, self.events, settings.api.bearer)  # /api
        metrics = self.metrics = self._metrics(self.kernel)
        health = build_http_app(
            self.kernel,
            lambda: {
                "rtp_ports_in_use": sip.ports.in_use,
                "sip_port": sip.port,
                **(webrtc.health() if webrtc else {}),
                "loop_lag_ms": self.loop_lag.summary(),
                # With no call live this should return to its idle value: a soak's leak check.
                "asyncio_tasks": len(asyncio.all_tasks()),
            },
            mounts=[webrtc.mount, control, metrics_mount(metrics)] if webrtc else [control, metrics_mount(metrics)],
        )
        self._http_runner = web.AppRunner(health, access_log=None)
        await self._http_runner.setup()
        site = web.TCPSite(self._http_runner, settings.http.host, settings.http.port)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(
                f"cannot listen for HTTP on {settings.http.host}:{settings.http.port}: {exc.strerror or exc}"
            ) from exc
        if self._http_runner.addresses:  # the port actually bound (settings may say 0)
            self.http_port = self._http_runner.addresses[0][1]
        # Everything loaded so far (models, libraries) lives for the whole process: move it out of
        # the collector's reach, so a full collection never walks it in the middle of a tick.
        gc.freeze()
        self._tick_task = asyncio.create_task(self.ticker.run(), name="media-ticker")
        self._lag_task = asyncio.create_task(self.loop_lag.run(), name="loop-lag")
        log.info(
            "listening",
            extra={
                "sip": f"udp+tcp {settings.sip.host}:{self.sip.port}",
                "http": f"http://{settings.http.host}:{self.http_port}",
                "rtp_ports": f"{settings.rtp.port_min}-{settings.rtp.port_max}",
                "config": settings.source,
                "default_swml": str(settings.routes.default),
            },
        )

    def _metrics(self, kernel: Kernel) -> Metrics:
        """Turn histograms from every call's events, process gauges read at scrape time."""
        metrics = Metrics()
        # A listener of the kernel's bus: every call's events, in order, none dropped.
        self._metrics_listener = kernel.events.listen(lambda e: metrics.observe(e.call_id, e.data), kinds=[LOG])
        pacer = self.ticker.pacer.stats
        lag = self.loop_lag
        metrics.gauge("mediaserver_calls_active", "Calls in progress", lambda: len(kernel.calls))
        metrics.gauge("mediaserver_asyncio_tasks", "asyncio tasks alive in the server's loop", running_tasks)
        metrics.counter(
            "mediaserver_calls_started", "Calls started since the process began", lambda: kernel.calls_started
        )
        admission = self.admission  # [admission]: AI sessions against the capacity, refusals by reason
        metrics.gauge("mediaserver_ai_sessions", "AI conversations running (ai verbs)", lambda: admission.ai_sessions)
        metrics.gauge(
            "mediaserver_ai_reserved", "Admitted AI calls whose ai verb has not started", lambda: admission.ai_reserved
        )
        limits = admission.limits
        metrics.gauge("mediaserver_ai_capacity", "AI conversations admitted at most", lambda: limits.ai_capacity)
        metrics.gauge("mediaserver_max_calls", "Calls admitted at most (0: no limit)", lambda: limits.max_calls)
        metrics.labelled_counter(
            "mediaserver_calls_refused", "New calls refused with 503, by reason", "reason", lambda: admission.refused
        )
        metrics.counter(
            "mediaserver_ticker_late_frames", "Media ticks later than the late threshold", lambda: pacer.late_frames
        )
        cache, budget = self.tts_cache, self.partial_budget
        metrics.counter("mediaserver_tts_cache_hits", "Phrases spoken from the TTS cache", lambda: cache.hits)
        metrics.counter("mediaserver_tts_cache_misses", "Cacheable phrases synthesized", lambda: cache.misses)
        metrics.gauge("mediaserver_tts_cache_bytes", "Memory held by the TTS phrase cache", lambda: cache.bytes)
        metrics.counter(
            "mediaserver_asr_partials_skipped", "Partial ASR passes skipped by the load cap", lambda: budget.skipped
        )
        metrics.gauge(
            "mediaserver_ticker_deviation_p99_seconds",
            "p99 of the ticker's wakeup deviation (recent)",
            lambda: pacer.percentile(99) / 1000,
        )
        metrics.gauge(
            "mediaserver_ticker_deviation_max_seconds",
            "Largest ticker wakeup deviation",
            lambda: pacer.max_deviation_ns / 1e9,
        )
        metrics.gauge(
            "mediaserver_event_loop_lag_p99_seconds",
            "p99 of the event loop's lag (recent)",
            lambda: lag.summary()["p99_ms"] / 1000,
        )
        metrics.gauge(
            "mediaserver_event_loop_lag_max_seconds",
            "Largest event loop lag (recent)",
            lambda: lag.summary()["max_ms"] / 1000,
        )
        return metrics

    async def stop(self) -> None:
        if self._metrics_listener is not None:
            self._metrics_listener.close()
        if self._telemetry_listener is not None:
            self._telemetry_listener.close()
        if self.sidecars is not None:
            await self.sidecars.shutdown()
        if self.kernel:
            await self.kernel.shutdown()
        if self.sip:
            await self.sip.stop()
        if self.webrtc:
            await self.webrtc.stop()
        if self._lag_task:
            self._lag_task.cancel()
        if self._tick_task:
            self._tick_task.cancel()
            await asyncio.gather(self._tick_task, return_exceptions=True)
        if self._http_runner:
            await self._http_runner.cleanup()
        if self._http_session:
            await self._http_session.close()
        self.blocking.shutdown(wait=False, cancel_futures=True)
        self._unfavour_loop()
        if self.telemetry is not None:
            await asyncio.to_thread(self.telemetry.shutdown)  # flushes the last spans to the collector
        engines = self._ai_engines
        in_workers: list[object] = [self._tts]
        if engines is not None and engines.done() and not engines.cancelled() and engines.exception() is None:
            for worker in (engines.result().detector_executor, engines.result().asr_executor):
                if worker is not None:
                    worker.shutdown(wait=False, cancel_futures=True)
            in_workers += [engines.result().asr, engines.result().detector]
        for engine in in_workers:  # [performance] inference_process: their worker processes end now
            process = getattr(engine, "worker", None)
            if isinstance(process, EngineProcess):
                process.close()

    def _sidecar_manager(self, synthesizer: SpeechSynthesizer, scripts: ScriptRegistry) -> SidecarManager:
        """The sidecar manager (the ai_sidecar verb), on the AI engines, loaded on first use."""
        from mediaserver.agents.sidecar import SidecarServices
        from mediaserver.clock import wall_time
        from mediaserver.pipeline.llm import LanguageModel, LlmSettings

        ai, clock = self.settings.ai, self.clock

        async def engines() -> AiEngines:
            if not ai.enabled:
                raise RuntimeError("[llm] enabled = false: no language model for ai_sidecar")
            if self._ai_engines is None:
                self._ai_engines = asyncio.ensure_future(
                    asyncio.get_running_loop().run_in_executor(
                        self.blocking,
                        partial(load_ai_engines, partial_budget=self.partial_budget),
                        self.settings,
                        synthesizer,
                        self.blocking,
                    )
                )
                self._ai_engines.add_done_callback(_log_engine_failure)
            return await asyncio.shield(self._ai_engines)

        async def llm() -> LanguageModel:
            return (await engines()).llm

        async def asr() -> Any:
            return (await engines()).asr

        services = SidecarServices(
            llm=llm,
            asr=asr,
            vad=listening_vad,
            blocking=self.blocking,
            llm_settings=lambda model: LlmSettings(
                model=model, timeout_s=ai.timeout_s, first_token_timeout_s=ai.first_token_timeout_s
            ),
            http=lambda: self._http_session or aiohttp.ClientSession(),
            now_us=lambda: int(wall_time() * 1_000_000),
            monotonic_ms=lambda: clock.now_ns() // 1_000_000,
            default_model=ai.model,
            run_swml=scripts,
            signing_key=self.settings.swaig.key,  # [swaig] signing_key for the sidecar's SWAIG webhooks
        )
        return SidecarManager(services, self.events)

    def _ai_runner(
        self, synthesizer: SpeechSynthesizer, agents: AgentRegistry, scripts: ScriptRegistry
    ) -> SessionRunner:
        """The ai verb's runner; its engines load once, on first use."""
        from mediaserver.swaig.gateway import make_tool_runner
        from mediaserver.swaig.prompt import render_prompt

        async def ready() -> AiEngines:
            # Loaded on the first ai verb (not at start: servers without AI flows pay nothing).
            if self._ai_engines is None:
                loop = asyncio.get_running_loop()
                self._ai_engines = asyncio.ensure_future(
                    loop.run_in_executor(
                        self.blocking,
                        partial(load_ai_engines, partial_budget=self.partial_budget),
                        self.settings,
                        synthesizer,
                        self.blocking,
                    )
                )
                self._ai_engines.add_done_callback(_log_engine_failure)
            return await asyncio.shield(self._ai_engines)

        return SessionRunner(
            ready,
            tool_factory=partial(make_tool_runner, signing_key=self.settings.swaig.key),
            render_prompt=render_prompt,
            default_model=self.settings.ai.model,
            agents=agents,
            scripts=scripts,
        )


def start_telemetry(settings: Settings) -> Telemetry | None:
    """Turn traces to `[telemetry] otlp_endpoint` (None when empty); StartupError without the SDK."""
    endpoint = settings.telemetry.otlp_endpoint
    if not endpoint:
        return None
    try:
        telemetry = otlp_telemetry(endpoint)
    except TelemetryUnavailable as exc:
        raise StartupError(str(exc)) from None
    log.info("tracing turns", extra={"otlp_endpoint": endpoint})
    return telemetry


async def _asr_of(runner: SessionRunner) -> SpeechRecognizer:
    engines = runner.engines if isinstance(runner.engines, AiEngines) else await runner.engines()
    return engines.asr


def _log_engine_failure(future: asyncio.Future[AiEngines]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("AI engines failed to load; ai verbs will fail: %s", future.exception())


async def serve(settings: Settings, drain_timeout_s: float = DRAIN_TIMEOUT_S) -> None:
    """Run until SIGINT (stop now: live calls are hung up) or SIGTERM (drain: refuse new calls
    with 503, let live ones finish, then stop; a second signal stops at once)."""
    server = MediaServer(settings)
    stop = asyncio.Event()
    drain = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.set() if drain.is_set() else drain.set())
    try:
        await server.start()
        stopped = asyncio.create_task(stop.wait())
        draining = asyncio.create_task(drain.wait())
        await asyncio.wait({stopped, draining}, return_when=asyncio.FIRST_COMPLETED)
        if drain.is_set() and not stop.is_set() and server.kernel is not None:
            server.kernel.start_draining()
            drained = asyncio.create_task(server.kernel.wait_drained(drain_timeout_s))
            await asyncio.wait({drained, stopped}, return_when=asyncio.FIRST_COMPLETED)
            log.info("drained" if drained.done() and drained.result() else "drain cut short")
            drained.cancel()
        for task in (stopped, draining):
            task.cancel()
        log.info("stopping")
    finally:
        await server.stop()
