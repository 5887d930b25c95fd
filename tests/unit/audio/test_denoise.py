"""`NoiseSuppressor` (RNNoise from the pyrnnoise wheel): noise goes down, speech stays, the delay
is fixed and the stated one, 20 ms in gives 20 ms out.

Bounds are set under the measured values (16 kHz, espeak speech): plain RNNoise takes white noise
at -20/-30 dBFS down by 40+ dB and gates mains hum to nothing; with the default -20 dB floor the
noise drops by 19.9 dB; clean speech keeps its level within 0.1 dB; speech at about 4.5 dB SNR
comes out at about 11.4 dB (+6.9 dB), with or without the floor."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mediaserver.audio import denoise
from mediaserver.audio.denoise import FLOOR_DB, DenoiseUnavailable, NoiseSuppressor, rnnoise_library
from mediaserver.audio.dsp import rms_dbfs
from tests.support.speech import read_wav, synthesize_espeak, to_mono

SENTENCE = "What time does the pharmacy close on Sunday? I need to change the delivery address."
# The stated delay (the module docstring): RNNoise's 20 ms plus the FIFO's priming at that rate.
STATED_LATENCY = {8000: 263, 16000: 503, 48000: 960}


def speech(tmp: Path, rate: int, amplitude: float = 12000.0) -> np.ndarray:
    wav = synthesize_espeak(SENTENCE, tmp / f"speech-{rate}.wav", sample_rate=rate)
    samples, _ = read_wav(wav)
    return np.asarray(to_mono(samples) * amplitude).astype(np.int16)


@pytest.fixture(scope="module")
def speech16(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    return speech(tmp_path_factory.mktemp("denoise"), 16000)


def run(pcm: np.ndarray, rate: int = 16000, floor_db: float | None = FLOOR_DB) -> tuple[np.ndarray, NoiseSuppressor]:
    """Frame by frame, 20 ms at a time, as a call leg feeds it."""
    suppressor = NoiseSuppressor(rate, floor_db=floor_db)
    n = rate // 50
    pcm = pcm[: len(pcm) // n * n]
    out = []
    for i in range(0, len(pcm), n):
        frame = suppressor.process(pcm[i : i + n])
        assert frame.dtype == np.int16 and len(frame) == n  # 20 ms in, 20 ms out, every time
        out.append(frame)
    return np.concatenate(out), suppressor


def white(seconds: float, level_dbfs: float, rate: int = 16000, seed: int = 1) -> np.ndarray:
    sigma = 32768 * 10 ** (level_dbfs / 20)
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * sigma).astype(np.int16)


def delay_of(reference: np.ndarray, delayed: np.ndarray, most: int) -> int:
    """The shift (0..most samples) at which `delayed` best matches `reference`."""
    ref = reference.astype(np.float64)
    out = delayed.astype(np.float64)
    span = min(len(ref), len(out)) - most
    return int(np.argmax([np.dot(ref[:span], out[d : d + span]) for d in range(most)]))


@pytest.mark.parametrize("level", [-20.0, -30.0])
def test_plain_rnnoise_takes_white_noise_down_by_more_than_30_db(level: float) -> None:
    noise = white(3.0, level)
    out, _ = run(noise, floor_db=None)
    settled = slice(16000, None)  # after the first second: RNNoise's noise estimate has adapted
    drop = rms_dbfs(noise[settled]) - rms_dbfs(out[settled])
    assert drop > 30.0, f"white noise at {level} dBFS only {drop:.1f} dB lower"  # measured 40+ dB


def test_with_the_floor_white_noise_drops_by_the_floor() -> None:
    noise = white(3.0, -25.0)
    out, _ = run(noise)
    drop = rms_dbfs(noise[16000:]) - rms_dbfs(out[16000:])
    assert -FLOOR_DB - 2.0 < drop < -FLOOR_DB + 0.5, f"{drop:.1f} dB"  # measured 19.9 dB


def hum(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return np.asarray(sum(3000 / k * np.sin(2 * np.pi * 60 * k * t) for k in (1, 2, 3, 5))).astype(np.int16)


def test_plain_rnnoise_removes_mains_hum() -> None:
    pcm = hum(3.0)
    out, _ = run(pcm, floor_db=None)
    assert rms_dbfs(pcm[16000:]) > -25
    assert rms_dbfs(out[16000:]) < -60  # measured: digital silence


def test_the_floor_is_the_input_lined_up_at_the_floor_level() -> None:
    """RNNoise mutes hum entirely, so what is left is the dry path alone: the input, `floor_db`
    lower and exactly `latency_samples` later (a misaligned dry path would comb-filter speech)."""
    pcm = hum(3.0)
    out, suppressor = run(pcm)
    lag = suppressor.latency_samples
    level = rms_dbfs(out[16000:]) - rms_dbfs(pcm[16000 - lag : len(out) - lag])
    assert level == pytest.approx(FLOOR_DB, abs=0.5)
    assert delay_of(pcm[16000:], out[16000:], 800) == lag


@pytest.mark.parametrize("floor_db", [FLOOR_DB, None])
def test_clean_speech_keeps_its_energy_within_1_db(speech16: np.ndarray, floor_db: float | None) -> None:
    out, suppressor = run(speech16, floor_db=floor_db)
    lag = suppressor.latency_samples
    kept = rms_dbfs(out[lag:]) - rms_dbfs(speech16[: len(out) - lag])
    assert abs(kept) < 1.0, f"speech level changed by {kept:.2f} dB"  # measured -0.1 dB


@pytest.mark.parametrize(("floor_db", "gain_db"), [(FLOOR_DB, 4.0), (None, 4.0)])
def test_speech_in_white_noise_gains_snr(speech16: np.ndarray, floor_db: float | None, gain_db: float) -> None:
    noise = white(len(speech16) / 16000, -35.0, seed=2)[: len(speech16)]
    mixed = np.clip(speech16.astype(np.int32) + noise, -32768, 32767).astype(np.int16)
    out, suppressor = run(mixed, floor_db=floor_db)
    lag = suppressor.latency_samples
    clean = speech16[: len(out) - lag].astype(np.float64)

    def snr(y: np.ndarray) -> float:
        return float(10 * np.log10(np.sum(clean**2) / np.sum((y.astype(np.float64) - clean) ** 2)))

    before, after = snr(mixed[: len(clean)]), snr(out[lag:])
    assert after - before > gain_db, f"SNR {before:.1f} -> {after:.1f} dB"  # measured +6.9 dB, either way


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_latency_is_fixed_and_the_stated_one(tmp_path: Path, rate: int) -> None:
    pcm = speech(tmp_path, rate)
    out, suppressor = run(pcm, rate)
    assert suppressor.latency_samples == STATED_LATENCY[rate]
    half = len(pcm) // 2
    most = rate // 20  # search up to 50 ms
    # The whole utterance and each half of it are shifted by exactly the stated delay: no drift.
    assert delay_of(pcm, out, most) == suppressor.latency_samples
    assert delay_of(pcm[:half], out[:half], most) == suppressor.latency_samples
    assert delay_of(pcm[half:], out[half:], most) == suppressor.latency_samples
    assert suppressor.latency_ms == pytest.approx(1000 * STATED_LATENCY[rate] / rate)


def test_other_chunk_sizes_still_give_back_what_they_take(speech16: np.ndarray) -> None:
    suppressor = NoiseSuppressor(16000)
    primed = suppressor.latency_samples
    sizes = np.random.default_rng(5).integers(40, 700, size=400)
    out, latencies, i = [], [], 0
    for size in sizes:
        chunk = speech16[i : i + size]
        if len(chunk) < size:
            break
        i += size
        frame = suppressor.process(chunk)
        assert len(frame) == size
        out.append(frame)
        latencies.append(suppressor.latency_samples)
    assert latencies == sorted(latencies) and latencies[0] >= primed  # it may grow, never shrink
    heard = np.concatenate(out)
    assert delay_of(speech16[:i], heard, 1600) == latencies[-1]


def test_close_frees_the_state_and_refuses_more_audio() -> None:
    suppressor = NoiseSuppressor(16000)
    suppressor.process(np.zeros(320, dtype=np.int16))
    assert suppressor.frames == 1  # the upsampler's delay holds back part of the second frame
    suppressor.close()
    assert suppressor.closed
    with pytest.raises(RuntimeError, match="after close"):
        suppressor.process(np.zeros(320, dtype=np.int16))


def test_wrong_sample_format_is_refused() -> None:
    with pytest.raises(ValueError, match="int16"):
        NoiseSuppressor(16000).process(np.zeros(320, dtype=np.float32))  # type: ignore[arg-type]


def test_without_the_wheel_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(denoise.importlib.util, "find_spec", lambda name: None if name == "pyrnnoise" else real(name))
    rnnoise_library.cache_clear()
    try:
        with pytest.raises(DenoiseUnavailable, match="pyrnnoise wheel is not installed"):
            NoiseSuppressor(16000)
    finally:
        rnnoise_library.cache_clear()  # the next test loads the real one again
