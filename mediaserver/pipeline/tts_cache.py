"""Synthesized audio of short repeated phrases, kept so that saying them again costs no CPU.

Theory of operation: fillers ("One moment."), greetings, recovery phrases and short stock answers
("Sure.") recur across turns and calls; Piper spends ~25 ms of a core per word on each (docs/
costs.md §1), on the same 2 cores as the media clock. `TtsCache` is an LRU of the chunks an
engine produced for a text, keyed by (voice, sample rate, text): the voice is `engine.voice_id`,
which must change whenever anything that changes the sound changes (an engine with speed or
pitch settings folds them into its id; Piper's synthesis settings are fixed). Only texts up to
`max_chars` are kept, since long LLM sentences rarely repeat, and the total size is bounded in
bytes (PCM plus a small charge per word timing), so the cache's memory is known in advance.

Chunks are immutable dataclasses; their PCM arrays are made read-only when stored, so a consumer
that tried to change shared audio in place would fail loudly instead of changing every later
caller's audio. Thread-safe (one lock), though `SpeechSynthesizer` uses it from the loop only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from mediaserver.pipeline.tts import TtsChunk, TtsEngine

__all__ = ["CacheKey", "TtsCache", "chunks_bytes"]

CacheKey = tuple[str, int, str]  # (voice id, sample rate, text)
_WORD_BYTES = 64  # what one WordTiming costs, roughly (a slotted object and its string)


def chunks_bytes(chunks: Sequence[TtsChunk]) -> int:
    """The memory a cached phrase is charged: its PCM plus its word timings."""
    return sum(chunk.pcm.nbytes + len(chunk.text) + _WORD_BYTES * len(chunk.words) for chunk in chunks)


class TtsCache:
    """LRU of (voice, rate, text) -> the engine's chunks, at most `max_bytes` in all."""

    def __init__(self, max_bytes: int, max_chars: int = 200) -> None:
        if max_bytes < 0 or max_chars < 1:
            raise ValueError(f"max_bytes must be >= 0 and max_chars >= 1, got {max_bytes}, {max_chars}")
        self.max_bytes = max_bytes
        self.max_chars = max_chars
        self._entries: OrderedDict[CacheKey, tuple[TtsChunk, ...]] = OrderedDict()
        self._sizes: dict[CacheKey, int] = {}
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, engine: TtsEngine, text: str) -> CacheKey | None:
        """The key `text` is kept under, or None when it is not cacheable (too long, no cache)."""
        text = text.strip()
        if not self.max_bytes or not text or len(text) > self.max_chars:
            return None
        return (engine.voice_id, engine.sample_rate, text)

    def get(self, key: CacheKey) -> tuple[TtsChunk, ...] | None:
        """The chunks kept under `key` (counted as a hit), or None (a miss)."""
        with self._lock:
            chunks = self._entries.get(key)
            if chunks is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return chunks

    def put(self, key: CacheKey, chunks: Sequence[TtsChunk]) -> bool:
        """Keep `chunks` under `key`, evicting the least recently used; False if too large."""
        size = chunks_bytes(chunks)
        if size > self.max_bytes:
            return False
        for chunk in chunks:
            chunk.pcm.flags.writeable = False  # shared by every later caller: never changed in place
        with self._lock:
            if key in self._entries:
                self.bytes -= self._sizes[key]
            self._entries[key] = tuple(chunks)
            self._entries.move_to_end(key)
            self._sizes[key] = size
            self.bytes += size
            while self.bytes > self.max_bytes:
                old, _ = self._entries.popitem(last=False)
                self.bytes -= self._sizes.pop(old)
                self.evictions += 1
        return True
