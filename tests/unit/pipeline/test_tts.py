"""TTS: text normalization and sentence splitting (pure), and the Piper engine (slow: loads a model)."""

from __future__ import annotations

import numpy as np
import pytest

from mediaserver.pipeline.tts import TtsChunk, TtsEngine, normalize_text, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith will see you.", "Doctor Smith will see you."),
        ("Ask Mrs. Jones vs. Mr. Lee", "Ask Missus Jones versus Mister Lee"),
        ("**Bold** and _plain_ `code`", "Bold and _plain_ code"),
        ("<speak>Hello <break time='1s'/>there</speak>", "Hello there"),
        ("See [the docs](https://example.com).", "See the docs."),
        ("# Menu\n- one\n* two", "Menu\none\ntwo"),
        ("It costs $45.99 or $1,200.", "It costs 45 dollars and 99 cents or 1200 dollars."),
        ("Just $1.01", "Just 1 dollar and 1 cent"),
        ("Call 555-0123 now", "Call 5 5 5, 0 1 2 3 now"),
        ("Tea & cake, e.g. scones", "Tea and cake, for example scones"),
        ("  spaced   out  ", "spaced out"),
        ("Version 2.5 is out", "Version 2.5 is out"),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, this is a test. Second sentence.", ["Hello, this is a test.", "Second sentence."]),
        ("Really? Yes! Fine", ["Really?", "Yes!", "Fine"]),
        ("Well... maybe. Ok", ["Well... maybe.", "Ok"]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("Pi is 3.14 today", ["Pi is 3.14 today"]),
        ("line one\nline two", ["line one", "line two"]),
        ("", []),
        ("   ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_dr_does_not_end_a_sentence() -> None:
    assert split_sentences(normalize_text("Dr. Who is in. Bye.")) == ["Doctor Who is in.", "Bye."]


@pytest.fixture(scope="module")
def piper() -> TtsEngine:
    from mediaserver.pipeline.engines.piper_tts import PiperTts

    return PiperTts(threads=1)


@pytest.mark.slow
def test_piper_yields_one_chunk_per_sentence(piper: TtsEngine) -> None:
    chunks = list(piper.synthesize("Hello, this is a test. Second sentence."))
    assert piper.sample_rate == 22050
    assert [c.text for c in chunks] == ["Hello, this is a test.", "Second sentence."]
    for chunk in chunks:
        assert isinstance(chunk, TtsChunk)
        assert chunk.sample_rate == 22050
        assert chunk.pcm.dtype == np.int16 and chunk.pcm.ndim == 1
        rms = float(np.sqrt(np.mean(chunk.pcm.astype(np.float64) ** 2)))
        assert rms > 500, rms  # speech, not silence
    # Plausible speaking rate: ~2.5-3 words per second; allow a wide band.
    first_s, second_s = (c.duration_ms / 1000 for c in chunks)
    assert 0.8 < first_s < 3.5, first_s
    assert 0.5 < second_s < 2.5, second_s


@pytest.mark.slow
def test_piper_streams_lazily_and_skips_empty_text(piper: TtsEngine) -> None:
    stream = piper.synthesize("One. Two. Three.")
    first = next(stream)  # the first sentence is available before the rest are synthesized
    assert first.text == "One."
    assert [c.text for c in stream] == ["Two.", "Three."]
    assert list(piper.synthesize("  ")) == []
    assert list(piper.synthesize("<break/>")) == []


def test_piper_threads_must_be_positive() -> None:
    from mediaserver.pipeline.engines.piper_tts import PiperTts

    with pytest.raises(ValueError):
        PiperTts(threads=0)


# ---- word timings and the phrase cache -------------------------------------------------------

TIMING_TEXTS = [
    "I think that the answer is out of reach.",  # espeak merges "that the", "out of"
    "Your appointment is at 10:30 pm with Dr. Jones, room #4.",  # numbers expand to several words
    "Thank you for calling, how can I help you today?",
]


def assert_well_formed(chunk: TtsChunk) -> None:
    words = chunk.words
    assert [w.text for w in words] == [t for t in chunk.text.split() if any(c.isalnum() for c in t)]
    assert all(0 <= w.start <= w.end <= len(chunk.pcm) for w in words)
    assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False)), words
    assert sum(w.end > w.start for w in words) >= len(words) - 1  # at most a rounding casualty
    # Covering the chunk: speech starts within 150 ms and ends within 300 ms of the edges.
    assert words[0].start < 0.15 * chunk.sample_rate
    assert words[-1].end > len(chunk.pcm) - 0.3 * chunk.sample_rate


@pytest.mark.slow
@pytest.mark.parametrize("text", TIMING_TEXTS)
def test_piper_word_timings_are_monotonic_and_cover_the_chunk(piper: TtsEngine, text: str) -> None:
    for chunk in piper.synthesize(text):
        assert_well_formed(chunk)


