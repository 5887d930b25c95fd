"""Carries out the effects of the SWML interpreter against one call.

Theory of operation: the interpreter is a sans-I/O state machine that returns one effect at a
time; this executor performs it and resumes the interpreter with the result. It is the call's
script: `Call.run(executor.run)`. Media effects (answer, play, sleep, hangup) are handled here;
the others go through `HANDLERS` to one module per concern under `kernel/verbs/` (HTTP
`request` and SWML fetches, `prompt`, dialing, small verbs) and `kernel/recording.py`. Handlers
get a `VerbContext` (kernel/verbs/context.py), built once here from the services and the
interpreter, never the executor itself: the verb modules sit below this one (DESIGN §2).
Adding a verb is one module in `kernel/verbs/` declaring a `KernelVerb` (effect, builder,
handler together): `HANDLERS` takes its handler from kernel/verbs/registry.py, and the
interpreter its builder (`Interpreter(..., builders=kernel_builders())`). The rows written out
below are the verbs whose effects swml itself declares.

Failures never leave the caller in silence: a play item that cannot be fetched or decoded is
logged and skipped; a verb this server does not execute is logged as `verb_unsupported` and
sets `<verb>_result = "unsupported"`; a document that turns out bad at run time (an expression
error, a fetch that fails, a section that does not exist) is logged with the JSON path, the
configured apology is spoken, and the call is hung up.

Agents reach the running script through `services.scripts` (kernel/inline.py): the executor
attaches itself there while it runs. `request_transfer` (SWAIG `SWML` with transfer, `transfer`)
makes the script continue in another document once the current effect returns (an effect other
than `ai` is cancelled for it); `run_inline` runs a document's main on the live call with these
same handlers and variables and returns to the agent (its errors are logged, never hung up on).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any
from urllib.parse import unquote, urlparse

import aiohttp
import numpy as np

from mediaserver import events
from mediaserver.audio.dsp import apply_gain_db
from mediaserver.audio.tones import ring_cadence_ms, ringback
from mediaserver.errors import HangupCause
from mediaserver.kernel import recording
from mediaserver.kernel.call import Call, CallEnded
from mediaserver.kernel.inline import InlineResult
from mediaserver.kernel.services import FETCH_TIMEOUT_S, KernelServices, SwmlOptions
from mediaserver.kernel.speech import SpeechSynthesizer
from mediaserver.kernel.verbs import dial, http, misc, prompt
from mediaserver.kernel.verbs.context import Handler, VerbContext
from mediaserver.kernel.verbs.registry import kernel_builders, kernel_handlers
from mediaserver.kernel.verbs.sidecar import ai_sidecar
from mediaserver.pipeline.media_files import MediaFileError, decode_audio_file
from mediaserver.swml import effects
from mediaserver.swml.document import Document
from mediaserver.swml.effects import (
    Ai,
    AiFinished,
    Answer,
    Effect,
    EffectResult,
    Finished,
    Hangup,
    Play,
    Played,
    Sleep,
)
from mediaserver.swml.errors import SwmlError
from mediaserver.swml.expr import JsEvaluator
from mediaserver.swml.interpreter import Interpreter
from mediaserver.swml.play_urls import PlayFile, PlayItem, PlayRing, PlaySay, PlaySilence

log = logging.getLogger(__name__)

HANGUP_CAUSES = {
    "hangup": HangupCause.NORMAL_CLEARING,
    "busy": HangupCause.USER_BUSY,
    "decline": HangupCause.CALL_REJECTED,
}
__all__ = ["HANDLERS", "HANGUP_CAUSES", "SwmlExecutor", "SwmlOptions"]  # SwmlOptions: kernel/services.py

# The effects beyond answer/play/sleep/hangup/ai: `await handler(verb_context, call, effect)`.
HANDLERS: dict[type, Handler] = {
    effects.Request: http.request,
    effects.FetchSwml: http.fetch,
    effects.Prompt: prompt.prompt,
    effects.Record: recording.record,
    effects.RecordCall: recording.record_call,
    effects.StopRecordCall: recording.stop_record_call,
    effects.Connect: dial.connect,
    effects.SipRefer: dial.sip_refer,
    effects.SendDigits: misc.send_digits,
    effects.AiSidecar: ai_sidecar,
    effects.Unsupported: misc.unsupported,
}
if overlap := HANDLERS.keys() & kernel_handlers().keys():  # pragma: no cover - a wiring mistake
    raise RuntimeError(f"effects handled twice: {sorted(t.__name__ for t in overlap)}")
HANDLERS.update(kernel_handlers())  # user_event, denoise, detect_machine, tap… (one module each)


async def _script_ended(call: Call, items: tuple[PlayItem, ...], volume_db: float, path: str) -> bool:
    """`VerbContext.play` once the script has ended: nothing more is played."""
    return False


class SwmlExecutor:
    def __init__(
        self,
        interpreter: Interpreter,
        services: KernelServices,
        *,
        user_events: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        """One call's script on the kernel's services; the verbs get `self.verbs`."""
        self.interp = interpreter
        self.ai_runner = services.ai_runner
        self.scripts = services.scripts
        self._transfer_to: Document | None = None
        self._transfer_requested = asyncio.Event()
        self._inline_lock = asyncio.Lock()
        self.tts: SpeechSynthesizer = services.synthesizer
        self.blocking: Executor = services.blocking
        self.http: aiohttp.ClientSession | None = services.http
        self.options: SwmlOptions = services.swml
        self.verbs = VerbContext(
            interp=interpreter,
            play=self.play,
            blocking=services.blocking,
            http=services.http,
            dialer=services.dialer,
            recognizer=services.prompt_recognizer,
            sidecar_runner=services.sidecar_runner,
            options=services.swml,
            user_events=user_events,
        )

    async def run(self, call: Call) -> None:
        self.scripts.attach(call.call_id, self)
        try:
            effect: Effect = self.interp.start()
            while True:
                result = await self._interruptible(call, effect)
                if isinstance(effect, Hangup | Finished):
                    return
                if self._transfer_to is not None:
                    # An agent's SWAIG transfer: the script goes on in that document (kernel/inline.py).
                    document, self._transfer_to = self._transfer_to, None
                    self._transfer_requested.clear()
                    self.interp.replace(document)
                effect = self.interp.resume(result)
        except SwmlError as exc:
            # A document that fails mid-call: log the path, apologise, hang up. Never dead air.
            call.events.emit(events.SwmlError(path=exc.path, error=exc.message))
            await self.apologize(call)
            call.hangup(HangupCause.SWML_ERROR, reason=str(exc))
        finally:
            self.scripts.detach(call.call_id, self)
            recording.stop_all(self.verbs, call)
            if isinstance(self.interp.evaluator, JsEvaluator):
                self.interp.evaluator.close()  # the call's V8 isolate and its thread
            # `verbs.play` is this executor's bound method: the pair would be a reference cycle
            # that only a full GC pass frees (a loop stall, kernel/call.py `release`).
            self.verbs = dataclasses.replace(self.verbs, play=_script_ended)

    async def _dispatch(self, call: Call, effect: Effect, verbs: VerbContext) -> EffectResult | None:
        call.events.emit(events.VerbStarted(verb=type(effect).__name__.lower(), path=effect.path))
        handler = HANDLERS.get(type(effect))
        if handler is not None:
            return await handler(verbs, call, effect)
        return await self._perform(call, effect)

    async def _interruptible(self, call: Call, effect: Effect) -> EffectResult | None:
        """Perform `effect`; a transfer requested meanwhile cancels it (None is its result).

        The `ai` verb is never cancelled: its session ends itself on the transfer it asked for,
        and must deliver its post-prompt summary first.
        """
        if isinstance(effect, Ai | Hangup | Finished):
            return await self._dispatch(call, effect, self.verbs)
        task = asyncio.ensure_future(self._dispatch(call, effect, self.verbs))
        transfer = asyncio.ensure_future(self._transfer_requested.wait())
        try:
            await asyncio.wait({task, transfer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            transfer.cancel()
            if not task.done():
                task.cancel()  # a transfer, or the call's end cancelling the script
        if task.cancelled() or not task.done():
            await asyncio.gather(task, return_exceptions=True)  # let its cleanup run
            return None
        return task.result()

    # ---- SWML from an agent (kernel/inline.py's CallScript) ----------------------------------

    def request_transfer(self, document: Document) -> None:
        self._transfer_to = document
        self._transfer_requested.set()

    async def run_inline(self, call: Call, document: Document) -> InlineResult:
        """Run `document`'s main on the live call with this script's handlers and variables, then
        return to the agent that asked (kernel/inline.py says what ends it)."""
        async with self._inline_lock:  # two actions in one reply run one after the other
            interp = Interpreter(
                document,
                call=self.interp.call,
                envs=self.interp.envs,
                evaluator=self.interp.evaluator,
                builders=kernel_builders(),
            )
            interp.variables = self.interp.variables  # one scope: the call's variables
            interp.variables.pop("ai_response", None)  # only this run's says what the agent says next
            verbs = dataclasses.replace(self.verbs, interp=interp)  # background jobs stay the script's
            try:
                effect = interp.start()
                while not isinstance(effect, Finished):
                    if isinstance(effect, Ai):
                        call.events.emit(
                            events.VerbUnsupported(verb=effect.verb, path=effect.path, reason="ai inside an ai action")
                        )
                        result: EffectResult | None = AiFinished(result="failed")
                    else:
                        result = await self._dispatch(call, effect, verbs)
                    if isinstance(effect, Hangup) or call.is_over:
                        break
                    effect = interp.resume(result)
            except SwmlError as exc:
                # The agent's document is wrong: logged with its path; the call and the agent go on.
                call.events.emit(events.SwmlError(path=exc.path, error=exc.message))
                return InlineResult(ran=False, error=str(exc), variables=dict(interp.variables))
            return InlineResult(
                ran=True,
                variables=dict(interp.variables),
                ai_response=_ai_response(interp),
                hung_up=call.is_over,
            )

    async def apologize(self, call: Call) -> None:
        if call.is_over or not self.options.apology:
            return
        try:
            if not call.answered:
                call.answer()
            call.media.stop_playout()
            await self.say(call, self.options.apology, 0.0)
        except (CallEnded, OSError, RuntimeError) as exc:
            call.events.emit(events.ApologyFailed(error=repr(exc)))

    async def _perform(self, call: Call, effect: Effect) -> EffectResult | None:
        if isinstance(effect, Answer):
            call.answer()
            return None
        if isinstance(effect, Play):
            if not call.answered and effect.auto_answer:
                call.answer()
            return Played(completed=await self.play(call, effect.items, effect.volume_db, effect.path))
        if isinstance(effect, Sleep):
            if effect.duration_ms < 0:
                await call.ended.wait()
            else:
                await asyncio.sleep(effect.duration_ms / 1000)
            return None
        if isinstance(effect, Hangup):
            call.hangup(HANGUP_CAUSES.get(effect.reason, HangupCause.NORMAL_CLEARING), reason=effect.reason)
            return None
        if isinstance(effect, Finished):
            call.hangup(HangupCause.NORMAL_CLEARING, reason="end of document")
            return None
        if isinstance(effect, Ai):
            # The runner answers the call (services.NoAiRunner, on a server without AI, does not).
            return await self.ai_runner(call, effect, self.interp.variables)
        raise TypeError(f"no executor for effect {effect!r}")

    # ---- media helpers (also used by prompt and record) ------------------------------------

    async def play(self, call: Call, items: tuple[PlayItem, ...], volume_db: float, path: str) -> bool:
        if not call.answered:
            # Without auto_answer there is no media path yet (early media comes with a later issue).
            call.events.emit(events.PlaySkipped(path=path, reason="call not answered"))
            return False
        for item in items:
            call.events.emit(events.PlayItem(path=path, item=type(item).__name__, detail=_describe(item)))
            try:
                completed = await self._play_item(call, item, volume_db)
            except (MediaFileError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                call.events.emit(events.PlayFailed(path=path, error=str(exc)))
                continue
            if not completed:
                return False
        return True

    async def _play_item(self, call: Call, item: PlayItem, volume_db: float) -> bool:
        rate = call.media.sample_rate
        if isinstance(item, PlaySilence):
            pcm = np.zeros(rate * item.duration_ms // 1000, dtype=np.int16)
            return await call.wait_played(call.enqueue_audio(pcm, rate))
        if isinstance(item, PlayRing):
            pcm = ringback(item.duration_ms or ring_cadence_ms(item.country), rate, item.country)
            return await call.wait_played(call.enqueue_audio(_gain(pcm, volume_db), rate))
        if isinstance(item, PlayFile):
            data = await self._fetch_media(item.url)
            pcm = await asyncio.get_running_loop().run_in_executor(self.blocking, decode_audio_file, data, rate)
            return await call.wait_played(call.enqueue_audio(_gain(pcm, volume_db), rate))
        if isinstance(item, PlaySay):
            return await self.say(call, item.text, volume_db)
        raise TypeError(f"no player for {item!r}")

    async def say(self, call: Call, text: str, volume_db: float) -> bool:
        mark = None
        first = True
        async for chunk in self.tts.stream(text):
            if first:
                call.events.emit(events.TtsFirstAudio(text=text[:80]))
                first = False
            # Each sentence is resampled as its own utterance: Piper's chunks do not join mid-word.
            mark = call.enqueue_audio(_gain(chunk.pcm, volume_db), chunk.sample_rate, final=True)
        return True if mark is None else await call.wait_played(mark)

    async def _fetch_media(self, url: str) -> str | bytes:
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https"):
            if self.http is None:
                raise MediaFileError(f"{url}: no HTTP client configured")
            timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
            async with self.http.get(url, timeout=timeout) as response:
                if response.status != 200:
                    raise MediaFileError(f"{url}: HTTP {response.status}")
                return await response.read()
        # A missing local file fails in decode_audio_file, off the loop, with the path named.
        return unquote(parsed.path) if parsed.scheme == "file" else url


def _gain(pcm: np.ndarray, volume_db: float) -> np.ndarray:
    return apply_gain_db(pcm, volume_db) if volume_db else pcm


def _ai_response(interp: Interpreter) -> str | None:
    """`ai_response` as the document set it (the SDK's swml_transfer()/pay() set it for the agent)."""
    value = interp.variables.get("ai_response")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _describe(item: PlayItem) -> str:
    if isinstance(item, PlaySay):
        return item.text[:80]
    if isinstance(item, PlayFile):
        return item.url
    if isinstance(item, PlaySilence):
        return f"{item.duration_ms} ms"
    if isinstance(item, PlayRing):
        return f"ring {item.country} {item.duration_ms or 'one cadence'}"
    return ""
