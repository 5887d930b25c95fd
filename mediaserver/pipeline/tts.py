"""Text-to-speech: the engine Protocol, its chunk type with word timings, and a phrase cache.

Theory of operation: an engine turns text into a stream of `TtsChunk`s, one per sentence, each
mono int16 PCM at the engine's own `sample_rate` (resampling to the call's rate happens once,
downstream, at the codec boundary). `synthesize` is blocking and is run by the kernel in a
bounded thread executor; it yields each sentence as soon as it is produced, so the first
sentence plays while later ones are still being synthesized (Piper: ~15-25 ms per word).

Each chunk may carry `words`: one `WordTiming` per whitespace-separated word of `text`, with the
sample offsets (within this chunk's pcm) where the word starts and ends. On barge-in the kernel
maps the played cursor back to the words the caller actually heard. Offsets are monotonic,
non-overlapping and inside the pcm; an engine that cannot time words leaves `words` empty.

`PhraseCache` keeps the chunks of fixed phrases (greetings, fillers, recovery phrases) so that
saying them again costs nothing: an LRU keyed by (text, voice), safe to use from executor
threads. Text clean-up lives in `pipeline.text` (`normalize_text` is re-exported here for the
callers that import it from this module); `split_sentences` cuts normalized text where an
engine would, so each chunk carries its text.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from mediaserver.audio.frame import Pcm
from mediaserver.pipeline.text import normalize_text

__all__ = ["PhraseCache", "TtsChunk", "TtsEngine", "WordTiming", "normalize_text", "split_sentences"]


@dataclass(frozen=True, slots=True)
class WordTiming:
    text: str  # the word as written in the chunk's text (punctuation attached)
    start: int  # sample offset of its first sample within the chunk's pcm
    end: int  # sample offset one past its last voiced sample (trailing pause excluded)


@dataclass(frozen=True, slots=True)
class TtsChunk:
    pcm: Pcm  # mono int16
    sample_rate: int
    text: str  # the sentence this audio speaks (after normalization)
    words: tuple[WordTiming, ...] = ()

    @property
    def duration_ms(self) -> float:
        return 1000.0 * len(self.pcm) / self.sample_rate

    def text_before(self, sample: int) -> str:
        """The words fully spoken before `sample` (a word counts once its end has played)."""
        return " ".join(w.text for w in self.words if w.end <= sample)


class TtsEngine(Protocol):
    sample_rate: int

    @property
    def voice_id(self) -> str:
        """Names the voice (Piper: its model path): engines with equal ids speak alike (`PhraseCache` keys)."""
        ...

    def synthesize(self, text: str) -> Iterator[TtsChunk]:
        """Blocking; yields one chunk per sentence, as soon as each is synthesized."""
        ...


# Boundaries: after . ! ? (and a closing quote or bracket) plus whitespace, but not after an
# ellipsis ("well... maybe" is one sentence); and at every line break (list items, headings).
_SENTENCE_END = re.compile(r"(?<!\.\.)(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+|\s*\n\s*")


def split_sentences(text: str) -> list[str]:
    """Cut normalized text after . ! ? followed by space (not after an ellipsis), and at line breaks."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


class PhraseCache:
    """LRU of synthesized phrases: (text, voice) -> the engine's chunks, computed once.

    The voice is `engine.voice_id`, so two voices never share an entry. Synthesis runs outside
    the lock (it takes ~100 ms+); two threads missing on the same phrase at once both synthesize
    it, and the last one wins.
    """

    def __init__(self, max_entries: int = 64) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], list[TtsChunk]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, engine: TtsEngine, text: str) -> list[TtsChunk] | None:
        key = (text, engine.voice_id)
        with self._lock:
            chunks = self._entries.get(key)
            if chunks is not None:
                self._entries.move_to_end(key)
            return chunks

    def get_or_synthesize(self, engine: TtsEngine, text: str) -> list[TtsChunk]:
        """Blocking on a miss (run it in the executor); the cached list must not be mutated."""
        key = (text, engine.voice_id)
        with self._lock:
            chunks = self._entries.get(key)
            if chunks is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return chunks
            self.misses += 1
        chunks = list(engine.synthesize(text))
        with self._lock:
            self._entries[key] = chunks
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return chunks
