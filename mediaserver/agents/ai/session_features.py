"""The optional `ai.params` features on a live session, behind a few fixed hooks of `AiSession`.

Theory of operation: `AiSession` builds one `SessionFeatures` from the verb's `AiFeatures`
(`agents/ai/features.py`) and calls it at fixed points; each hook is a no-op (returns what it
was given) when its feature is off, so a verb without these params runs exactly as before:

* `llm(engine)`: the model the SWAIG steering wraps: with `cache_mode` a `CachingLlm`
  (response_cache.py); with the inner dialog, its newest note added to each request
  (reasoning.py); each request is kept as `last_request` (what thinking reads).
* `spoken(tts)` / `written(text)`: `tts_number_format` for the reply synthesizer (whose clauses
  are already speakable text) and for fixed text (greeting, SWAIG `say`) (pipeline/phone_numbers.py).
* `recognizer(local)` / `transcript(text)`: `openai_asr_engine` (the remote recognizer first,
  the local one after it fails) and `asr_smart_format` (pipeline/smart_format.py).
* `tools(runner)`: what a reply may call: the verb's functions plus `get_ideal_strategy` with
  `enable_thinking`, each function under `hold_on_process` music (background.py).
* `begin(mixer)` when the AI starts (the `background_file` bed, the inner dialog's watch, this
  module's own config warnings) and `close()` when it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from concurrent.futures import Executor
from typing import Any

from mediaserver.agents.ai.background import AudioBed
from mediaserver.agents.ai.features import AiFeatures
from mediaserver.agents.ai.reasoning import THINKING_TOOL, InnerDialog, Thinking, with_note
from mediaserver.agents.ai.reply import Synthesizer
from mediaserver.agents.ai.response_cache import CachingLlm
from mediaserver.agents.ai.tools import AiControl, ToolInvocation, ToolOutcome, ToolRunner
from mediaserver.audio.frame import Pcm
from mediaserver.audio.mix import BedMixer
from mediaserver.events import AiConfigWarning, AiFailure
from mediaserver.kernel.agent import Conversation
from mediaserver.kernel.call import Call
from mediaserver.pipeline.asr import Recognition, SpeechRecognizer
from mediaserver.pipeline.llm import LanguageModel, LlmEvent, LlmSettings
from mediaserver.pipeline.phone_numbers import format_phone_numbers, respell_phone_numbers
from mediaserver.pipeline.smart_format import smart_format
from mediaserver.pipeline.tts import TtsChunk

__all__ = ["SessionFeatures"]

log = logging.getLogger(__name__)


class SessionFeatures:
    def __init__(
        self,
        call: Call,
        features: AiFeatures,
        *,
        llm: LanguageModel,
        llm_settings: Callable[[], LlmSettings],
        blocking: Executor,
        history: Conversation,
        start: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
        remote_asr: Callable[[str], SpeechRecognizer] | None = None,
        response_cache: dict[str, tuple[LlmEvent, ...]] | None = None,
    ) -> None:
        self.call = call
        self.features = features
        self.blocking = blocking
        self._start = start
        self._response_cache = response_cache if response_cache is not None else {}
        self.warnings: list[str] = []
        self.last_request: list[dict[str, Any]] = []
        self.bed: AudioBed | None = None
        self.thinking = Thinking(call, llm, llm_settings, features.thinking_model) if features.enable_thinking else None
        self.inner_dialog = (
            InnerDialog(
                call,
                llm,
                llm_settings,
                model=features.inner_dialog_model,
                prompt=features.inner_dialog_prompt,
                synced=features.inner_dialog_synced,
                history=history,
                start=start,
            )
            if features.enable_inner_dialog
            else None
        )
        self._remote = self._remote_recognizer(remote_asr)
        if features.hold_on_process and not features.hold_music:
            self.warnings.append("params.hold_on_process: no params.hold_music to play; functions run in silence")

    def _remote_recognizer(self, factory: Callable[[str], SpeechRecognizer] | None) -> _RemoteFirst | None:
        model = self.features.openai_asr_engine
        if not model:
            return None
        if factory is None:
            self.warnings.append(
                f"params.openai_asr_engine: {model!r}: no transcription endpoint is configured; "
                "the local recognizer transcribes"
            )
            return None
        try:
            return _RemoteFirst(factory(model), self.call)
        except Exception as exc:  # a bad endpoint setting must not stop the call
            self.warnings.append(f"params.openai_asr_engine: {model!r}: {exc}; the local recognizer transcribes")
            return None

    # -- start and end ---------------------------------------------------------------------------
    def begin(self, mixer: BedMixer) -> None:
        for warning in self.warnings:
            self.call.events.emit(AiConfigWarning(warning=warning))
        features = self.features
        if features.background_file or (features.hold_on_process and features.hold_music):
            self.bed = AudioBed(self.call, mixer, blocking=self.blocking, start=self._start)
            if features.background_file:
                self.bed.background(
                    features.background_file, loops=features.background_loops, gain_db=features.background_volume_db
                )
            if features.hold_on_process and features.hold_music:
                self.bed.hold_music(features.hold_music)
        if self.inner_dialog is not None:
            self.inner_dialog.begin()

    def close(self) -> None:
        if self.inner_dialog is not None:
            self.inner_dialog.close()

    # -- the language model ----------------------------------------------------------------------
    def llm(self, engine: LanguageModel) -> LanguageModel:
        if self.features.cache_mode:
            engine = CachingLlm(engine, self._response_cache, self.call.events.emit)
        return _Watched(engine, self)

    # -- speech out ------------------------------------------------------------------------------
    def spoken(self, tts: Synthesizer) -> Synthesizer:
        style = self.features.tts_number_format
        return _NumbersSpoken(tts, style) if style else tts

    def written(self, text: str) -> str:
        style = self.features.tts_number_format
        return format_phone_numbers(text, style) if style else text

    # -- speech in -------------------------------------------------------------------------------
    def recognizer(self, local: SpeechRecognizer) -> SpeechRecognizer:
        if self._remote is None:
            return local
        self._remote.local = local  # the session's engine of the moment
        self._remote.loop = asyncio.get_running_loop()  # where a failure is reported
        return self._remote

    def transcript(self, text: str) -> str:
        return smart_format(text) if self.features.asr_smart_format else text

    # -- functions -------------------------------------------------------------------------------
    def tools(self, runner: ToolRunner) -> ToolRunner:
        if self.thinking is None and self.bed is None:
            return runner
        return _FeatureTools(runner, self)


class _Watched:
    """The model each reply streams from: the request is kept, the inner dialog's note added."""

    def __init__(self, llm: LanguageModel, features: SessionFeatures) -> None:
        self.llm = llm
        self.features = features

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[LlmEvent]:
        self.features.last_request = messages
        inner_dialog = self.features.inner_dialog
        if inner_dialog is not None:
            messages = with_note(messages, inner_dialog.note)
        inner = self.llm.stream(messages, tools=tools, settings=settings)
        try:
            async for item in inner:
                yield item
        finally:
            if isinstance(inner, AsyncGenerator):
                await inner.aclose()


