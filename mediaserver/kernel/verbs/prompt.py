"""`prompt`: play, then collect DTMF and/or speech into the prompt_* variables.

Theory of operation: a `DigitCollector` (taps.py) is installed for the whole verb, so digits
pressed during the announcement are kept and also cut it short (barge-in by keypad). After
the announcement:
- digits: wait `initial_timeout` for the first digit, then `digit_timeout` between digits;
  stop on a terminator or at `max_digits`;
- speech (any `speech_*` param given): at the same time, a subscription to the leg's
  `taps.inbound` captures the caller (at the leg rate: the whole utterance is resampled once at
  the end, with soxr's better filter, since no decision here waits on its delay);
  speech starts when a frame is louder than -44 dBFS and ends after `speech_end_timeout`
  (default 1 s) of quiet or at `speech_timeout` (default 10 s); the utterance, resampled to
  16 kHz, goes to the recognizer (`mediaserver.pipeline.asr.SpeechRecognizer`, blocking, run in
  the worker pool). The first of the two to produce input wins.
Results (SWML_CONTRACT §2): prompt_result match_digits | match_speech | no_input | failed,
prompt_value (digits or text), prompt_digit_terminator, prompt_speech_confidence.

The recognizer is a seam: `context.recognizer` is a `PromptRecognizer` (kernel/speech.py) whose
`load()` gives the engine (engines load lazily). One that is `unavailable` (the default,
`UnavailableRecognizer`) captures no speech: a speech prompt that got no digits ends with
no_input and a `prompt_speech_unavailable` log line; a recognizer that raises gives `failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import numpy as np

from mediaserver.audio.dsp import rms_dbfs
from mediaserver.audio.frame import AudioFrame, Pcm
from mediaserver.events import PromptDone, PromptSpeechFailed, PromptSpeechUnavailable
from mediaserver.kernel.call import Call
from mediaserver.kernel.verbs.context import VerbContext
from mediaserver.kernel.verbs.taps import DigitCollector
from mediaserver.swml.effects import Prompt, VerbResult
from mscodecs import Resampler

SPEECH_DBFS = -44.0
SPEECH_END_MS = 1000
SPEECH_MAX_MS = 10_000
PRE_ROLL_MS = 300  # audio kept from before the onset: a word's first consonant is quieter than its vowel
ASR_RATE = 16000


async def prompt(ctx: VerbContext, call: Call, effect: Prompt) -> VerbResult:
    if not call.answered:
        call.answer()
    collector = DigitCollector(call)
    speech: SpeechCapture | None = None
    if effect.speech and not ctx.recognizer.unavailable:
        speech = SpeechCapture(call, effect)
    try:
        first = await _play_until_digit(ctx, call, effect, collector)
        if speech is not None and first is None:
            variables = await _digits_or_speech(ctx, call, effect, collector, speech)
        else:
            value, terminator = await _collect(effect, collector, first)
            variables = _digit_result(value, terminator)
    finally:
        collector.close()
        if speech is not None:
            speech.close()
    if variables["prompt_result"] == "no_input" and effect.speech and ctx.recognizer.unavailable:
        call.events.emit(PromptSpeechUnavailable(path=effect.path, reason=ctx.recognizer.unavailable))
    call.events.emit(PromptDone(path=effect.path, result=variables["prompt_result"], value=variables["prompt_value"]))
    return VerbResult({**variables, "return_value": variables["prompt_result"]})


def _digit_result(value: str, terminator: str) -> dict[str, Any]:
    result = "match_digits" if value or terminator else "no_input"
    return {"prompt_result": result, "prompt_value": value, "prompt_digit_terminator": terminator}


async def _play_until_digit(ctx: VerbContext, call: Call, effect: Prompt, collector: DigitCollector) -> str | None:
    player = asyncio.ensure_future(ctx.play(call, effect.items, effect.volume_db, effect.path))
    getter = asyncio.ensure_future(collector.digits.get())
    try:
        done, _ = await asyncio.wait({player, getter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (player, getter):
            if not task.done():
                task.cancel()
        await asyncio.gather(player, getter, return_exceptions=True)
    if getter in done and not getter.cancelled() and getter.exception() is None:
        call.media.stop_playout()  # a key press cuts the announcement short
        return getter.result()
    with contextlib.suppress(asyncio.CancelledError):
        player.result()  # re-raise a CallEnded from the player
    return None


async def _collect(effect: Prompt, collector: DigitCollector, first: str | None) -> tuple[str, str]:
    if effect.max_digits == 0:
        return "", ""
    digits = ""
    digit = first if first is not None else await collector.next(effect.initial_timeout_ms / 1000)
    while digit is not None:
        if digit in effect.terminators:
            return digits, digit
        digits += digit
        if len(digits) >= effect.max_digits:
            break
        digit = await collector.next(effect.digit_timeout_ms / 1000)
    return digits, ""


class SpeechCapture:
    """Energy-endpointed capture of one utterance, counted in inbound samples."""

    def __init__(self, call: Call, effect: Prompt) -> None:
        self.rate = call.media.sample_rate
        self.effect = effect
        self.chunks: list[Pcm] = []
        self.pre_roll: deque[Pcm] = deque(maxlen=max(1, PRE_ROLL_MS // 20))
        self.started = False
        self.samples = 0
        self.quiet = 0
        self.done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.armed = False  # frames count only after the announcement
        self._subscription = call.media.taps.inbound.subscribe(self._frame, name="prompt-speech")

    def _frame(self, frame: AudioFrame) -> None:
        if not self.armed or self.done.done():
            return
        rate = self.rate
        self.samples += frame.samples
        loud = rms_dbfs(frame.pcm) > SPEECH_DBFS
        if loud:
            if not self.started:
                self.chunks.extend(self.pre_roll)
            self.started, self.quiet = True, 0
        elif self.started:
            self.quiet += frame.samples
        if self.started:
            self.chunks.append(frame.pcm)
        else:
            self.pre_roll.append(frame.pcm)
        end_ms = self.effect.speech_end_timeout_ms or SPEECH_END_MS
        max_ms = self.effect.speech_timeout_ms or SPEECH_MAX_MS
        if self.started and self.quiet >= end_ms * rate // 1000:
            self.done.set_result("end")
        elif self.samples >= max_ms * rate // 1000:
            self.done.set_result("max" if self.started else "none")
        elif not self.started and self.samples >= self.effect.initial_timeout_ms * rate // 1000:
            self.done.set_result("none")

    def utterance_16k(self) -> Pcm:
        pcm = np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)
        if self.rate == ASR_RATE or not len(pcm):
            return pcm
        resampler = Resampler(self.rate, ASR_RATE)
        out = resampler.process(pcm)
        tail = resampler.flush()
        return np.concatenate([out, tail]) if len(tail) else out

    def close(self) -> None:
        self._subscription.close()


async def _digits_or_speech(
    ctx: VerbContext, call: Call, effect: Prompt, collector: DigitCollector, speech: SpeechCapture
) -> dict[str, Any]:
    speech.armed = True
    digits = asyncio.ensure_future(_collect(effect, collector, None)) if effect.max_digits else None
    waiting: set[asyncio.Future[Any]] = {speech.done}
    if digits is not None:
        waiting.add(digits)
    try:
        # Digits that complete win; with no key pressed, speech still may come.
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if digits is not None and digits in done:
            value, terminator = digits.result()
            if value or terminator:
                return _digit_result(value, terminator)
            await speech.done
    finally:
        if digits is not None and not digits.done():
            digits.cancel()
    if speech.done.result() == "none":
        return _digit_result("", "")
    try:
        recognizer = await ctx.recognizer.load()
        pcm = speech.utterance_16k()
        hints = " ".join(effect.speech_hints) or None
        recognition = await asyncio.get_running_loop().run_in_executor(
            ctx.blocking, lambda: recognizer.transcribe(pcm, hotwords=hints)
        )
    except Exception as exc:  # an engine failure is the verb's failure, not the call's
        call.events.emit(PromptSpeechFailed(path=effect.path, error=repr(exc)))
        return {"prompt_result": "failed", "prompt_value": "", "prompt_digit_terminator": ""}
    text = recognition.text.strip()
    if not text:
        return _digit_result("", "")
    return {
        "prompt_result": "match_speech",
        "prompt_value": text,
        "prompt_digit_terminator": "",
        "prompt_speech_confidence": round(float(recognition.confidence), 3),
    }
