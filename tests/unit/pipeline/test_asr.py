"""ASR: hints (pure), and the real recognizer on synthesized questions after a G.711 round trip."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import soxr

from mediaserver.pipeline.asr import HintRule, Recognition, apply_hint_rules, hotwords_text, parse_hints
from tests.support.speech import contains_words, words
from tests.unit.pipeline.conftest import through_pcmu

QUESTIONS = [
    "What time does the pharmacy close on Sunday?",
    "Can you tell me the balance of my checking account?",
]


def test_parse_hints_splits_words_and_rules() -> None:
    hints = [
        "SignalWire",
        {"hint": "Qubit", "pattern": "cue bit", "replace": "Qubit", "ignore_case": True},
        {"pattern": r"(\d) o'clock", "replace": r"\1:00"},
        "  ",
    ]
    found, rules = parse_hints(hints)
    assert found == ["SignalWire", "Qubit"]
    assert rules == [HintRule("cue bit", "Qubit", True), HintRule(r"(\d) o'clock", r"\1:00", False)]
    assert apply_hint_rules("A Cue Bit at 9 o'clock", rules) == "A Qubit at 9:00"
    assert apply_hint_rules("a cue bit", rules[1:]) == "a cue bit"
    assert hotwords_text(found) == "SignalWire, Qubit" and hotwords_text([]) is None


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        ([42], r"hints\[0\]"),
        ([{"pattern": "a"}], r"hints\[0\].*'pattern' and 'replace'"),
        (["ok", {"pattern": "(", "replace": "x"}], r"hints\[1\].pattern '\(' is not a valid regular expression"),
        ([{"ignore_case": True}], r"hints\[0\]: needs"),
        ("word", "must be a list"),
    ],
)
def test_bad_hints_are_named(hints: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hints(hints)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("voice", ["piper", "espeak"])
def test_question_over_pcmu_is_transcribed(
    voice: str,
    question: str,
    recognizer: object,
    piper_speech: Callable[[str], np.ndarray],
    espeak_speech: Callable[[str], np.ndarray],
) -> None:
    speech = (piper_speech if voice == "piper" else espeak_speech)(question)
    pcm = np.concatenate([np.zeros(4000, np.int16), through_pcmu(speech), np.zeros(8000, np.int16)])
    result = recognizer.transcribe(pcm)  # type: ignore[attr-defined]
    assert isinstance(result, Recognition)
    assert contains_words(result.text, question, min_fraction=0.85), result
    assert 0.3 < result.confidence <= 1.0, result


@pytest.mark.slow
def test_long_utterances_take_the_stock_window(recognizer: object, piper_speech: Callable[[str], np.ndarray]) -> None:
    text = (
        "I would like to book a table for four people tomorrow evening at seven. "
        "We would prefer a quiet table near the window, and one of us is vegetarian, "
        "so please let the kitchen know in advance."
    )
    speech = through_pcmu(piper_speech(text))
    assert len(speech) > 9 * 16000  # past the 10 s window less its margin
    result = recognizer.transcribe(speech)  # type: ignore[attr-defined]
    assert contains_words(result.text, text, min_fraction=0.85), result
    assert result.confidence > 0.3


@pytest.mark.slow
def test_prompt_hotwords_and_rules_together(recognizer: object, piper_speech: Callable[[str], np.ndarray]) -> None:
    speech = through_pcmu(piper_speech("Please connect me to the billing department."))
    pcm = np.concatenate([np.zeros(4000, np.int16), speech, np.zeros(8000, np.int16)])
    # The rule also repairs tiny.en's usual slip ("building department"), as a hint rule would.
    hints = ["billing", {"pattern": r"\b(?:billing|building) department\b", "replace": "Billing", "ignore_case": True}]
    found, rules = parse_hints(hints)  # type: ignore[arg-type]
    result = recognizer.transcribe(pcm, prompt="Which department?", hotwords=hotwords_text(found))  # type: ignore[attr-defined]
    assert contains_words(result.text, "connect me to the department", min_fraction=0.8), result
    rewritten = apply_hint_rules(result.text, rules)
    assert "Billing" in rewritten and "department" not in rewritten.lower(), rewritten


@pytest.mark.slow
def test_silence_and_tiny_input(recognizer: object) -> None:
    assert recognizer.transcribe(np.zeros(800, np.int16)) == Recognition("", 0.0)  # type: ignore[attr-defined]
    quiet = recognizer.transcribe(np.zeros(16000, np.int16))  # type: ignore[attr-defined]
    assert len(words(quiet.text)) <= 2  # whisper may say "you" on silence; never a sentence
    with pytest.raises(ValueError, match="mono"):
        recognizer.transcribe(np.zeros((2, 1600), np.int16))  # type: ignore[attr-defined]


def test_missing_model_is_a_clear_error() -> None:
    from mediaserver.pipeline.engines.whisper_asr import WhisperRecognizer

    with pytest.raises(RuntimeError, match="could not be loaded locally"):
        WhisperRecognizer("/nonexistent/whisper-model")
    with pytest.raises(ValueError, match="window_s"):
        WhisperRecognizer(window_s=0.5)


def test_decoder_loops_are_collapsed_but_real_repeats_of_one_word_kept() -> None:
    from mediaserver.pipeline.engines.whisper_asr import _drop_repeats

    assert _drop_repeats("Yes, that works. Yes, that works.") == "Yes, that works."
    assert _drop_repeats("What time is it? what time is it? What time is it?") == "What time is it?"
    assert _drop_repeats("No. No. Stop it.") == "No. No. Stop it."
    assert _drop_repeats("") == ""


@pytest.mark.slow
def test_short_answer_without_lead_in(recognizer: object, piper_speech: Callable[[str], np.ndarray]) -> None:
    result = recognizer.transcribe(through_pcmu(piper_speech("Yes, that works.")))  # type: ignore[attr-defined]
    assert words(result.text) == ["yes", "that", "works"], result


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("Could you please send the invoice to", "my office instead?"),
        ("Can you tell me the price of", "the blue jacket?"),
    ],
)
def test_a_sentence_cut_in_the_middle_is_not_completed_by_the_decoder(
    before: str, after: str, recognizer: object, piper_engine: object
) -> None:
    # One synthesis of the whole sentence, cut between two words: the voice is mid-sentence, as a
    # caller who pauses. tiny.en tends to finish such a sentence ("... invoice to me?"); the words
    # it adds after the audio ends are dropped, so the text ends on the last word spoken.
    (chunk,) = list(piper_engine.synthesize(f"{before} {after}"))  # type: ignore[attr-defined]
    spoken = chunk.words
    n = len(before.split())
    assert len(spoken) == len(f"{before} {after}".split())
    cut = (spoken[n - 1].end + spoken[n].start) // 2
    head = np.asarray(chunk.pcm[:cut], np.float32)
    speech = np.clip(soxr.resample(head, chunk.sample_rate, 16000), -32768, 32767).astype(np.int16)
    pcm = np.concatenate([through_pcmu(speech), np.zeros(960, np.int16)])  # + the 60 ms hangover
    text = recognizer.transcribe(pcm).text  # type: ignore[attr-defined]
    assert words(text)[-1] == words(before)[-1], text
    assert contains_words(text, before, min_fraction=0.8), text
