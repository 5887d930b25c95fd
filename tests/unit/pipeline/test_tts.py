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
