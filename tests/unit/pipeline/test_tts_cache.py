"""The TTS phrase cache: a repeated short phrase is spoken from memory, identical, without the engine."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mediaserver.kernel.speech import SpeechSynthesizer
from mediaserver.metrics import Metrics
from mediaserver.pipeline.tts import TtsChunk, TtsEngine, WordTiming, split_sentences
from mediaserver.pipeline.tts_cache import TtsCache, chunks_bytes


class CountingTts:
    """Each sentence is 100 samples per word of a tone that depends on the voice; counts its calls."""

    sample_rate = 8000

    def __init__(self, voice: str = "a") -> None:
        self.voice = voice
        self.calls: list[str] = []

    @property
    def voice_id(self) -> str:
        return self.voice

    def synthesize(self, text: str) -> Iterator[TtsChunk]:
        self.calls.append(text)
        for sentence in split_sentences(text):
            words = sentence.split()
            pcm = (1000 * np.sin(np.arange(100 * len(words)) * (0.1 if self.voice == "a" else 0.2))).astype(np.int16)
            timings = tuple(WordTiming(w, 100 * i, 100 * i + 90) for i, w in enumerate(words))
            yield TtsChunk(pcm, self.sample_rate, sentence, timings)


async def _say(synth: SpeechSynthesizer, text: str) -> list[TtsChunk]:
    return [chunk async for chunk in synth.stream(text)]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


async def test_a_repeated_phrase_comes_from_the_cache_identical(pool: ThreadPoolExecutor) -> None:
    engine, cache = CountingTts(), TtsCache(max_bytes=1 << 20)
    synth = SpeechSynthesizer(engine, pool, cache)
    first = await _say(synth, "One moment please. Let me check.")
    second = await _say(synth, "One moment please. Let me check.")
    assert engine.calls == ["One moment please. Let me check."]  # the engine ran once
    assert len(second) == len(first) == 2
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.pcm, b.pcm) and a.words == b.words and a.text == b.text
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1)
    assert cache.bytes == chunks_bytes(first)
    with pytest.raises(ValueError):
        second[0].pcm[0] = 1  # shared audio is read-only


async def test_long_texts_and_other_voices_are_not_shared(pool: ThreadPoolExecutor) -> None:
    cache = TtsCache(max_bytes=1 << 20, max_chars=20)
    a, b = CountingTts("a"), CountingTts("b")
    long_text = "This sentence is longer than twenty characters."
    for _ in range(2):
        await _say(SpeechSynthesizer(a, pool, cache), long_text)
        await _say(SpeechSynthesizer(a, pool, cache), "Sure.")
        await _say(SpeechSynthesizer(b, pool, cache), "Sure.")
    assert a.calls == [long_text, "Sure.", long_text]  # long: every time; short: once per voice
    assert b.calls == ["Sure."]
    assert cache.hits == 2 and len(cache) == 2


async def test_a_phrase_cut_off_by_its_listener_is_not_kept(pool: ThreadPoolExecutor) -> None:
    engine, cache = CountingTts(), TtsCache(max_bytes=1 << 20)
    synth = SpeechSynthesizer(engine, pool, cache)
    stream = synth.stream("Hello there. How are you?")
    assert (await anext(stream)).text == "Hello there."
    await stream.aclose()  # a barge-in: only part of it was wanted
    assert len(cache) == 0
    await _say(synth, "Hello there. How are you?")
    assert len(engine.calls) == 2 and len(cache) == 1


def test_the_cache_is_bounded_in_bytes_least_recently_used_first() -> None:
    engine = CountingTts()
    one = list(engine.synthesize("One two."))  # 200 samples
    size = chunks_bytes(one)
    cache = TtsCache(max_bytes=2 * size)
    keys = [cache.key(engine, text) for text in ("First one.", "Second one.", "Third one.")]
    assert all(key is not None for key in keys)
    k1, k2, k3 = (k for k in keys if k is not None)
    assert cache.put(k1, list(engine.synthesize("One two."))) and cache.put(k2, list(engine.synthesize("One two.")))
    assert cache.get(k1) is not None  # k1 is now the most recently used
    assert cache.put(k3, list(engine.synthesize("One two.")))
    assert cache.get(k2) is None and cache.get(k1) is not None and cache.get(k3) is not None
    assert cache.bytes <= cache.max_bytes and cache.evictions == 1
    assert not cache.put(k1, list(engine.synthesize("One two three four five.")))  # larger than the cache
    assert TtsCache(max_bytes=0).key(engine, "Hi.") is None  # 0 bytes: no cache


def test_hits_are_exported_as_a_prometheus_counter() -> None:
    cache = TtsCache(max_bytes=1 << 20)
    engine = CountingTts()
    key = cache.key(engine, "Hi.")
    assert key is not None
    cache.put(key, list(engine.synthesize("Hi.")))
    cache.get(key)
    metrics = Metrics()
    metrics.counter("mediaserver_tts_cache_hits", "Phrases spoken from the TTS cache", lambda: cache.hits)
    body, _ = metrics.render()
    assert b"mediaserver_tts_cache_hits_total 1.0" in body


@pytest.mark.slow
async def test_piper_speaks_a_cached_phrase_without_running_again(piper_engine: TtsEngine) -> None:
    calls: list[str] = []

    class Counted:
        sample_rate = piper_engine.sample_rate
        voice_id = piper_engine.voice_id

        def synthesize(self, text: str) -> Iterator[TtsChunk]:
            calls.append(text)
            return piper_engine.synthesize(text)

    with ThreadPoolExecutor(max_workers=1) as pool:
        synth = SpeechSynthesizer(Counted(), pool, TtsCache(max_bytes=8 << 20))
        first = await _say(synth, "One moment please.")
        second = await _say(synth, "One moment please.")
    assert calls == ["One moment please."]
    assert first[0].words and second[0].words == first[0].words
    assert np.array_equal(first[0].pcm, second[0].pcm)
