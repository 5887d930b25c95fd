from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mediaserver.audio.dsp import (
    apply_gain_db,
    comfort_noise,
    float_to_pcm16,
    mix,
    pcm16_to_float,
    rms_dbfs,
)


def pcm(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int16)


def test_rms_dbfs_exact_values() -> None:
    assert rms_dbfs(np.full(160, 16384, np.int16)) == pytest.approx(20 * math.log10(0.5), abs=1e-12)
    assert rms_dbfs(pcm(32767, -32768)) == pytest.approx(20 * math.log10(math.sqrt((32767**2 + 32768**2) / 2) / 32768))
    assert rms_dbfs(pcm(-32768)) == 0.0
    assert rms_dbfs(np.zeros(160, np.int16)) == -math.inf
    assert rms_dbfs(np.zeros(0, np.int16)) == -math.inf


def test_full_scale_sine_is_minus_3_dbfs() -> None:
    t = np.arange(8000)
    sine = np.rint(32767 * np.sin(2 * np.pi * 400 * t / 8000)).astype(np.int16)
    assert rms_dbfs(sine) == pytest.approx(-3.0104, abs=1e-3)


def test_apply_gain_rounds_and_saturates() -> None:
    assert apply_gain_db(pcm(1000, -1000, 3), 20 * math.log10(2)).tolist() == [2000, -2000, 6]
    assert apply_gain_db(pcm(20000, -20000, 5), 20 * math.log10(2)).tolist() == [32767, -32768, 10]
    assert apply_gain_db(pcm(1000, 3), -20 * math.log10(2)).tolist() == [500, 2]  # 1.5 rounds to even
    assert apply_gain_db(pcm(7), 0.0).tolist() == [7]


def test_mix_saturates_and_pads_the_shorter() -> None:
    assert mix(pcm(30000, -30000, 5), pcm(10000, -10000, 5)).tolist() == [32767, -32768, 10]
    assert mix(pcm(1), pcm(2, 3, 4)).tolist() == [3, 3, 4]
    assert mix(pcm(2, 3, 4), pcm(1)).tolist() == [3, 3, 4]
    assert mix(pcm(), pcm()).tolist() == []


def test_comfort_noise_level_and_determinism() -> None:
    noise = comfort_noise(16000, -40.0, np.random.default_rng(1))
    assert noise.dtype == np.int16 and noise.shape == (16000,)
    assert rms_dbfs(noise) == pytest.approx(-40.0, abs=0.1)
    assert np.array_equal(noise, comfort_noise(16000, -40.0, np.random.default_rng(1)))
    assert comfort_noise(0, -60.0, np.random.default_rng(1)).shape == (0,)


def test_float_conversion_values() -> None:
    x = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, np.nan, 1 / 65536], dtype=np.float32)
    assert float_to_pcm16(x).tolist() == [0, 16384, -16384, 32767, -32768, 32767, -32768, 0, 0]
    back = pcm16_to_float(pcm(-32768, 0, 16384))
    assert back.dtype == np.float32 and back.tolist() == [-1.0, 0.0, 0.5]


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="int16"):
        rms_dbfs(np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="mono"):
        mix(np.zeros((2, 2), np.int16), pcm(1))


int16_arrays = hnp.arrays(np.int16, st.integers(0, 400))


@given(int16_arrays)
def test_float_round_trip_is_exact(x: np.ndarray) -> None:
    assert np.array_equal(float_to_pcm16(pcm16_to_float(x)), x)


@given(int16_arrays, int16_arrays)
def test_mix_matches_clipped_int_sum(a: np.ndarray, b: np.ndarray) -> None:
    out = mix(a, b)
    n = max(len(a), len(b))
    wide = np.zeros(n, np.int64)
    wide[: len(a)] += a
    wide[: len(b)] += b
    assert out.dtype == np.int16
    assert np.array_equal(out, np.clip(wide, -32768, 32767))


@given(int16_arrays, st.floats(-40, 40))
def test_gain_never_wraps(x: np.ndarray, db: float) -> None:
    out = apply_gain_db(x, db)
    expected = np.clip(np.rint(x.astype(np.float64) * 10 ** (db / 20)), -32768, 32767)
    assert np.array_equal(out, expected)
