"""Carries out the effects of the SWML interpreter against one call.

Theory of operation: the interpreter is a sans-I/O state machine that returns one effect at a
time; this executor performs it (answer the call, play audio, sleep, hang up) and resumes the
interpreter with the result. It is the call's script: `Call.run(executor.run)`. Failures of a
single play item (an unreachable URL, a file that does not decode) are logged on the call and
skipped, never silence and never a crash of the call; a verb the runner does not execute yet
is logged as unsupported and the document goes on.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from urllib.parse import unquote, urlparse

import aiohttp
import numpy as np

from mediaserver.audio.dsp import apply_gain_db
from mediaserver.audio.tones import ring_cadence_ms, ringback
from mediaserver.errors import HangupCause
from mediaserver.kernel.call import Call
from mediaserver.kernel.services import AiRunner
from mediaserver.kernel.speech import SpeechSynthesizer
from mediaserver.pipeline.media_files import MediaFileError, decode_audio_file
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
    Unsupported,
)
from mediaserver.swml.errors import SwmlError
from mediaserver.swml.interpreter import Interpreter
from mediaserver.swml.play_urls import PlayFile, PlayItem, PlayRing, PlaySay, PlaySilence

log = logging.getLogger(__name__)

HANGUP_CAUSES = {
    "hangup": HangupCause.NORMAL_CLEARING,
    "busy": HangupCause.USER_BUSY,
    "decline": HangupCause.CALL_REJECTED,
}
FETCH_TIMEOUT_S = 10.0


class SwmlExecutor:
    def __init__(
        self,
        interpreter: Interpreter,
        synthesizer: SpeechSynthesizer,
        blocking: Executor,
        http: aiohttp.ClientSession | None = None,
        ai_runner: AiRunner | None = None,
    ) -> None:
        self._ai_runner = ai_runner
        self._interp = interpreter
        self._tts = synthesizer
        self._blocking = blocking
        self._http = http

    async def run(self, call: Call) -> None:
        try:
            effect: Effect = self._interp.start()
            while True:
                call.events.record("verb_started", verb=type(effect).__name__.lower(), path=effect.path)
                result = await self._perform(call, effect)
                if isinstance(effect, Hangup | Finished):
                    return
                effect = self._interp.resume(result)
        except SwmlError as exc:
            # A document that fails mid-call ends the call cleanly with the path of the bad field.
            call.events.record("swml_error", level=logging.ERROR, path=exc.path, error=exc.message)
            call.hangup(HangupCause.SWML_ERROR, reason=str(exc))

    async def _perform(self, call: Call, effect: Effect) -> EffectResult | None:
        if isinstance(effect, Answer):
            call.answer()
            return None
        if isinstance(effect, Play):
            if not call.answered and effect.auto_answer:
                call.answer()
            return Played(completed=await self._play(call, effect))
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
            if self._ai_runner is None:
                call.events.record("verb_unsupported", level=logging.WARNING, verb=effect.verb, path=effect.path,
                                   reason="no AI engine configured")
                return AiFinished(result="failed")
            if not call.answered:
                call.answer()
            return await self._ai_runner(call, effect, self._interp.variables)
        if isinstance(effect, Unsupported):
            call.events.record("verb_unsupported", level=logging.WARNING, verb=effect.verb, path=effect.path)
            return None
        raise TypeError(f"no executor for effect {effect!r}")

    async def _play(self, call: Call, play: Play) -> bool:
        if not call.answered:
            # Without auto_answer there is no media path yet (early media comes with a later issue).
            call.events.record("play_skipped", level=logging.WARNING, path=play.path, reason="call not answered")
            return False
        for item in play.items:
            call.events.record("play_item", path=play.path, item=type(item).__name__, detail=_describe(item))
            try:
                completed = await self._play_item(call, item, play.volume_db)
            except (MediaFileError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                call.events.record("play_failed", level=logging.WARNING, path=play.path, error=str(exc))
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
            data = await self._fetch(item.url)
            pcm = await asyncio.get_running_loop().run_in_executor(self._blocking, decode_audio_file, data, rate)
            return await call.wait_played(call.enqueue_audio(_gain(pcm, volume_db), rate))
        if isinstance(item, PlaySay):
            return await self._say(call, item.text, volume_db)
        raise TypeError(f"no player for {item!r}")

    async def _say(self, call: Call, text: str, volume_db: float) -> bool:
        mark = None
        first = True
        async for chunk in self._tts.stream(text):
            if first:
                call.events.record("tts_first_audio", text=text[:80])
                first = False
            # Each sentence is resampled as its own utterance: Piper's chunks do not join mid-word.
            mark = call.enqueue_audio(_gain(chunk.pcm, volume_db), chunk.sample_rate, final=True)
        return True if mark is None else await call.wait_played(mark)

    async def _fetch(self, url: str) -> str | bytes:
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https"):
            if self._http is None:
                raise MediaFileError(f"{url}: no HTTP client configured")
            timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
            async with self._http.get(url, timeout=timeout) as response:
                if response.status != 200:
                    raise MediaFileError(f"{url}: HTTP {response.status}")
                return await response.read()
        # A missing local file fails in decode_audio_file, off the loop, with the path named.
        return unquote(parsed.path) if parsed.scheme == "file" else url


def _gain(pcm: np.ndarray, volume_db: float) -> np.ndarray:
    return apply_gain_db(pcm, volume_db) if volume_db else pcm


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
