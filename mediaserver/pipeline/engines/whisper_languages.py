"""A multilingual Whisper model told the language of each pass, or asked to detect it.

Theory of operation: `WhisperRecognizer` (whisper_asr.py) decodes in one language fixed at load
(English for `tiny.en`, the bundled model). With a multilingual model named by `[asr] model`,
the `ai` verb's `languages` decide the language per call and per turn, and with
`languages_enabled` the caller may change it (agents/ai/languages.py). `MultilingualWhisper`
wraps the shared recognizer and adds `transcribe_language(pcm, language=…)`: faster-whisper's
stock `transcribe`, given the language (`fr`), or None to detect it, returns the text and the
language it decoded in (`info.language`). That path pads to Whisper's 30 s window (slower
than the short window of whisper_asr.py, docs/costs.md §2), the price of a per-pass language.
Plain `transcribe` is the wrapped recognizer's. `multilingual(asr)` wraps only a multilingual
Whisper: an English-only model has no other language to hear, and stays as it is.
"""

from __future__ import annotations

import math

import numpy as np

from mediaserver.audio.frame import Pcm
from mediaserver.pipeline.asr import Recognition, SpeechRecognizer
from mediaserver.pipeline.engines.whisper_asr import WhisperRecognizer

__all__ = ["MultilingualWhisper", "multilingual"]


class MultilingualWhisper:
    def __init__(self, recognizer: WhisperRecognizer) -> None:
        self.recognizer = recognizer  # shared by every call: only its thread-safe model is used here
        self.sample_rate = recognizer.sample_rate

    def transcribe(self, pcm: Pcm, *, prompt: str | None = None, hotwords: str | None = None) -> Recognition:
        return self.recognizer.transcribe(pcm, prompt=prompt, hotwords=hotwords)

    def transcribe_language(
        self, pcm: Pcm, *, language: str | None, hotwords: str | None = None
    ) -> tuple[Recognition, str]:
        if len(pcm) < self.sample_rate // 10:
            return Recognition("", 0.0), ""  # under 100 ms: nothing a word fits in
        segments, info = self.recognizer.model.transcribe(
            pcm.astype(np.float32) / 32768.0,
            language=language or None,
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=True,
            hotwords=hotwords or None,
        )
        texts, weighted, total = [], 0.0, 0
        for segment in segments:
            texts.append(segment.text.strip())
            length = max(1, len(segment.tokens))
            weighted += segment.avg_logprob * length
            total += length
        text = " ".join(t for t in texts if t).strip()
        confidence = min(1.0, max(0.0, math.exp(weighted / total))) if text and total else 0.0
        return Recognition(text, confidence), str(info.language or "")


def multilingual(asr: SpeechRecognizer) -> SpeechRecognizer:
    """`asr` able to hear a language per pass when it is a multilingual Whisper, else `asr` itself."""
    if isinstance(asr, WhisperRecognizer) and asr.model.model.is_multilingual:
        return MultilingualWhisper(asr)
    return asr
