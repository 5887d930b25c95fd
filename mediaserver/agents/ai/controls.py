"""What SWAIG actions change on a live AI session, kept apart from the conversation loop.

Theory of operation: the `AiSession` owns one `SessionControls` and delegates the actions of
contract §5 that are more than a history edit to it; the session calls back in at a few fixed
points (each caller frame, each reply's start and end, each caller turn, each transcript):

- hold: caller frames reach the listener as silence (nothing the caller says starts a turn),
  the current reply says nothing more, attention prompts stop, `params.hold_music` loops under
  the playout (`audio/mix.py`; none: silence); after `timeout_s` of caller frames the music
  stops, `on_end("timeout")` runs (SDK `timeout_step` routing) and the agent resumes with a
  system note. Time is the caller's frame clock, so a test's manual clock drives it.
- background playback (`playback_bg` file/wait, `stop_playback_bg`): the file is decoded once
  (local path, file:// or http(s)) and mixed under the agent's speech at the played cursor;
  `wait` suppresses attention prompts until it ends or is stopped.
- wait_for_user (action and native): the current reply finishes without another LLM round and
  attention prompts stop until the caller speaks (an int: at most that many seconds, then the
  agent takes a turn with the attention prompt).
- post_process: `defer`red actions run when the reply now generating has been spoken (or cut
  by a barge-in); outside a reply they run at once.
- settings: the LLM knobs and per-reply tool flags go to `SteeredLlm` (steering.py), the next
  request carries them; `confidence` (finals) and `barge-confidence` (partials over the agent)
  drop recognitions below them, as if nothing was heard.
- dynamic hints: words join the recognizer's `hotwords` (Whisper's prompt biasing), rules
  rewrite transcripts; clear drops only the dynamic ones.
- change_voice: `engine.voice[:model]` opened through the engines' `VoiceCatalog` (blocking,
  off the loop); from the next utterance on the session speaks with it. An unknown voice is
  logged (`ai_voice_refused`) and the current one stays.
- user_event: a `user_event` call event (the event bus: `/api/events` as kind "user_event") and the call's
  `user_events` list, as the SWML verb does.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import aiohttp

from mediaserver.agents.ai.config import read_hints
from mediaserver.agents.ai.reply import Reply, Synthesizer
from mediaserver.agents.ai.steering import SteeredLlm, llm_knobs
from mediaserver.audio.frame import Pcm
from mediaserver.audio.mix import BedMixer
from mediaserver.events import (
    AiActionsDeferred,
    AiBackgroundStarted,
    AiBackgroundStopped,
    AiFailure,
    AiHintsChanged,
    AiHold,
    AiHoldEnded,
    AiVoiceChanged,
    AiVoiceRefused,
    AiWaitForUser,
    UserEvent,
)
from mediaserver.kernel.call import Call
from mediaserver.kernel.speech import SpeechSynthesizer
from mediaserver.kernel.taps import SILENCE_DBFS, VoiceFrame
from mediaserver.pipeline.asr import HintRule, Recognition
from mediaserver.pipeline.llm import LanguageModel
from mediaserver.pipeline.media_files import MediaFileError, decode_audio_file
from mediaserver.pipeline.tts import TtsEngine
from mediaserver.rates import PIPELINE_RATE

__all__ = ["NoVoices", "SessionControls", "VoiceCatalog"]

log = logging.getLogger(__name__)

HOLD, BACKGROUND = "hold", "playback_bg"
FETCH_TIMEOUT_S = 10.0
HOLD_RESUMED = "The hold has ended ({reason} after {seconds} seconds). Welcome the caller back and go on."


class VoiceCatalog(Protocol):
    def open(self, name: str) -> TtsEngine | None:
        """The voice `engine.voice[:model]` (blocking: may load a model); None when not configured."""
        ...


class NoVoices:
    """No voice besides the one the session started with."""

    def open(self, name: str) -> TtsEngine | None:
        return None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


class SessionControls:
    def __init__(
        self,
        call: Call,
        *,
        llm: LanguageModel,
        tts: Synthesizer,
        blocking: Executor,
        wrap_tts: Callable[[Synthesizer], Synthesizer] = lambda tts: tts,
        voices: VoiceCatalog,
        start: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
        resume: Callable[[str, bool], None],
        attention_prompt: str,
    ) -> None:
        self.call = call
        self.blocking = blocking
        self.voices = voices
        self._start = start
        self._resume = resume
        self.attention_prompt = attention_prompt
        self._replies: weakref.WeakKeyDictionary[asyncio.Task[Any], Reply] = weakref.WeakKeyDictionary()
        self.llm = SteeredLlm(llm, self.current_reply)
        self._wrap_tts = wrap_tts
        self.voice_tts = tts  # the voice as it speaks (the phrase cache keeps this)
        self.tts = wrap_tts(tts)  # what replies speak with (the session's ai_volume gain)
        self.voice = ""  # "" = the engine's own voice
        self.confidence: float | None = None
        self.barge_confidence: float | None = None
        self.hint_words: list[str] = []
        self.hint_rules: list[HintRule] = []
        self.mixer = BedMixer(on_end=self._layer_ended)
        self._samples = 0  # caller frames seen, in 16 kHz samples: the timers' clock
        self._hold_until: int | None = None
        self._hold_started = 0
        self._hold_end: Callable[[str], None] | None = None
        self._wait: bool = False
        self._wait_until: int | None = None
        self._bg_wait = False
        self._nudge_due = False  # an attention prompt held back by background audio with wait
        self._deferred: weakref.WeakKeyDictionary[Reply, list[Callable[[], None]]] = weakref.WeakKeyDictionary()
        self._audio: dict[str, Pcm] = {}

    # -- the session's hooks ---------------------------------------------------------------------
    def track(self, task: asyncio.Task[Any], reply: Reply, *, nudge: bool = False) -> None:
        self._replies[task] = reply
        if nudge:
            self.llm.nudge(reply)

    def current_reply(self) -> Reply | None:
        """The reply whose task is running now (a tool's action runs inside its reply's task)."""
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return None
        return self._replies.get(task) if task is not None else None

    def frame(self, voice: VoiceFrame) -> VoiceFrame:
        """Each caller frame, before the listener: timers run; on hold the caller is not heard."""
        self._samples += len(voice.frame.pcm) * PIPELINE_RATE // max(1, voice.frame.sample_rate)
        if self._wait_until is not None and self._samples >= self._wait_until:
            self._set_wait(False)
            self._resume(self.attention_prompt, True)
        if self._hold_until is None:
            return voice
        if self._samples >= self._hold_until:
            self._unhold("timeout")
            return voice
        return replace(voice, level_dbfs=SILENCE_DBFS, voiced=False)

    @property
    def holding(self) -> bool:
        return self._hold_until is not None

    def quiet(self) -> bool:
        """True while the agent must not prompt the caller on its own (hold, wait, bg with wait).

        An attention prompt held back by background audio with `wait` comes when it ends."""
        if self._bg_wait and not (self.holding or self._wait):
            self._nudge_due = True
        return self.holding or self._wait or self._bg_wait

    def caller_spoke(self) -> None:
        self._nudge_due = False
        if self._wait:
            self._set_wait(False)

    def _background_over(self) -> None:
        self._bg_wait = False
        if self._nudge_due and not (self.holding or self._wait):
            self._nudge_due = False
            self._resume(self.attention_prompt, True)

    def reply_ended(self, reply: Reply) -> None:
        """The reply was spoken (or cut by a barge-in): post_process actions run now."""
        for apply in self._deferred.pop(reply, []):
            apply()

    def close(self) -> None:
        """The session ends: no layer may outlive it on the leg's playout."""
        for name in (HOLD, BACKGROUND):
            self.mixer.stop(name)
        playout = self.call.media.playout
        if playout.bed is self.mixer:
            playout.bed = None

    def cache_key(self, text: str) -> str:
        """Phrase-cache key: the text, qualified by the voice once it changed."""
        return f"{self.voice}\x00{text}" if self.voice else text

    def accepted(self, result: Recognition, *, final: bool, over_agent: bool) -> str:
        """The recognized text, or "" when its confidence is below the threshold that applies."""
        threshold = self.confidence if final else (self.barge_confidence if over_agent else None)
        if threshold is not None and result.text.strip() and result.confidence < threshold:
            log.info(
                "call %s: %s transcript below confidence %.2f (%.2f): not heard",
                self.call.call_id,
                "final" if final else "partial",
                threshold,
                result.confidence,
            )
            return ""
        return result.text

    # -- settings --------------------------------------------------------------------------------
    def update_settings(self, settings: dict[str, Any]) -> None:
        self.llm.knobs.update(llm_knobs(settings, self.call.call_id))
        for key, value in settings.items():
            name = key.replace("-", "_")
            if name in ("confidence", "barge_confidence"):
                try:
                    setattr(self, name, min(max(float(value), 0.0), 1.0))
                except (TypeError, ValueError):
                    log.warning("call %s: settings.%s: expected 0..1, got %r; skipped", self.call.call_id, key, value)
            elif name == "functions_on_speaker_timeout":
                self.llm.functions_on_timeout = _truthy(value)
            elif name == "back_to_back_functions":
                self.llm.set_back_to_back(value)
            elif name == "extensive_data" and _truthy(value) and self.llm.mark_extensive() is None:
                log.info("call %s: extensive_data outside a tool call; ignored", self.call.call_id)

    # -- hold ------------------------------------------------------------------------------------
    def hold(self, timeout_s: int, music: str = "", on_end: Callable[[str], None] | None = None) -> None:
        self.call.events.emit(AiHold(timeout_s=timeout_s))
        self._hold_started = self._samples
        self._hold_until = self._samples + timeout_s * PIPELINE_RATE
        self._hold_end = on_end
        self.llm.silence(self.current_reply())  # anything not said before the hold is not said
        if music:
            self._start(self._play(HOLD, music, loops=None, wait=True))

    def _unhold(self, reason: str) -> None:
        held_s = round((self._samples - self._hold_started) / PIPELINE_RATE, 2)
        self._hold_until = None
        if self.mixer.stop(HOLD):
            self.call.events.emit(AiBackgroundStopped(purpose=HOLD, reason="hold_ended"))
        self.call.events.emit(AiHoldEnded(reason=reason, held_s=held_s))
        on_end, self._hold_end = self._hold_end, None
        if on_end is not None:
            on_end(reason)
        self._resume(
            HOLD_RESUMED.format(reason="timed out" if reason == "timeout" else reason, seconds=int(held_s)), False
        )

    # -- background audio ------------------------------------------------------------------------
    def play_background(self, file: str, wait: bool = False) -> None:
        self._start(self._play(BACKGROUND, file, loops=1, wait=wait))

    def stop_background(self) -> None:
        if self.mixer.stop(BACKGROUND):
            self.call.events.emit(AiBackgroundStopped(purpose=BACKGROUND, reason="stopped"))
        self._background_over()

    async def _play(self, purpose: str, url: str, *, loops: int | None, wait: bool) -> None:
        try:
            pcm = await self._load(url)
        except (MediaFileError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.call.events.emit(AiFailure(kind=purpose, error=str(exc)))
            return
        if purpose == HOLD and not self.holding:
            return  # the hold ended while the music loaded
        playout = self.call.media.playout
        if playout.bed is None:
            playout.bed = self.mixer
        self.mixer.play(purpose, pcm, loops=loops)
        if purpose == BACKGROUND:
            self._bg_wait = wait
        self.call.events.emit(AiBackgroundStarted(file=url, wait=wait, purpose=purpose))

    def _layer_ended(self, name: str) -> None:  # inside the tick (the playout's frame)
        self.call.events.emit(AiBackgroundStopped(purpose=name, reason="ended"))
        if name == BACKGROUND:
            self._background_over()

    async def _load(self, url: str) -> Pcm:
        if url in self._audio:
            return self._audio[url]
        rate = self.call.media.sample_rate
        parsed = urlparse(url)
        source: str | bytes
        if parsed.scheme in ("http", "https"):
            timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
            async with aiohttp.ClientSession(trust_env=False) as http, http.get(url, timeout=timeout) as response:
                if response.status != 200:
                    raise MediaFileError(f"{url}: HTTP {response.status}")
                source = await response.read()
        else:
            source = unquote(parsed.path) if parsed.scheme == "file" else url
        loop = asyncio.get_running_loop()
        pcm = await loop.run_in_executor(self.blocking, lambda: decode_audio_file(source, rate, name=url))
        self._audio[url] = pcm
        return pcm

    # -- wait_for_user ---------------------------------------------------------------------------
    def wait_for_user(self, mode: bool | int) -> None:
        if mode is not False and not (isinstance(mode, int) and not isinstance(mode, bool) and mode <= 0):
            self.llm.silence(self.current_reply())
        self._set_wait(mode)

    def _set_wait(self, mode: bool | int) -> None:
        timed = isinstance(mode, int) and not isinstance(mode, bool) and mode > 0
        self._wait = bool(mode)
        self._wait_until = self._samples + int(mode) * PIPELINE_RATE if timed else None
        self.call.events.emit(AiWaitForUser(mode=f"{int(mode)}s" if timed else ("on" if mode else "off")))

    # -- post_process ----------------------------------------------------------------------------
    def defer(self, apply: Callable[[], None]) -> None:
        reply = self.current_reply()
        if reply is None:
            apply()
            return
        self._deferred.setdefault(reply, []).append(apply)
        self.call.events.emit(AiActionsDeferred(count=len(self._deferred[reply])))

    # -- hints, voice, events --------------------------------------------------------------------
    def add_hints(self, hints: list[Any]) -> None:
        warnings: list[str] = []
        words, rules = read_hints(hints, warnings)
        for warning in warnings:
            log.warning("call %s: add_dynamic_hints: %s", self.call.call_id, warning.replace("hints", "hint", 1))
        self.hint_words += [w for w in words if w not in self.hint_words]
        self.hint_rules += rules
        self.call.events.emit(AiHintsChanged(words=list(self.hint_words), rules=len(self.hint_rules)))

    def clear_hints(self) -> None:
        self.hint_words, self.hint_rules = [], []
        self.call.events.emit(AiHintsChanged(words=[], rules=0))

    def change_voice(self, voice: str) -> None:
        self._start(self._open_voice(voice))

    async def _open_voice(self, voice: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            engine = await loop.run_in_executor(self.blocking, self.voices.open, voice)
        except Exception as exc:  # a voice file that will not load must not end the call
            self.call.events.emit(AiVoiceRefused(voice=voice, reason=repr(exc)))
            return
        if engine is None:
            self.call.events.emit(AiVoiceRefused(voice=voice, reason="not a configured voice; the current one stays"))
            return
        self.voice_tts = SpeechSynthesizer(engine, self.blocking)
        self.tts = self._wrap_tts(self.voice_tts)
        self.voice = voice
        self.call.events.emit(AiVoiceChanged(voice=voice))

    def user_event(self, event: Any) -> None:
        self.call.events.emit(UserEvent(path="ai.SWAIG.action", user_event=event))
        kept: list[Any] = self.call.info.setdefault("user_events", [])
        kept.append(event)