class _NumbersSpoken:
    """A reply synthesizer whose clauses read phone numbers in `tts_number_format`."""

    def __init__(self, tts: Synthesizer, style: str) -> None:
        self.tts = tts
        self.style = style

    @property
    def sample_rate(self) -> int:
        return self.tts.sample_rate

    def stream(self, text: str) -> AsyncIterator[TtsChunk]:
        return self.tts.stream(respell_phone_numbers(text, self.style))


class _RemoteFirst:
    """The remote recognizer until it fails once (logged on the call), then the local one."""

    sample_rate = 16000

    def __init__(self, remote: SpeechRecognizer, call: Call) -> None:
        self.remote = remote
        self.local: SpeechRecognizer | None = None
        self.call = call
        self.loop: asyncio.AbstractEventLoop | None = None
        self.failed = False

    def transcribe(self, pcm: Pcm, *, prompt: str | None = None, hotwords: str | None = None) -> Recognition:
        # Blocking, in the engine executor: the failure is reported to the loop, not emitted here.
        if not self.failed:
            try:
                return self.remote.transcribe(pcm, prompt=prompt, hotwords=hotwords)
            except Exception as exc:
                self.failed = True
                log.warning(
                    "call %s: openai_asr_engine failed, local recognizer from now on: %s", self.call.call_id, exc
                )
                failure = AiFailure(kind="openai_asr", error=str(exc) or repr(exc))
                assert self.loop is not None  # set by SessionFeatures.recognizer before each use
                self.loop.call_soon_threadsafe(self.call.events.emit, failure)
        assert self.local is not None
        return self.local.transcribe(pcm, prompt=prompt, hotwords=hotwords)


class _FeatureTools(ToolRunner):
    """The verb's functions as a reply sees them: plus get_ideal_strategy, under hold_on_process music."""

    def __init__(self, runner: ToolRunner, features: SessionFeatures) -> None:
        self.runner = runner
        self.features = features
        self.swaig_log = runner.swaig_log

    def tool_definitions(self) -> list[dict[str, Any]]:
        definitions = self.runner.tool_definitions()
        thinking = self.features.thinking
        return [*definitions, thinking.definition()] if thinking is not None else definitions

    async def invoke(self, invocation: ToolInvocation, control: AiControl) -> ToolOutcome:
        thinking = self.features.thinking
        if thinking is not None and invocation.name == THINKING_TOOL:
            return ToolOutcome(response=await thinking.think(self.features.last_request))
        bed = self.features.bed
        if bed is None or not self.features.features.hold_on_process:
            return await self.runner.invoke(invocation, control)
        async with bed.processing():
            return await self.runner.invoke(invocation, control)
