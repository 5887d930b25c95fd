"""The caller's side of the AI loop: inbound audio to 16 kHz frames, VAD verdicts, echo gate.

Theory of operation: `Listener.hear(voice)` takes each frame of the call leg's audio front end
(`taps.listen`: the 16 kHz view resampled once per leg with the low-latency polyphase filter,
its level and the leg's one VAD verdict, shared with every other listener on the leg) and keeps
the audio in a ring (`audio(start, upto)` returns the utterance for ASR by caller-sample index).
For every frame it returns `(at, voiced)`: the VAD's verdict, gated by this agent's energy floor
(`energy_level`), then by the echo gate. While the agent talks (or is paused by a
barge-in) the neural confirmer, when configured, must agree within
`confirm_grace_frames` of a voiced run: webrtcvad alone starts the (reversible) pause at once,
and a burst silero does not call speech ends there, so the reply resumes quickly.

Echo gate: the kernel knows exactly what it sent. `EchoGate.played(rms_db)` is told the level of
each outbound frame as it leaves; an inbound frame is echo when it is quieter than the loudest
outbound frame of the last `window_frames` (the echo path delay) less `margin_db` (the echo
return loss we expect at least; a caller talking over the agent is louder than that). This keeps
full duplex (no muting) while the agent's own voice, returned by the phone, is not a barge-in.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from mediaserver.audio.frame import Pcm
from mediaserver.kernel.taps import SILENCE_DBFS, VoiceFrame
from mediaserver.pipeline.turn import FRAME_SAMPLES, SAMPLE_RATE
from mediaserver.pipeline.vad import SpeechConfirmer

SILENCE_DB = SILENCE_DBFS  # the level given to digital silence, as the leg's front end does
CONFIRM_THRESHOLD = 0.5  # the neural confirmer's speech probability that confirms voice over the agent


def rms_dbfs(pcm: Pcm) -> float:
    if not len(pcm):
        return SILENCE_DB
    x = pcm.astype(np.float64)
    power = float(np.mean(x * x))
    return 10.0 * np.log10(power / (32768.0 * 32768.0)) if power > 0 else SILENCE_DB


class EchoGate:
    def __init__(self, window_frames: int = 25, margin_db: float = 15.0) -> None:
        self.margin_db = margin_db
        self._levels: deque[float] = deque([SILENCE_DB], maxlen=window_frames)
        self.echo_frames = 0

    def played(self, rms_db: float) -> None:
        self._levels.append(rms_db)

    def is_echo(self, rms_db: float) -> bool:
        echo = rms_db < max(self._levels) - self.margin_db
        self.echo_frames += echo
        return echo


class Listener:
    def __init__(
        self,
        *,
        energy_floor_dbfs: float = -45.0,
        confirmer: SpeechConfirmer | None = None,
        confirm_threshold: float | None = None,  # None: CONFIRM_THRESHOLD (ai.params vad_config sets it)
        confirm_grace_frames: int = 4,
        echo: EchoGate | None = None,
        ring_seconds: int = 60,
    ) -> None:
        self.confirmer = confirmer
        self.confirm_threshold = CONFIRM_THRESHOLD if confirm_threshold is None else confirm_threshold
        self.confirm_grace_frames = confirm_grace_frames
        self._run = 0
        self._run_confirmed = False
        self.energy_floor_dbfs = energy_floor_dbfs
        self.echo = echo or EchoGate()
        self._ring = np.zeros(ring_seconds * SAMPLE_RATE, dtype=np.int16)
        self.samples = 0  # 16 kHz samples taken so far: the caller clock

    def hear(self, voice: VoiceFrame, *, agent_talking: bool = False) -> tuple[int, bool]:
        """One frame of the leg's shared front end (level and VAD verdict already computed)."""
        at = self.samples
        voiced = self._decide(voice.frame.pcm, voice.level_dbfs, voice.voiced, agent_talking)
        self._store(voice.frame.pcm)
        return at, voiced

    def _decide(self, chunk: Pcm, level: float, vad_voiced: bool, agent_talking: bool) -> bool:
        if level < self.energy_floor_dbfs or not vad_voiced or self.echo.is_echo(level):
            self._run = 0
            self._run_confirmed = False
            return False
        self._run += 1
        if not agent_talking or self.confirmer is None:
            return True
        # Over the agent, webrtcvad alone may start a run (the pause is reversible, and fast), but
        # the neural confirmer must agree within `confirm_grace_frames` or the rest of the run
        # counts as silence: the utterance ends, its transcript is empty, the reply resumes.
        if not self._run_confirmed:
            self._run_confirmed = self.confirmer.speech_probability(chunk) >= self.confirm_threshold
        return self._run_confirmed or self._run <= self.confirm_grace_frames

    def _store(self, chunk: Pcm) -> None:
        n = len(self._ring)
        i = self.samples % n
        self._ring[i : i + FRAME_SAMPLES] = chunk  # FRAME_SAMPLES divides the ring size
        self.samples += FRAME_SAMPLES

    def audio(self, start: int, upto: int) -> Pcm:
        """Caller audio [start, upto) at 16 kHz, as far as the ring still holds it."""
        n = len(self._ring)
        start = max(start, upto - n, 0)
        upto = min(upto, self.samples)
        if upto <= start:
            return np.zeros(0, dtype=np.int16)
        idx = np.arange(start, upto) % n
        return self._ring[idx].copy()
