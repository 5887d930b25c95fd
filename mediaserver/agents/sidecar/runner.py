"""The sidecar manager: the `ai_sidecar` verb, the runtime API, transcribers and event delivery.

Theory of operation: one `SidecarManager` per process. `start(call, body, variables)` is both
the verb (through `__call__`, the executor's `SidecarRunner`) and the control API's `start`: it
returns `+OK started` or the spec's `-ERR: …` text and never raises. A started sidecar is a
`Sidecar`: its `SidecarEngine`, the `TurnDetector`, one `LegTranscriber` per leg (the call's
own inbound audio is the remote-caller; the bridged leg's inbound audio, known once `bridged(a,
b)` is reported, is the local-caller), the idle timer, and the webhook poster when `url` is set.
Every event goes to the `EventBus` (kind "sidecar") and, when `url` is set, to the webhook.

One transcriber per call: `transcribers` holds the call ids with a transcriber (sidecar today,
`live_transcribe` later); a second start is refused with the spec's error. The sidecar dies with
the call: when the call ends it closes with `transcribe_close` (or the reason an action gave:
`hung_up`, `transferred`); `stop(call_id)` closes with `api_stop`. On close the global_data tree
is flushed to the SWML variable `ai_agents_global_data` (and on every change), and an `ai_summary`
runs when asked for, published as a transcribe `conversation_log` event.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from mediaserver.agents.ai.tools import ToolRunner  # the lifecycle one: close() is a no-op by default
from mediaserver.agents.sidecar.config import (
    ASK_FRAMING,
    SidecarConfig,
    SidecarConfigError,
    prompt_variables,
    render_operator_prompt,
    system_prompt,
)
from mediaserver.agents.sidecar.control import SidecarControl
from mediaserver.agents.sidecar.engine import SidecarEngine
from mediaserver.agents.sidecar.transcribe import LegTranscriber
from mediaserver.agents.sidecar.turns import TurnDetector
from mediaserver.agents.sidecar.webhook import WebhookPoster, call_info
from mediaserver.events import AiSidecar, AiSidecarFailed, AiSidecarLegs, AiSidecarWebhookFailed
from mediaserver.kernel.call import Call
from mediaserver.kernel.eventbus import EventBus
from mediaserver.kernel.services import SwmlRunner
from mediaserver.pipeline.asr import SpeechRecognizer
from mediaserver.pipeline.llm import LanguageModel, LlmSettings
from mediaserver.pipeline.vad import VoiceActivityDetector

__all__ = ["Sidecar", "SidecarManager", "SidecarServices"]

log = logging.getLogger(__name__)

PERSIST_VAR = "ai_agents_global_data"
ERR_INVALID_CALL = "-ERR: Invalid Call"
ERR_NO_SIDECAR = "-ERR: no sidecar attached"
ERR_BUSY = "-ERR: there is already a transcriber attached to this call"
ERR_BUILD = "-ERR: failed to build sidecar app (model resolution failed?)"
ERR_TRANSCRIBE = "-ERR: failed to start transcribe"


@dataclass
class SidecarServices:
    """The engines a sidecar needs; any of them may be an async factory loaded on first use."""

    llm: Callable[[], Awaitable[LanguageModel]]
    blocking: Executor
    asr: Callable[[], Awaitable[SpeechRecognizer]] | None = None
    vad: Callable[[], VoiceActivityDetector] | None = None
    llm_settings: Callable[[str], LlmSettings] = lambda model: LlmSettings(model=model)
    tool_factory: Callable[[Call, SidecarConfig], ToolRunner] | None = None
    http: Callable[[], aiohttp.ClientSession] | None = None
    now_us: Callable[[], int] = lambda: 0
    monotonic_ms: Callable[[], int] = lambda: 0
    run_swml: SwmlRunner | None = None  # the kernel's running scripts (KernelServices.scripts)
    local_tz: str = "UTC"
    default_model: str = ""  # when the verb names no model ([llm] model); empty = the spec's gpt-4o-mini
    signing_key: str = ""  # [swaig] signing_key: the default SWAIG runner signs its webhooks


@dataclass
class Sidecar:
    call: Call
    config: SidecarConfig
    engine: SidecarEngine
    detector: TurnDetector
    poster: WebhookPoster | None
    variables: MutableMapping[str, Any] | None
    transcribers: dict[str, LegTranscriber] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    end_reason: str = ""
    closing: bool = False
    supervisor: asyncio.Task[None] | None = None


class SidecarManager:
    def __init__(self, services: SidecarServices, bus: EventBus) -> None:
        self.services = services
        self.bus = bus
        self.sidecars: dict[str, Sidecar] = {}
        self.transcribers: dict[str, str] = {}  # call id -> "sidecar" | "live_transcribe"
        self.bridges: dict[str, Call] = {}  # call id -> the leg it is bridged to
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the verb ------------------------------------------------------------------------------
    async def __call__(self, call: Call, params: Any, variables: Mapping[str, Any]) -> str:
        reply = await self.start(call, params, variables)
        level = logging.INFO if reply.startswith("+OK") else logging.WARNING
        call.events.emit(AiSidecar(reply=reply), level=level)
        return reply

    # -- runtime API ---------------------------------------------------------------------------
    async def start(self, call: Call | None, body: Any, variables: Mapping[str, Any] | None = None) -> str:
        if call is None or call.is_over:
            return ERR_INVALID_CALL
        if isinstance(body, str | bytes):
            try:
                body = json.loads(body)
            except ValueError:
                return "-ERR: Invalid JSON config"
        if call.call_id in self.transcribers:
            return ERR_BUSY
        try:
            config = SidecarConfig.from_body(body, default_model=self.services.default_model)
            render_operator_prompt(config.prompt)  # a missing prompt file fails the start, not a tick
        except SidecarConfigError as exc:
            return f"-ERR: {exc}"
        self.transcribers[call.call_id] = "sidecar"
        try:
            return await self._start(call, config, variables)
        except Exception:
            self.transcribers.pop(call.call_id, None)
            raise

    async def _start(self, call: Call, config: SidecarConfig, variables: Mapping[str, Any] | None) -> str:
        svc = self.services
        try:
            llm = await svc.llm()
            tools = (
                svc.tool_factory(call, config) if svc.tool_factory else _default_tools(call, config, svc.signing_key)
            )
        except Exception as exc:
            self.transcribers.pop(call.call_id, None)
            call.events.emit(AiSidecarFailed(error=repr(exc)))
            return ERR_BUILD
        try:
            asr = await svc.asr() if svc.asr is not None else None
        except Exception as exc:
            self.transcribers.pop(call.call_id, None)
            call.events.emit(AiSidecarFailed(error=repr(exc)))
            return ERR_TRANSCRIBE
        inherited = variables.get(PERSIST_VAR) if variables is not None else None
        # The channel's runtime state beats declarative defaults (seed 002, Persistence).
        global_data = {**config.global_data, **(inherited if isinstance(inherited, dict) else {})}
        writable = variables if isinstance(variables, MutableMapping) else None
        number = call.from_uri.split(":", 1)[-1].split("@")[0]
        destination = call.to_uri.split(":", 1)[-1].split("@")[0]
        roots = prompt_variables(
            config,
            global_data,
            call_id=call.call_id,
            caller_id_number=number,
            destination_number=destination,
            local_tz=svc.local_tz,
            now_unix_s=svc.now_us() / 1e6,
        )
        channel_data = {
            "call_id": call.call_id,
            "caller_id_number": number,
            "destination_number": destination,
            "customer_role": config.customer_role,
            "lang": config.lang,
        }
        info = call_info(call.call_id, call.info)
        poster = (
            WebhookPoster(
                config.url,
                info,
                svc.http or _no_http,
                on_failure=lambda why: call.events.emit(AiSidecarWebhookFailed(error=why)),
            )
            if config.url
            else None
        )

        def sink(event: dict[str, Any]) -> None:
            self.bus.publish(call.call_id, event, kind="sidecar")
            if poster is not None:
                poster.send(event)

        control = SidecarControl(
            config.params.act_on_channel,
            hangup=lambda reason: self._hangup(call.call_id, reason),
            stop=lambda reason: self.request_stop(call.call_id, reason),
            run_swml=self.swml_for(call),
        )

        def persist(data: dict[str, Any]) -> None:
            if writable is not None:
                writable[PERSIST_VAR] = json.loads(json.dumps(data, default=str))

        engine = SidecarEngine(
            config,
            llm,
            tools,
            control,
            sink,
            system_prompt=system_prompt(config, roots),
            ask_prompt=f"{ASK_FRAMING}\n\n{system_prompt(config, roots)}",
            channel_data=channel_data,
            now_us=svc.now_us,
            monotonic_ms=svc.monotonic_ms,
            llm_settings=svc.llm_settings(config.model),
            global_data=global_data,
            on_global_data=persist,
        )
        control.engine = engine
        persist(global_data)
        sidecar = Sidecar(
            call, config, engine, TurnDetector(config.customer_role, config.params.idle_timeout_ms), poster, writable
        )
        self.sidecars[call.call_id] = sidecar
        engine.start()
        if asr is not None and svc.vad is not None:
            self._listen(sidecar, "remote-caller", call, asr)
            leg = self.bridges.get(call.call_id)
            if leg is not None:
                self._listen(sidecar, "local-caller", leg, asr)
        sidecar.supervisor = asyncio.get_running_loop().create_task(
            self._supervise(sidecar), name=f"sidecar:{call.call_id}"
        )
        return "+OK started"

    def status(self, call_id: str) -> str:
        sidecar = self.sidecars.get(call_id)
        return sidecar.engine.status_line() if sidecar else ERR_NO_SIDECAR

    def counters(self, call_id: str) -> dict[str, int] | None:
        """The call's sidecar counters (running, ticks, insights, …), or None without a sidecar."""
        sidecar = self.sidecars.get(call_id)
        return sidecar.engine.status() if sidecar else None

    def user_input(self, call_id: str, text: str) -> bool:
        """A user message into the call's sidecar, then a tick; False when it has none."""
        sidecar = self.sidecars.get(call_id)
        if sidecar is None:
            return False
        sidecar.engine.user_input(text)
        return True

    def poke(self, call_id: str, text: str) -> str:
        sidecar = self.sidecars.get(call_id)
        if sidecar is None:
            return ERR_NO_SIDECAR
        sidecar.engine.poke(text)
        return "+OK poked"

    def ask(self, call_id: str, question: str) -> str:
        sidecar = self.sidecars.get(call_id)
        if sidecar is None:
            return ERR_NO_SIDECAR
        sidecar.engine.ask(question)
        return "+OK queued"

    async def stop(self, call_id: str, reason: str = "api_stop") -> str:
        sidecar = self.sidecars.get(call_id)
        if sidecar is None:
            return ERR_NO_SIDECAR
        await self._close(sidecar, reason)
        return "+OK stopped"

    def request_stop(self, call_id: str, reason: str) -> None:
        """From inside a tick (a stop or transfer action): close on a task of its own."""
        sidecar = self.sidecars.get(call_id)
        if sidecar is not None and not sidecar.end_reason:
            sidecar.end_reason = reason
            task = asyncio.get_running_loop().create_task(self._close(sidecar, reason))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _hangup(self, call_id: str, reason: str) -> None:
        sidecar = self.sidecars.get(call_id)
        if sidecar is None:
            return
        sidecar.end_reason = sidecar.end_reason or "hung_up"
        sidecar.call.hangup(reason=f"ai_sidecar {reason}")

    # -- transcripts and turns ---------------------------------------------------------------
    def transcript(self, call_id: str, leg: str, text: str, confidence: float = 1.0) -> None:
        """A final transcript of one leg (the transcribers call this; tests may too)."""
        sidecar = self.sidecars.get(call_id)
        if sidecar is None or not sidecar.engine.running:
            return
        now = self.services.monotonic_ms()
        role = "customer" if leg == sidecar.config.customer_role else "agent"
        utterance = {
            "role": role,
            "leg": leg,
            "text": text,
            "confidence": round(confidence, 3),
            "ts": self.services.now_us(),
        }
        sidecar.engine.record_utterance(utterance)
        if sidecar.config.params.live_events:
            event = {"type": "utterance", **utterance, "call_id": call_id}
            self.bus.publish(call_id, event, kind="transcribe")
            if sidecar.poster is not None:
                sidecar.poster.send(event, key="utterance")
        turn = sidecar.detector.final(leg, text, now)
        if turn is not None:
            self._cancel_timer(sidecar)
            sidecar.engine.turn(turn)
        else:
            self._arm(sidecar)

    def speech_started(self, call_id: str, leg: str) -> None:
        sidecar = self.sidecars.get(call_id)
        if sidecar is not None:
            sidecar.detector.speech_started(leg, self.services.monotonic_ms())
            if sidecar.detector.deadline_ms is None:
                self._cancel_timer(sidecar)

    def _arm(self, sidecar: Sidecar) -> None:
        self._cancel_timer(sidecar)
        deadline = sidecar.detector.deadline_ms
        if deadline is None:
            return
        delay_s = max(0, deadline - self.services.monotonic_ms()) / 1000
        sidecar.timer = asyncio.get_running_loop().call_later(delay_s, self._poll, sidecar)

    def _poll(self, sidecar: Sidecar) -> None:
        sidecar.timer = None
        turn = sidecar.detector.poll(self.services.monotonic_ms())
        if turn is not None:
            sidecar.engine.turn(turn)
        elif sidecar.detector.deadline_ms is not None:
            self._arm(sidecar)  # the clock said "not yet" (timer granularity): look again

    @staticmethod
    def _cancel_timer(sidecar: Sidecar) -> None:
        if sidecar.timer is not None:
            sidecar.timer.cancel()
            sidecar.timer = None

    # -- legs --------------------------------------------------------------------------------
    def bridged(self, a: Call, b: Call) -> None:
        """The Dialer bridged a and b: a sidecar on either side now hears the other leg."""
        self.bridges[a.call_id] = b
        self.bridges[b.call_id] = a
        for leg in (a, b):
            task = asyncio.get_running_loop().create_task(self._forget_when_over(leg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        for call, other in ((a, b), (b, a)):
            sidecar = self.sidecars.get(call.call_id)
            mine = sidecar.transcribers.get("remote-caller") if sidecar is not None else None
            if sidecar is None or mine is None:
                continue
            if "local-caller" not in sidecar.transcribers:
                self._listen(sidecar, "local-caller", other, mine.asr)
            call.events.emit(AiSidecarLegs(customer_call=call.call_id, agent_call=other.call_id))

    def _listen(self, sidecar: Sidecar, leg: str, source: Call, asr: SpeechRecognizer) -> None:
        assert self.services.vad is not None
        params = sidecar.config.params
        call_id = sidecar.call.call_id
        transcriber = LegTranscriber(
            leg,
            self.services.vad,
            asr,
            self.services.blocking,
            on_speech=lambda which: self.speech_started(call_id, which),
            on_final=lambda which, text, conf: self.transcript(call_id, which, text, conf),
            silence_ms=params.vad_silence_ms or 500,
            hints=list(sidecar.config.hints),
        )
        transcriber.attach(source.media)
        sidecar.transcribers[leg] = transcriber

    # -- teardown ----------------------------------------------------------------------------
    async def _supervise(self, sidecar: Sidecar) -> None:
        await sidecar.call.ended.wait()
        await self._close(sidecar, sidecar.end_reason or "transcribe_close")

    async def _close(self, sidecar: Sidecar, reason: str) -> None:
        call_id = sidecar.call.call_id
        if sidecar.closing:
            await sidecar.engine.close(reason)  # already closing: this waits for it
            return
        sidecar.closing = True
        self._cancel_timer(sidecar)
        for transcriber in sidecar.transcribers.values():
            transcriber.detach()
        await sidecar.engine.close(reason)
        try:
            await sidecar.engine.tools.close()  # SWAIG's runner may own an HTTP session
        except Exception:
            log.exception("closing the sidecar's tool runner failed")
        if sidecar.variables is not None:
            sidecar.variables[PERSIST_VAR] = json.loads(json.dumps(sidecar.engine.global_data, default=str))
        if sidecar.config.params.ai_summary:
            summary = await sidecar.engine.call_summary()
            event = {
                "type": "conversation_log",
                "summary": summary,
                "transcript": sidecar.engine.transcript,
                "call_id": call_id,
            }
            self.bus.publish(call_id, event, kind="transcribe")
            if sidecar.poster is not None:
                sidecar.poster.send(event, key="conversation_log")
        if sidecar.poster is not None:
            await sidecar.poster.drain()
        self.sidecars.pop(call_id, None)
        self.transcribers.pop(call_id, None)
        if sidecar.supervisor is not None and sidecar.supervisor is not asyncio.current_task():
            sidecar.supervisor.cancel()

    async def _forget_when_over(self, call: Call) -> None:
        await call.ended.wait()
        self.bridges.pop(call.call_id, None)

    def swml_for(self, call: Call) -> Callable[[dict[str, Any], bool], bool] | None:
        """The sidecar's SWML/transfer actions on the call's script (kernel/inline.py): a transfer
        is left for the script (False: refused, logged on the call); an inline document runs
        beside whatever the script is doing, in a task of ours. None: no runner wired."""
        runner = self.services.run_swml
        if runner is None:
            return None

        async def inline(document: dict[str, Any]) -> None:
            await runner.run_inline(call, document, source="sidecar")

        def run(document: dict[str, Any], transfer: bool) -> bool:
            if transfer:
                return not runner.transfer(call, document, source="sidecar")
            task = asyncio.get_running_loop().create_task(inline(document))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return True

        return run

    async def shutdown(self) -> None:
        for call_id in list(self.sidecars):
            await self.stop(call_id, "transcribe_close")


def _no_http() -> aiohttp.ClientSession:
    raise RuntimeError("no HTTP client configured for sidecar webhooks")


def _default_tools(call: Call, config: SidecarConfig, signing_key: str = "") -> ToolRunner:
    from mediaserver.swaig.gateway import SwaigToolRunner, call_info_from

    ai = {"SWAIG": config.swaig, "params": dict(config.permissions), "global_data": config.global_data}
    return SwaigToolRunner(ai, call_info_from(call, ai), signing_key=signing_key)
