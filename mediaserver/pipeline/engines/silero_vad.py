"""silero VAD through onnxruntime, no torch: the `SpeechConfirmer`.

Theory of operation: the model file is the one faster-whisper ships (`faster_whisper/assets/
silero_vad_v6.onnx`), so it comes with a dependency we already have and nothing is downloaded;
the `silero-vad` package would pull in torch (docs/costs.md §3), and the torch-free wrappers would be
one more dependency for the same file. This export takes a batch of 512-sample windows, each
prefixed by the 64 samples before it (576 in all), plus the LSTM state (h, c), and returns one
probability per window: the batch axis is time, so a whole chunk runs in one `session.run`.

The confirmer is stateful per call: it keeps the LSTM state, the last 64 samples as context, and
the samples left over when a chunk is not a multiple of 512. `speech_probability` returns the
highest probability among the windows completed by this chunk; a chunk too short to complete a
window returns the last probability seen. One ONNX session is shared by all calls (onnxruntime
sessions may be run concurrently); one intra-op thread, since more does not help (§3).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import numpy as np

from mediaserver.audio.frame import Pcm

__all__ = ["SileroConfirmer", "model_path"]

_WINDOW = 512  # samples at 16 kHz (32 ms)
_CONTEXT = 64


def model_path() -> Path:
    import faster_whisper

    path = Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise RuntimeError(f"silero model not found at {path} (faster-whisper >= 1.1 ships it)")
    return path


_session_lock = threading.Lock()


@functools.cache
def _session() -> Any:  # onnxruntime.InferenceSession
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(model_path()), sess_options=options, providers=["CPUExecutionProvider"])


class SileroConfirmer:
    def __init__(self) -> None:
        with _session_lock:
            self._session = _session()
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self.last_probability = 0.0

    def speech_probability(self, pcm: Pcm) -> float:
        if pcm.ndim != 1:
            raise ValueError(f"confirmer wants mono 1-D pcm, got shape {pcm.shape}")
        audio = np.concatenate([self._pending, pcm.astype(np.float32) / 32768.0])
        n = len(audio) // _WINDOW
        self._pending = audio[n * _WINDOW :]
        if n == 0:
            return self.last_probability
        windows = audio[: n * _WINDOW].reshape(n, _WINDOW)
        history = np.concatenate([self._context, audio[: n * _WINDOW]])
        # window i's context is the 64 samples just before it in the stream
        contexts = np.stack([history[i * _WINDOW : i * _WINDOW + _CONTEXT] for i in range(n)])
        batch = np.concatenate([contexts, windows], axis=1)
        probs, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = windows[-1, -_CONTEXT:].copy()
        self.last_probability = float(probs[-1])
        return float(np.max(probs))