@pytest.mark.slow
def test_piper_word_timings_agree_with_whisper(piper: TtsEngine) -> None:
    import difflib

    import soxr

    from mediaserver.pipeline.engines.whisper_asr import WhisperRecognizer
    from tests.support.speech import words as norm

    recognizer = WhisperRecognizer()
    errors: list[float] = []
    for text in [*TIMING_TEXTS, "Please hold while I transfer you to the billing department."]:
        for chunk in piper.synthesize(text):
            ours = [(norm(w.text), w.end / chunk.sample_rate) for w in chunk.words]
            ours = [(n[0], end) for n, end in ours if len(n) == 1]  # single spoken words only
            pcm16k = soxr.resample(chunk.pcm.astype(np.float32), chunk.sample_rate, 16000).astype(np.int16)
            theirs = [(norm(w)[0], end) for w, _start, end in recognizer.word_timestamps(pcm16k) if len(norm(w)) == 1]
            matcher = difflib.SequenceMatcher(a=[w for w, _ in ours], b=[w for w, _ in theirs], autojunk=False)
            for block in matcher.get_matching_blocks():
                for i in range(block.size):
                    errors.append(abs(ours[block.a + i][1] - theirs[block.b + i][1]))
    assert len(errors) >= 25, errors
    assert float(np.median(errors)) < 0.15, sorted(errors)


def test_word_timings_fall_back_to_proportion_when_espeak_merges_words() -> None:
    from mediaserver.pipeline.engines.piper_words import Phone, word_timings

    def phonemize(word: str) -> list[str]:
        return list({"that": "ðæt", "the": "ðə", "cat.": "kæt."}[word])

    # espeak merged "that the" into one group: 2 groups for 3 words.
    phones = [Phone("^", 0, 100)]
    at = 100
    for p in "ðætðə kæt.":
        phones.append(Phone(p, at, at + 100))
        at += 100
    phones.append(Phone("$", at, at + 100))
    timings = word_timings("that the cat.", phones, at + 100, phonemize)
    assert [(w.text, w.start, w.end) for w in timings] == [("that", 100, 400), ("the", 400, 600), ("cat.", 700, 1000)]
    # no alignment at all: spread over the chunk by phoneme counts, still ordered
    rough = word_timings("that the cat.", None, 8000, phonemize)
    assert [w.text for w in rough] == ["that", "the", "cat."]
    assert rough[0].start == 0 and rough[-1].end == 8000
    assert all(a.end <= b.start for a, b in zip(rough, rough[1:], strict=False))


def test_text_before_counts_fully_spoken_words() -> None:
    from mediaserver.pipeline.tts import WordTiming

    timings = (WordTiming("one", 0, 300), WordTiming("two", 320, 600), WordTiming("three", 620, 990))
    chunk = TtsChunk(np.zeros(1000, np.int16), 8000, "one two three", timings)
    assert chunk.text_before(0) == ""
    assert chunk.text_before(599) == "one"
    assert chunk.text_before(600) == "one two"
    assert TtsChunk(np.zeros(10, np.int16), 8000, "x").words == ()  # old call sites still work


class CountingTts:
    sample_rate = 8000

    def __init__(self, voice_id: str) -> None:
        self.voice_id = voice_id
        self.calls: list[str] = []

    def synthesize(self, text: str):  # type: ignore[no-untyped-def]
        self.calls.append(text)
        yield TtsChunk(np.full(160, len(self.calls), np.int16), 8000, text)


def test_phrase_cache_synthesizes_once_per_text_and_voice_and_evicts_lru() -> None:
    from mediaserver.pipeline.tts import PhraseCache

    cache = PhraseCache(max_entries=2)
    joe, amy = CountingTts("joe"), CountingTts("amy")
    first = cache.get_or_synthesize(joe, "Hello.")
    assert cache.get_or_synthesize(joe, "Hello.") is first
    assert joe.calls == ["Hello."] and cache.hits == 1 and cache.misses == 1
    cache.get_or_synthesize(amy, "Hello.")  # another voice: its own entry
    assert amy.calls == ["Hello."]
    cache.get_or_synthesize(joe, "Hello.")  # touch: joe's entry is now the most recent
    cache.get_or_synthesize(joe, "One moment.")  # evicts amy's, the least recently used
    assert len(cache) == 2
    assert cache.get(amy, "Hello.") is None and cache.get(joe, "Hello.") is first
    with pytest.raises(ValueError):
        PhraseCache(max_entries=0)


@pytest.mark.slow
def test_phrase_cache_with_piper(piper: TtsEngine) -> None:
    from mediaserver.pipeline.tts import PhraseCache

    cache = PhraseCache()
    chunks = cache.get_or_synthesize(piper, "One moment please.")
    assert [c.text for c in chunks] == ["One moment please."] and chunks[0].words
    assert cache.get_or_synthesize(piper, "One moment please.") is chunks
