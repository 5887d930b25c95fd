"""Wiring: the only place that builds concrete objects from settings (DESIGN §2)."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

import aiohttp
from aiohttp import web

from mediaserver.clock import MonotonicClock
from mediaserver.kernel.registry import Kernel
from mediaserver.kernel.speech import SpeechSynthesizer
from mediaserver.kernel.tick import MediaTicker
from mediaserver.pipeline.tts import TtsEngine
from mediaserver.settings import Settings
from mediaserver.signaling.http import build_http_app
from mediaserver.signaling.sip import SipFrontEnd
from mediaserver.transport.ports import PortPool

log = logging.getLogger("mediaserver")


class StartupError(RuntimeError):
    """The server cannot start (a port is taken, a model is missing); the message says which."""


def load_tts(settings: Settings) -> TtsEngine:
    from mediaserver.pipeline.engines.piper_tts import PiperTts

    return PiperTts(model_path=settings.tts.model or None, threads=settings.tts.threads)


class MediaServer:
    def __init__(self, settings: Settings, tts: TtsEngine | None = None) -> None:
        self.settings = settings
        self._tts = tts
        # Inference is CPU-bound; more threads than cores only adds queueing (COSTS.md §7).
        self.blocking = ThreadPoolExecutor(max_workers=2, thread_name_prefix="engine")
        self.ticker = MediaTicker(MonotonicClock())
        self.kernel: Kernel | None = None
        self.sip: SipFrontEnd | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._http_runner: web.AppRunner | None = None
        self._http_session: aiohttp.ClientSession | None = None
        self.http_port = settings.http.port

    async def start(self) -> None:
        settings = self.settings
        loop = asyncio.get_running_loop()
        if self._tts is None:
            self._tts = await loop.run_in_executor(self.blocking, load_tts, settings)
        self.kernel = Kernel(
            self.ticker,
            SpeechSynthesizer(self._tts, self.blocking),
            self.blocking,
            settings.routes.document_for,
            call_log_dir=settings.logging.call_log_dir,
        )
        self._http_session = aiohttp.ClientSession()
        self.kernel.http = self._http_session
        self.sip = SipFrontEnd(settings, self.kernel, PortPool(settings.rtp.port_min, settings.rtp.port_max))
        try:
            await self.sip.start()
        except OSError as exc:
            raise StartupError(f"cannot listen for SIP on {settings.sip.host}:{settings.sip.port}: "
                               f"{exc.strerror or exc}") from exc
        sip = self.sip
        health = build_http_app(self.kernel, lambda: {"rtp_ports_in_use": sip.ports.in_use, "sip_port": sip.port})
        self._http_runner = web.AppRunner(health, access_log=None)
        await self._http_runner.setup()
        site = web.TCPSite(self._http_runner, settings.http.host, settings.http.port)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(f"cannot listen for HTTP on {settings.http.host}:{settings.http.port}: "
                               f"{exc.strerror or exc}") from exc
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.http_port = server.sockets[0].getsockname()[1]
        self._tick_task = asyncio.create_task(self.ticker.run(), name="media-ticker")
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

    async def stop(self) -> None:
        if self.kernel:
            await self.kernel.shutdown()
        if self.sip:
            await self.sip.stop()
        if self._tick_task:
            self._tick_task.cancel()
            await asyncio.gather(self._tick_task, return_exceptions=True)
        if self._http_runner:
            await self._http_runner.cleanup()
        if self._http_session:
            await self._http_session.close()
        self.blocking.shutdown(wait=False, cancel_futures=True)


async def serve(settings: Settings) -> None:
    server = MediaServer(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        await stop.wait()
        log.info("stopping")
    finally:
        await server.stop()
