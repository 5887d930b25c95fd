"""Real speech for the pipeline tests: Piper and espeak-ng utterances at 16 kHz, and the phone path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soxr

from mscodecs.g711 import ulaw_decode, ulaw_encode
from tests.support.speech import read_wav, synthesize_espeak, to_mono

Pcm16 = np.ndarray


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def resample_int16(pcm: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    return to_int16(soxr.resample(pcm.astype(np.float32), from_rate, to_rate, quality="HQ"))


def through_pcmu(pcm16k: np.ndarray) -> np.ndarray:
    """16 kHz -> 8 kHz -> G.711 µ-law -> 8 kHz -> 16 kHz: what a phone call does to the caller."""
    narrow = resample_int16(pcm16k, 16000, 8000)
    return resample_int16(ulaw_decode(ulaw_encode(narrow)), 8000, 16000)


@pytest.fixture(scope="session")
def piper_engine():  # type: ignore[no-untyped-def]
    from mediaserver.pipeline.engines.piper_tts import PiperTts

    return PiperTts(threads=1)


@pytest.fixture(scope="session")
def recognizer():  # type: ignore[no-untyped-def]
    from mediaserver.pipeline.engines.whisper_asr import WhisperRecognizer

    return WhisperRecognizer()


@pytest.fixture(scope="session")
def piper_speech(piper_engine) -> Callable[[str], np.ndarray]:  # type: ignore[no-untyped-def]
    """text -> int16 speech at 16 kHz in the bundled Piper voice."""

    def speak(text: str) -> np.ndarray:
        pcm = np.concatenate([chunk.pcm for chunk in piper_engine.synthesize(text)])
        return resample_int16(pcm, piper_engine.sample_rate, 16000)

    return speak


@pytest.fixture(scope="session")
def espeak_speech(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], np.ndarray]:
    """text -> int16 speech at 16 kHz from espeak-ng (skips if espeak-ng is not installed)."""
    import shutil

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (Debian package espeak-ng, in .ci/run PEERS)")
    folder: Path = tmp_path_factory.mktemp("espeak")

    def speak(text: str) -> np.ndarray:
        path = synthesize_espeak(text, folder / f"{abs(hash(text))}.wav", 16000)
        samples, _rate = read_wav(path)
        return to_int16(to_mono(samples) * 32767.0)

    return speak
