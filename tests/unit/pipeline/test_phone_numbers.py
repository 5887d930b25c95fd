"""`tts_number_format`: phone numbers in the agent's speech, international or national."""

from __future__ import annotations

import pytest

from mediaserver.pipeline.phone_numbers import format_phone_numbers, respell_phone_numbers
from mediaserver.pipeline.text import speakable


@pytest.mark.parametrize(
    ("written", "international", "national"),
    [
        ("Call (234) 567-8901 now.", "Call +12345678901 now.", "Call (234) 567-8901 now."),
        ("Call +1 234 567 8901.", "Call +12345678901.", "Call (234) 567-8901."),
        ("Call 234.567.8901, ok", "Call +12345678901, ok", "Call (234) 567-8901, ok"),
        ("It is 12345678901", "It is +12345678901", "It is (234) 567-8901"),
    ],
)
def test_written_numbers_take_the_format(written: str, international: str, national: str) -> None:
    assert format_phone_numbers(written, "international") == international
    assert format_phone_numbers(written, "national") == national
    assert format_phone_numbers(written, "") == written  # unset: as written


@pytest.mark.parametrize(
    "text",
    ["Order 1234567890123 is $5.", "Call 555-0123.", "Dial +44 20 7946 0958.", "Code 1234567890"],  # 0/1 area code
)
def test_other_numbers_are_left_alone(text: str) -> None:
    for style in ("international", "national"):
        assert format_phone_numbers(text, style) == text
        assert respell_phone_numbers(speakable(text), style) == speakable(text)


@pytest.mark.parametrize("written", ["Call (234) 567-8901 now.", "Call +1 234 567 8901 now.", "Call 2345678901 now."])
def test_speakable_numbers_are_read_again_in_the_format(written: str) -> None:
    spoken = speakable(written)
    assert respell_phone_numbers(spoken, "international") == "Call plus 1 2 3 4 5 6 7 8 9 0 1 now."
    assert respell_phone_numbers(spoken, "national") == "Call 2 3 4, 5 6 7, 8 9 0 1 now."
