"""One leg's live transcription for the sidecar: inbound frames -> VAD utterances -> ASR finals.

Theory of operation: `LegTranscriber.attach(media)` listens to the leg's audio front end
(`taps.listen`, kernel/taps.py: the 16 kHz view and the VAD verdict computed once per frame for
every listener on the leg: the AI session, `detect_machine`, the other sidecar leg) and sees one
analysed 20 ms frame per tick; a frame counts as voiced when the shared VAD says so and it is
above the sidecar's energy floor. Utterances are cut by the ai verb's endpointer (the pure
`TurnManager` of pipeline/turn.py, with the sidecar's parameters): one starts after
`start_frames` voiced frames in a row (`on_speech(leg)` fires then: the turn detector disarms
the customer's idle timer) and ends after `silence_ms` of silence; its audio (from the onset to
the endpoint, trailing silence included) is transcribed in
the blocking executor, off the loop, and `on_final(leg, text, confidence)` is called back on the
loop. Utterances are transcribed one at a time per leg, in order, so finals never overtake each
other. `detach()` closes our subscription (nobody else's) and stops the work.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Protocol

import numpy as np

from mediaserver.kernel.taps import LISTEN_FRAME, MediaTaps, Subscription, VoiceFrame
from mediaserver.pipeline.asr import SpeechRecognizer, hotwords_text
from mediaserver.pipeline.turn import CommitTurn, FrameAnalyzed, SpeechStarted, TurnManager, TurnParams
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
        # The ai verb's endpointer, parameterised for a transcriber that decodes whole utterances
        # once they end: an onset of `start_frames` voiced frames, the silence counted from the
        # first unvoiced frame, no word needed (nothing is decoded before the end), no agent.
        self.turn = TurnManager(
            TurnParams(
                onset_frames=start_frames,
                hangover_frames=1,
                end_of_speech_ms=max(20, silence_ms),
                speech_timeout_ms=MAX_UTTERANCE_S * 1000,
                speech_event_timeout_ms=0,
                inactivity_timeout_ms=0,
            )
        )
        self._samples = 0
        self._audio: deque[tuple[int, np.ndarray]] = deque(maxlen=(MAX_UTTERANCE_S + 2) * 50)
        self.hotwords = hotwords_text(list(hints or []))
        self.active = False
        self.utterances = 0
        self._subscription: Subscription[VoiceFrame] | None = None
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
        at = self._samples
        self._samples += len(chunk)
        self._audio.append((at, chunk))
        for command in self.turn.handle(FrameAnalyzed(at, voiced)):
            if isinstance(command, SpeechStarted):
                self.on_speech(self.leg)
            elif isinstance(command, CommitTurn):  # the utterance with its trailing silence
                self._finish(np.concatenate([pcm for t, pcm in self._audio if command.start <= t < command.decided_at]))
            # The rest (partials, the final's early start, inactivity) is the ai verb's business.

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
