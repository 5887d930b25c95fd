"""decode_audio_file: a stdlib-written WAV comes back mono, resampled, and still the same sound."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from mediaserver.pipeline.media_files import MediaFileError, decode_audio_file

SOURCE_RATE = 22_050
DURATION_S = 1.5


def chirp(rate: int, duration_s: float = DURATION_S) -> np.ndarray:
    """A 200 -> 3000 Hz linear sweep: below 4 kHz so it survives 8 kHz, and not periodic, so a
    correlation peak can only be at the right alignment."""
    t = np.arange(round(rate * duration_s)) / rate
    f0, f1 = 200.0, 3000.0
    return np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * duration_s)))


def wav_bytes(channels: int = 2, rate: int = SOURCE_RATE) -> bytes:
    mono = (0.5 * 32767 * chirp(rate)).astype(np.int16)
    # Stereo: the same sweep on the left, the sweep at 60 % on the right, so the downmix is
    # still the sweep (scaled) and a wrong channel layout would show up as a bad amplitude.
    frames = np.stack([mono, (0.6 * mono).astype(np.int16)], axis=1) if channels == 2 else mono
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames.astype("<i2").tobytes())
    return buffer.getvalue()


def best_correlation(actual: np.ndarray, expected: np.ndarray, max_lag: int = 40) -> tuple[float, int]:
    """Normalized correlation at the best small lag (resamplers may add a few samples of delay)."""
    best = (-1.0, 0)
    n = min(len(actual), len(expected)) - max_lag
    a_all = actual.astype(np.float64)
    e = expected[:n].astype(np.float64)
    for lag in range(max_lag):
        a = a_all[lag : lag + n]
        score = float(np.dot(a, e) / (np.linalg.norm(a) * np.linalg.norm(e) + 1e-12))
        best = max(best, (score, lag))
    return best


@pytest.mark.parametrize("rate", [8000, 16000])
def test_wav_file_is_downmixed_and_resampled(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "sweep.wav"
    path.write_bytes(wav_bytes(channels=2))
    pcm = decode_audio_file(str(path), rate)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert abs(len(pcm) - DURATION_S * rate) <= rate * 0.005  # within 5 ms of 1.5 s
    score, lag = best_correlation(pcm, chirp(rate))
    assert score > 0.98, (score, lag)
    assert lag <= 20
    # Downmix averages the channels: (1.0 + 0.6) / 2 = 0.8 of the left channel's 0.5 peak.
    peak = np.abs(pcm).max() / 32767
    assert 0.35 < peak < 0.45


def test_bytes_input_mono_same_rate() -> None:
    pcm = decode_audio_file(wav_bytes(channels=1), SOURCE_RATE)
    assert len(pcm) == round(SOURCE_RATE * DURATION_S)
    score, lag = best_correlation(pcm, chirp(SOURCE_RATE))
    assert score > 0.999 and lag == 0


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    with pytest.raises(MediaFileError, match=f"^{missing}: no such file$"):
        decode_audio_file(str(missing), 8000)


def test_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not a wave file\n" * 20)
    with pytest.raises(MediaFileError, match=f"^{path}: "):
        decode_audio_file(str(path), 8000)


def test_garbage_bytes_are_named() -> None:
    with pytest.raises(MediaFileError, match=r"^https://example\.com/a\.wav: "):
        decode_audio_file(b"\x00\x01garbage" * 50, 8000, name="https://example.com/a.wav")
    with pytest.raises(MediaFileError, match=r"^<0 bytes>: empty file$"):
        decode_audio_file(b"", 8000)


def test_bad_rate() -> None:
    with pytest.raises(ValueError):
        decode_audio_file(wav_bytes(), 0)
