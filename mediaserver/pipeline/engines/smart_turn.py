"""smart-turn v3.2 (BSD-2, pipecat-ai): P(turn complete) from the caller's last 8 s of audio.

Theory of operation: the ONNX model ships inside the `pipecat-ai` wheel as package data
(`pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx`); it is opened from the installed
package with importlib.resources, never downloaded. The preprocessing is exactly that of
pipecat's `LocalSmartTurnAnalyzerV3._predict_endpoint` (and `BaseSmartTurn`): int16 / 32768 to
float32, keep the last 8 s or pad with zeros at the start, Whisper log-mel features (80 x 800)
from pipecat's own helper with zero-mean unit-variance normalisation, one ONNX run, the sigmoid
output is the probability. One intra-op thread (~0.1 s per call); thread-safe (onnxruntime's
`run` is), so one instance serves every call.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any, cast

import numpy as np
import onnxruntime as ort

from mediaserver.audio.frame import Pcm
from mediaserver.pipeline.engines import TurnOptions

__all__ = ["MODEL_FILE", "MODEL_PACKAGE", "SmartTurnDetector", "WINDOW_SECONDS", "build", "model_path", "prepare"]

log = logging.getLogger(__name__)

MODEL_PACKAGE = "pipecat.audio.turn.smart_turn.data"
MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
SAMPLE_RATE = 16000
WINDOW_SECONDS = 8


def _quiet_pipecat() -> None:
    """pipecat logs a banner through loguru when first imported; we use two of its files only."""
    try:
        from loguru import logger

        logger.disable("pipecat")
    except ImportError:  # pragma: no cover - loguru comes with pipecat
        pass


def model_path() -> str:
    _quiet_pipecat()
    path = resources.files(MODEL_PACKAGE).joinpath(MODEL_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"{MODEL_FILE} is not in the installed pipecat-ai package ({MODEL_PACKAGE})")
    return str(path)


def prepare(pcm: Pcm) -> np.ndarray:
    """int16 (or float in [-1, 1]) 16 kHz audio -> the model's input features, shape (1, 80, 800)."""
    _quiet_pipecat()
    from pipecat.audio.turn.smart_turn._whisper_features import compute_whisper_log_mel_features

    audio = pcm.astype(np.float32) / 32768.0 if pcm.dtype == np.int16 else np.asarray(pcm, dtype=np.float32)
    n = WINDOW_SECONDS * SAMPLE_RATE
    if len(audio) > n:
        audio = audio[-n:]
    elif len(audio) < n:
        audio = np.pad(audio, (n - len(audio), 0), mode="constant", constant_values=0)
    features = compute_whisper_log_mel_features(audio, do_normalize=True)
    return np.expand_dims(features, axis=0)


class SmartTurnDetector:
    """`EndOfTurnDetector` over the bundled smart-turn v3.2 CPU model."""

    def __init__(self, path: str | None = None, *, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path or model_path()
        self._session = ort.InferenceSession(self.path, sess_options=options, providers=["CPUExecutionProvider"])
        log.info("smart-turn model loaded from %s", self.path)

    def probability(self, pcm: Pcm) -> float:
        outputs: list[Any] = self._session.run(None, {"input_features": prepare(pcm)})
        return float(cast(np.ndarray, outputs[0]).reshape(-1)[0])


def build(options: TurnOptions) -> SmartTurnDetector:
    """The `ENGINES["end_of_turn"]["smart_turn"]` factory (loads the model: blocking)."""
    return SmartTurnDetector(options.model or None, threads=options.threads)
