"""smart-turn v3.2 from the pipecat-ai wheel: the same probabilities as pipecat's own analyzer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mediaserver.pipeline.end_of_turn import EndOfTurnDetector
from mediaserver.pipeline.engines.smart_turn import MODEL_FILE, SmartTurnDetector, model_path, prepare
from tests.support.speech import load_audio_16k, synthesize_espeak

pytestmark = pytest.mark.slow

SENTENCES = {
    "whole": "I would like to book a table for two people tonight, please.",
    "unfinished": "I would like to book a table for",
}


@pytest.fixture(scope="module")
def detector() -> SmartTurnDetector:
    return SmartTurnDetector()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """Each sentence as a caller's turn: 16 kHz int16, then 300 ms of trailing silence."""
    folder: Path = tmp_path_factory.mktemp("smart_turn")
    out = {}
    for name, text in SENTENCES.items():
        audio = load_audio_16k(synthesize_espeak(text, folder / f"{name}.wav"))
        pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
        out[name] = np.concatenate([pcm, np.zeros(4800, dtype=np.int16)])
    return out


def test_model_comes_from_the_installed_pipecat_package() -> None:
    path = Path(model_path())
    assert path.name == MODEL_FILE and path.is_file()
    assert "pipecat" in path.parts and path.stat().st_size > 1_000_000


def test_features_are_80_by_800_and_short_audio_is_padded_at_the_start() -> None:
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.int16)
    features = prepare(tone)
    assert features.shape == (1, 80, 800) and features.dtype == np.float32
    # Padding goes first: the first 7 s are the same (silent) column, the last second is not.
    assert np.allclose(features[0, :, 0], features[0, :, 600])
    assert not np.allclose(features[0, :, 0], features[0, :, 750])
    # Longer than 8 s: only the last 8 s count.
    longer = np.concatenate([np.full(32000, 20000, dtype=np.int16), np.zeros(112000, np.int16), tone])
    assert np.array_equal(prepare(longer), prepare(longer[-128000:]))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pipecat's importlib.resources.path call
def test_probabilities_equal_pipecats_own_analyzer(detector: SmartTurnDetector, speech: dict[str, np.ndarray]) -> None:
    from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

    reference = LocalSmartTurnAnalyzerV3(cpu_count=1)  # the same bundled model, pipecat's preprocessing
    checked: EndOfTurnDetector = detector
    diffs = []
    for name, pcm in speech.items():
        ours = checked.probability(pcm)
        # BaseSmartTurn hands _predict_endpoint the int16 buffer as float32 / 32768.
        theirs = reference._predict_endpoint(pcm.astype(np.float32) / 32768.0)["probability"]
        assert 0.0 <= ours <= 1.0, name
        assert abs(ours - theirs) <= 1e-5, (name, ours, theirs)
        diffs.append(abs(ours - theirs))
        # Also on a cut that is longer than the model's 8 s window (truncation keeps the end).
        long = np.concatenate([speech["whole"], pcm])
        assert (
            abs(
                checked.probability(long)
                - reference._predict_endpoint(long.astype(np.float32) / 32768.0)["probability"]
            )
            <= 1e-5
        )
    print(f"max abs difference vs pipecat: {max(diffs):.3g}")
