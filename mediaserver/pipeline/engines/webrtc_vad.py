"""webrtcvad behind an energy floor: the per-frame `VoiceActivityDetector`.

Theory of operation: each frame is classified by webrtcvad (GMM, aggressiveness 0..3) and by its
RMS level; it is speech only if both agree. webrtcvad sees every frame, including those under
the floor, because it adapts its noise model to what it hears. `reset()` builds a fresh
`webrtcvad.Vad`: the library has no reset of its own. A new instance flags its first 4-6 frames
of any non-silent noise as speech (docs/costs.md §3); the turn manager's N-consecutive-frames rule
and the energy floor absorb most of it, and the confirmer the rest.
"""

from __future__ import annotations

import math

import numpy as np
import webrtcvad

from mediaserver.audio.frame import Pcm
from mediaserver.rates import PIPELINE_RATE as SAMPLE_RATE  # not pipeline.vad: it imports this module

__all__ = ["WebRtcVad", "frame_dbfs"]

_FRAME_SIZES = (160, 320, 480)  # 10, 20, 30 ms at 16 kHz: all webrtcvad accepts


def frame_dbfs(pcm: Pcm) -> float:
    """RMS level relative to int16 full scale; digital silence is -inf."""
    if len(pcm) == 0:
        return -math.inf
    samples = pcm.astype(np.float32)
    mean_square = float(np.dot(samples, samples)) / len(samples)  # float32 dot: ~1 µs for 320 samples
    return 10.0 * math.log10(mean_square / (32768.0 * 32768.0)) if mean_square > 0 else -math.inf


class WebRtcVad:
    def __init__(self, mode: int = 3, energy_floor_dbfs: float = -45.0) -> None:
        if mode not in (0, 1, 2, 3):
            raise ValueError(f"webrtcvad mode must be 0..3, got {mode!r}")
        self.mode = mode
        self.energy_floor_dbfs = energy_floor_dbfs
        self._vad = webrtcvad.Vad(mode)

    def is_speech(self, pcm: Pcm) -> bool:
        if len(pcm) not in _FRAME_SIZES:
            raise ValueError(f"VAD frame must be 10/20/30 ms at 16 kHz ({_FRAME_SIZES} samples), got {len(pcm)}")
        if pcm.dtype != np.int16:
            raise ValueError(f"VAD frame must be int16, got {pcm.dtype}")
        # webrtcvad sees every frame (it adapts to the noise); the level only matters if it says yes.
        voiced = bool(self._vad.is_speech(pcm.tobytes(), SAMPLE_RATE))
        return voiced and frame_dbfs(pcm) >= self.energy_floor_dbfs

    def reset(self) -> None:
        self._vad = webrtcvad.Vad(self.mode)
