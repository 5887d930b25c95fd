"""Small sample-level DSP helpers on int16 PCM: level, gain, comfort noise, mixing, conversion.

Theory of operation
-------------------
Inputs and outputs are mono int16 `Pcm` arrays (or float32 arrays in [-1, 1) for the
conversions). Full scale is 32768: `pcm16_to_float` divides by 32768, `float_to_pcm16`
multiplies by 32768, rounds half to even and clips to [-32768, 32767], so
`float_to_pcm16(pcm16_to_float(x)) == x` for every int16 array. Levels are in dBFS relative to
that full scale (a constant 16384 is -6.02 dBFS; a full-scale sine is about -3.01 dBFS).
Arithmetic runs in float64 or int32 and saturates (clips) on the way back to int16, because
int16 wraparound turns a loud peak into a full-scale click of the opposite sign.
No function modifies its input; every result is a new array.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from mediaserver.audio.frame import Pcm

FULL_SCALE = 32768.0
_MIN = -32768
_MAX = 32767

Float32 = npt.NDArray[np.float32]


def _check(pcm: Pcm, name: str = "pcm") -> None:
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError(f"{name} must be mono int16 PCM, got {pcm.dtype} shape {pcm.shape}")


def _saturate(x: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> Pcm:
    out: Pcm = np.clip(np.rint(x), _MIN, _MAX).astype(np.int16)
    return out


def rms_dbfs(pcm: Pcm) -> float:
    """RMS level in dBFS; -inf for an empty or all-zero array (digital silence has no level)."""
    _check(pcm)
    if pcm.shape[0] == 0:
        return -math.inf
    x = pcm.astype(np.float64)
    mean_square = float(np.mean(x * x))
    if mean_square == 0.0:
        return -math.inf
    return 10.0 * math.log10(mean_square) - 20.0 * math.log10(FULL_SCALE)


def apply_gain_db(pcm: Pcm, db: float) -> Pcm:
    """Scale by 10^(db/20), rounding to nearest and saturating at the int16 limits."""
    _check(pcm)
    return _saturate(pcm.astype(np.float64) * (10.0 ** (db / 20.0)))


def comfort_noise(samples: int, level_dbfs: float, rng: np.random.Generator) -> Pcm:
    """White Gaussian noise whose expected RMS is `level_dbfs` (deterministic for a seeded rng)."""
    if samples < 0:
        raise ValueError(f"samples must not be negative, got {samples}")
    sigma = FULL_SCALE * 10.0 ** (level_dbfs / 20.0)
    return _saturate(rng.standard_normal(samples) * sigma)


def mix(a: Pcm, b: Pcm) -> Pcm:
    """Sample-wise sum, saturating. Lengths may differ: the shorter is treated as zero-padded."""
    _check(a, "a")
    _check(b, "b")
    if a.shape[0] < b.shape[0]:
        a, b = b, a
    out = a.astype(np.int32)
    out[: b.shape[0]] += b
    return np.clip(out, _MIN, _MAX).astype(np.int16)


def float_to_pcm16(x: Float32) -> Pcm:
    """float in [-1, 1) -> int16; values outside clip, NaN becomes 0."""
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D float array, got shape {x.shape}")
    scaled = np.nan_to_num(x.astype(np.float64), nan=0.0) * FULL_SCALE
    return _saturate(scaled)


def pcm16_to_float(pcm: Pcm) -> Float32:
    _check(pcm)
    return (pcm.astype(np.float32) / np.float32(FULL_SCALE)).astype(np.float32)
