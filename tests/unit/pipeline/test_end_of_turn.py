"""The transcript's hint for semantic end of turn: sentence ends raise, unfinished text lowers."""

from __future__ import annotations

import pytest

from mediaserver.pipeline.end_of_turn import (
    COMPLETE_THRESHOLD,
    end_of_turn_probability,
    is_unfinished,
    text_signal,
)


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a table for",
        "I'd like to book a table for.",  # Whisper puts a period on cut-off speech too
        "My number is five five five and",
        "I was calling because",
        "Can you send it to the",
        "I think, um",
        "So",
        "Well, so",
        "It is",
        "I need it by Tuesday,",
        "Let me think...",
        "I want to go to Boston —",
        "and then I'll uh",
    ],
)
def test_clearly_unfinished_text(text: str) -> None:
    assert text_signal(text) == -1
    assert is_unfinished(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a table for two.",
        "What is it for?",  # a question mark ends it even on a preposition
        "Yes it is.",
        "I think so.",
        "Thank you!",
        'He said "fine."',
    ],
)
def test_sentence_end(text: str) -> None:
    assert text_signal(text) == 1
    assert not is_unfinished(text)


@pytest.mark.parametrize("text", ["", "   ", "yes", "two people tonight", "Boston"])
def test_no_opinion(text: str) -> None:
    assert text_signal(text) == 0
    assert not is_unfinished(text)


def test_combination_moves_the_model_probability_by_the_text() -> None:
    for p in (0.05, 0.3, 0.5, 0.7, 0.95):
        assert end_of_turn_probability(p, "two people tonight") == pytest.approx(p)
        assert end_of_turn_probability(p, "For two people.") > p
        assert end_of_turn_probability(p, "for two people and") == 0.0
    # Punctuation is a weak hint: it tips a borderline verdict, not a confident "incomplete".
    assert end_of_turn_probability(0.4, "A table for two.") >= COMPLETE_THRESHOLD
    assert end_of_turn_probability(0.1, "A table for two.") < COMPLETE_THRESHOLD
    # Unfinished text vetoes: even a certain model does not end "... a table for".
    assert end_of_turn_probability(0.999, "a table for") == 0.0
    assert end_of_turn_probability(0.999, "a table for.") == 0.0
    # Bounded, and defined at the extremes.
    assert 0.0 < end_of_turn_probability(0.0, "two") < end_of_turn_probability(1.0, "Done.") < 1.0
