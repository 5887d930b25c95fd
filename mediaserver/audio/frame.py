"""Audio frames: the unit every stage of the kernel trades in.

Theory of operation: a frame is mono int16 PCM at one sample rate, stamped with `start`, the
index of its first sample on its stream's media clock. Time inside the kernel is counted in
samples; seconds appear only in logs and config. Frames are immutable: the array is made
read-only so that a stage cannot change audio another stage still holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]

FRAME_MS = 20


def samples_per_frame(sample_rate: int, frame_ms: int = FRAME_MS) -> int:
    return sample_rate * frame_ms // 1000


@dataclass(frozen=True, slots=True)
class AudioFrame:
    pcm: Pcm
    sample_rate: int
    start: int

    def __post_init__(self) -> None:
        if self.pcm.dtype != np.int16 or self.pcm.ndim != 1:
            raise ValueError(f"AudioFrame needs mono int16 PCM, got {self.pcm.dtype} shape {self.pcm.shape}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        self.pcm.flags.writeable = False

    @property
    def samples(self) -> int:
        return int(self.pcm.shape[0])

    @property
    def end(self) -> int:
        return self.start + self.samples

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.samples / self.sample_rate

    @classmethod
    def silence(cls, sample_rate: int, start: int, samples: int) -> AudioFrame:
        return cls(np.zeros(samples, dtype=np.int16), sample_rate, start)
