"""One leg's live transcription for the sidecar: inbound frames -> VAD utterances -> ASR finals.

Theory of operation: `LegTranscriber.attach(media)` listens to the leg's audio front end
(`taps.listen`, kernel/taps.py: the 16 kHz view and the VAD verdict computed once per frame for
every listener on the leg: the AI session, `detect_machine`, the other sidecar leg) and sees one
analysed 20 ms frame per tick; a frame counts as voiced when the shared VAD says so and it is
above the sidecar's energy floor. An utterance starts after `start_frames` voiced frames
in a row (`on_speech(leg)` fires then: the turn detector disarms the customer's idle timer) and
ends after `silence_ms` of unvoiced frames; its audio (with the onset frames) is transcribed in
the blocking executor, off the loop, and `on_final(leg, text, confidence)` is called back on the
loop. Utterances are transcribed one at a time per leg, in order, so finals never overtake each
other. `detach()` closes our subscription (nobody else's) and stops the work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Protocol

import numpy as np

from mediaserver.kernel.taps import LISTEN_FRAME, MediaTaps, Subscription, VoiceFrame
from mediaserver.pipeline.asr import SpeechRecognizer, hotwords_text
from mediaserver.pipeline.vad import VoiceActivityDetector

__all__ = ["LegTranscriber"]


class _Tapped(Protocol):
    taps: MediaTaps


log = logging.getLogger(__name__)

VAD_FRAME = LISTEN_FRAME  # 20 ms at 16 kHz
SIDECAR_FLOOR_DBFS = -45.0  # a normal talker on a phone is at -20..-30 dBFS (pipeline/vad.py)
MAX_UTTERANCE_S = 20


class LegTranscriber:
    def __init__(
        self,
        leg: str,
        vad: Callable[[], VoiceActivityDetector],
        asr: SpeechRecognizer,
        blocking: Executor,
        *,
        on_speech: Callable[[str], None],
        on_final: Callable[[str, str, float], None],
        silence_ms: int = 500,
        start_frames: int = 3,
        hints: list[str] | None = None,
        energy_floor_dbfs: float = SIDECAR_FLOOR_DBFS,
    ) -> None:
        self.leg = leg
        self.vad = vad  # makes the leg's VAD if nobody listens to the leg yet (MediaTaps.listen)
        self.energy_floor_dbfs = energy_floor_dbfs
        self.asr = asr
        self.blocking = blocking
        self.on_speech = on_speech
        self.on_final = on_final
        self.silence_frames = max(1, silence_ms // 20)
        self.start_frames = start_frames
        self.hotwords = hotwords_text(list(hints or []))
        self.active = False
        self.utterances = 0
        self._subscription: Subscription[VoiceFrame] | None = None
        self._onset: list[np.ndarray] = []
        self._speech: list[np.ndarray] = []
        self._in_speech = False
        self._silent = 0
        self._chain: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def attach(self, media: _Tapped) -> None:
        if self._subscription is None:
            self._subscription = media.taps.listen(self.hear, vad=self.vad, name=f"sidecar-{self.leg}")
        self.active = True

    def detach(self) -> None:
        self.active = False
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        for task in self._tasks:
            task.cancel()

    def hear(self, voice: VoiceFrame) -> None:
        """One 20 ms frame of the leg's front end: the shared VAD, then our own energy floor."""
        if self.active:
            self._frame(voice.frame.pcm, voice.voiced and voice.level_dbfs >= self.energy_floor_dbfs)

    def _frame(self, chunk: np.ndarray, voiced: bool) -> None:
        if not self._in_speech:
            if voiced:
                self._onset.append(chunk)
                if len(self._onset) >= self.start_frames:
                    self._in_speech = True
                    self._speech = list(self._onset)
                    self._onset = []
                    self._silent = 0
                    self.on_speech(self.leg)
            else:
                self._onset = []
            return
        self._speech.append(chunk)
        self._silent = 0 if voiced else self._silent + 1
        if self._silent >= self.silence_frames or len(self._speech) * 20 >= MAX_UTTERANCE_S * 1000:
            pcm = np.concatenate(self._speech)
            self._speech = []
            self._in_speech = False
            self._silent = 0
            self._finish(pcm)

    def _finish(self, pcm: np.ndarray) -> None:
        self.utterances += 1
        previous = self._chain
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._chain = done

        async def run() -> None:
            try:
                if previous is not None:
                    await previous  # finals of one leg stay in order
                result = await loop.run_in_executor(
                    self.blocking, lambda: self.asr.transcribe(pcm, hotwords=self.hotwords)
                )
                if self.active and result.text.strip():
                    self.on_final(self.leg, result.text.strip(), result.confidence)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sidecar transcription failed", extra={"leg": self.leg})
            finally:
                if not done.done():
                    done.set_result(None)

        task = loop.create_task(run(), name=f"sidecar-asr-{self.leg}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
