"""`asr_smart_format`: the deterministic formatter over a recognizer's text."""

from __future__ import annotations

import pytest

from mediaserver.pipeline.smart_format import smart_format


@pytest.mark.parametrize(
    ("heard", "written"),
    [
        ("it costs twenty five dollars and fifty cents", "it costs $25.50"),
        ("five dollars", "$5"),
        ("1,200 dollars", "$1,200"),
        ("call five five five one two one two please", "call 5551212 please"),
        ("my pin is one oh four two", "my pin is 1042"),
        ("two hundred and five people", "205 people"),
        ("twenty-one people", "21 people"),
        ("a hundred people", "100 people"),
        ("three thousand two hundred", "3200"),
        ("fifteen percent off", "15% off"),
        ("two point five percent", "2.5%"),
        ("meet on march third at three thirty p.m.", "meet on March 3rd at 3:30 PM"),
        ("June twenty first", "June 21st"),
        ("may 2", "May 2nd"),
        ("at seven am", "at 7 AM"),
        ("twelve forty five am", "12:45 AM"),
        ("It is 3:30 pm", "It is 3:30 PM"),
        ("at nine o'clock", "at 9:00"),
    ],
)
def test_numbers_money_percentages_dates_and_times_are_written_as_such(heard: str, written: str) -> None:
    assert smart_format(heard) == written


@pytest.mark.parametrize(
    "text",
    [
        "I have two kids",  # a lone small number stays a word
        "one of them",
        "the first time",
        "may I help you",  # the verb, not the month
        "twenty thirty",  # two numbers, not one
        "I was born in nineteen eighty",  # a year is not a sum
        "no numbers here at all",
    ],
)
def test_everything_else_is_left_as_it_was(text: str) -> None:
    assert smart_format(text) == text
