"""VAD on real speech vs silence and noise; the silero confirmer rejects bursts webrtcvad accepts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from mediaserver.pipeline.vad import FRAME_SAMPLES, energy_floor_from_level, make_confirmer, make_vad

pytestmark = pytest.mark.slow

SENTENCE = "Hello, I would like to check the status of my order please."


def frames(pcm: np.ndarray) -> list[np.ndarray]:
    return [pcm[i : i + FRAME_SAMPLES] for i in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]


def speech_share(vad: object, pcm: np.ndarray) -> float:
    flags = [vad.is_speech(f) for f in frames(pcm)]  # type: ignore[attr-defined]
    return sum(flags) / len(flags)


def active_region(pcm: np.ndarray) -> np.ndarray:
    """The frames of an utterance louder than peak - 30 dB (its voiced part)."""
    levels = np.array([np.sqrt(np.mean(f.astype(np.float64) ** 2)) + 1e-9 for f in frames(pcm)])
    loud = 20 * np.log10(levels) > 20 * np.log10(levels.max()) - 30
    first, last = np.argmax(loud), len(loud) - np.argmax(loud[::-1])
    return pcm[first * FRAME_SAMPLES : last * FRAME_SAMPLES]


def noise_bursts(seed: int, seconds: float, level: float) -> np.ndarray:
    """Gated white/pink noise: bursts of 100-400 ms with 0.2-1 s gaps (docs/costs.md §3)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * 16000))
    at = 3200
    while at < len(out):
        length = int(rng.uniform(0.1, 0.4) * 16000)
        burst = rng.standard_normal(length)
        if rng.random() < 0.5:  # pink-ish: integrate white noise, remove the drift
            burst = np.cumsum(burst)
            burst -= np.convolve(burst, np.ones(64) / 64, mode="same")
        burst *= level / (np.sqrt(np.mean(burst**2)) + 1e-9)
        out[at : at + length] = burst[: len(out) - at]
        at += length + int(rng.uniform(0.2, 1.0) * 16000)
    return np.clip(out, -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def utterances(
    piper_speech: Callable[[str], np.ndarray], espeak_speech: Callable[[str], np.ndarray]
) -> list[np.ndarray]:
    return [active_region(piper_speech(SENTENCE)), active_region(espeak_speech(SENTENCE))]


def test_webrtc_flags_speech_and_not_silence(utterances: list[np.ndarray]) -> None:
    for speech in utterances:
        vad = make_vad(mode=3)
        assert speech_share(vad, speech) > 0.6
        vad.reset()
        assert speech_share(vad, np.zeros(16000, np.int16)) == 0.0
        rng = np.random.default_rng(7)
        hiss = (rng.standard_normal(32000) * 60).astype(np.int16)  # ~ -55 dBFS room noise
        vad.reset()
        assert speech_share(vad, hiss) == 0.0  # under the -45 dBFS floor whatever the GMM says


def test_energy_floor_gates_quiet_speech(utterances: list[np.ndarray]) -> None:
    # Piper speaks at about -19 dBFS RMS; 35 dB down is a distant talker at about -54 dBFS.
    quiet = (utterances[0].astype(np.float64) * 10 ** (-35 / 20)).astype(np.int16)
    assert speech_share(make_vad(mode=0, energy_floor_dbfs=energy_floor_from_level(52)), quiet) < 0.05
    assert speech_share(make_vad(mode=0, energy_floor_dbfs=energy_floor_from_level(0)), quiet) > 0.4


def test_energy_level_mapping() -> None:
    assert energy_floor_from_level(0) == -71.0
    assert energy_floor_from_level(52) == -45.0
    assert energy_floor_from_level(100) == -21.0
    for bad in (-1, 101, "52", True):
        with pytest.raises(ValueError, match="energy_level"):
            energy_floor_from_level(bad)  # type: ignore[arg-type]


def test_bad_frames_and_modes_are_named() -> None:
    with pytest.raises(ValueError, match="320"):
        make_vad().is_speech(np.zeros(300, np.int16))
    with pytest.raises(ValueError, match="int16"):
        make_vad().is_speech(np.zeros(320, np.float32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        make_vad(mode=4)


def test_silero_confirms_speech_and_rejects_the_noise_bursts_webrtcvad_accepts(utterances: list[np.ndarray]) -> None:
    confirmer = make_confirmer()
    assert confirmer is not None, "silero model should ship with faster-whisper"
    speech_rms = float(np.sqrt(np.mean(utterances[0].astype(np.float64) ** 2)))
    bursts = noise_bursts(seed=3, seconds=8.0, level=speech_rms / 10 ** (10 / 20))  # 10 dB under speech
    webrtc = make_vad(mode=3)
    burst_frames = [f for f in frames(bursts) if np.any(f)]
    accepted = sum(webrtc.is_speech(f) for f in burst_frames) / len(burst_frames)
    assert accepted > 0.2, accepted  # the failure mode the confirmer exists for

    # Per burst, as the kernel would ask: the 200 ms after webrtcvad fires.
    for start in range(0, len(bursts) - 3200, 3200):
        confirmer.reset()
        assert confirmer.speech_probability(bursts[start : start + 3200]) < 0.5
    for speech in utterances:
        confirmer.reset()
        assert confirmer.speech_probability(speech[:8000]) > 0.8  # the first 500 ms of a sentence


def test_silero_is_stateful_across_odd_sized_chunks(utterances: list[np.ndarray]) -> None:
    confirmer = make_confirmer()
    assert confirmer is not None
    speech = utterances[0][:16000]
    whole = confirmer.speech_probability(speech)
    confirmer.reset()
    pieces = [confirmer.speech_probability(speech[i : i + 300]) for i in range(0, len(speech), 300)]
    assert max(pieces) == pytest.approx(whole, abs=1e-4)  # same windows, same state, any chunking
    confirmer.reset()
    assert confirmer.speech_probability(np.zeros(100, np.int16)) == 0.0  # no full window yet
