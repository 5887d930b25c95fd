"""Text for speech: speakable numbers, pronounce rules, streaming clause splitting (pure)."""

from __future__ import annotations

import pytest

from mediaserver.pipeline.text import ClauseSplitter, apply_pronounce, speakable


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call (555) 123-4567 today", "Call 5 5 5, 1 2 3, 4 5 6 7 today"),
        ("Call +1 555 123 4567.", "Call plus 1, 5 5 5, 1 2 3, 4 5 6 7."),
        ("or 555.123.4567", "or 5 5 5, 1 2 3, 4 5 6 7"),
        ("Dial 5551234567 now", "Dial 5 5 5 1 2 3 4 5 6 7 now"),
        ("We have 1,200 seats and 1500000 fans", "We have 1,200 seats and 1 5 0 0 0 0 0 fans"),
        ("Open at 9:00 until 10:05 pm.", "Open at 9 o'clock until 10 oh 5 P M."),
        ("Meet at 3:30PM or 7 a.m.", "Meet at 3 30 P M or 7 A M."),
        ("at 7 p.m. tomorrow", "at 7 P M tomorrow"),
        ("Due 1/2/2024", "Due 1 2 2024"),
        ("Room #5, $45.99", "Room number 5, 45 dollars and 99 cents"),
        ("Pi is 3.14, growth 50%, the 3rd", "Pi is 3.14, growth 50%, the 3rd"),
        ("**Dr.** Who", "Doctor Who"),
    ],
)
def test_speakable(text: str, expected: str) -> None:
    assert speakable(text) == expected
    assert speakable(expected) == expected  # idempotent: engines may apply it again


def test_apply_pronounce() -> None:
    rules = [
        {"replace": "AI", "with": "A I"},
        {"replace": "SQL", "with": "sequel", "ignore_case": False},
        {"replace": "A.C.M.E.", "with": "Acme"},
    ]
    assert (
        apply_pronounce("Our ai said SQL, not sql; A.C.M.E. rocks", rules) == "Our A I said sequel, not sql; Acme rocks"
    )
    assert apply_pronounce("said", rules) == "said"  # whole words only
    with pytest.raises(ValueError, match=r"pronounce\[0\]"):
        apply_pronounce("x", [{"replace": "x"}])
    with pytest.raises(ValueError, match=r"pronounce\[1\]"):
        apply_pronounce("x", [{"replace": "x", "with": "y"}, "oops"])  # type: ignore[list-item]


def run(tokens: list[str], **kw: object) -> list[str]:
    splitter = ClauseSplitter(**kw)  # type: ignore[arg-type]
    out: list[str] = []
    for token in tokens:
        out.extend(splitter.feed(token))
    tail = splitter.flush()
    return [*out, tail] if tail else out


def tokens_of(text: str) -> list[str]:
    # LLM-like tokens: words with their leading space, punctuation often separate.
    import re

    return re.findall(r"\s*\w+|\s*[^\w\s]", text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the first clause is cut at its first comma (one word is enough); later ones only at
        # sentence ends
        (
            "Sure thing, I can help with that, no problem. Your order ships today, by noon.",
            ["Sure thing,", "I can help with that, no problem.", "Your order ships today, by noon."],
        ),
        ("Yes, sure. Anything else?", ["Yes,", "sure.", "Anything else?"]),
        # never inside numbers or after abbreviations and initials
        (
            "The rate is 3.5 percent today. Dr. Smith and J. Doe agree.",
            ["The rate is 3.5 percent today.", "Doctor Smith and J. Doe agree."],
        ),
        ("It costs $1,200.50 in total. Thanks!", ["It costs 1200 dollars and 50 cents in total.", "Thanks!"]),
        ("Well... I think so. OK", ["Well... I think so.", "OK"]),
        ("Hi! How are you?", ["Hi!", "How are you?"]),
        ("Items:\n- apples\n- pears", ["Items:", "apples", "pears"]),
        ("", []),
    ],
)
def test_clause_splitter(text: str, expected: list[str]) -> None:
    assert run(tokens_of(text)) == expected


def test_clause_splitter_emits_the_first_clause_as_soon_as_its_boundary_is_confirmed() -> None:
    splitter = ClauseSplitter()
    assert splitter.feed("Hello") == []
    assert splitter.feed(" there") == []
    assert splitter.feed(".") == []  # "there." might still be "there.5"? needs the next character
    assert splitter.feed(" I") == ["Hello there."]
    assert splitter.feed(" will check the 3") == []
    assert splitter.feed(".") == []
    assert splitter.feed("5 value") == []  # 3.5 was a number, not a sentence end
    assert splitter.flush() == "I will check the 3.5 value"
    assert splitter.flush() == ""


def test_clause_splitter_long_sentences_split_at_pauses_and_pronounce_applies() -> None:
    words = " ".join(f"w{i}" for i in range(35))
    out = run(tokens_of(f"Okay. {words}, tail end."), max_words=30)
    assert out == ["Okay.", f"{words},", "tail end."]
    assert run(["The AI", " is on."], pronounce=[{"replace": "AI", "with": "A I"}]) == ["The A I is on."]
    assert run(["**raw** $5 ", "text"], normalize=False) == ["**raw** $5 text"]
    with pytest.raises(ValueError):
        ClauseSplitter(first_min_words=0)


def test_clause_splitter_first_min_words_holds_short_quick_clauses() -> None:
    text = "Sure thing, I can help with that, no problem. Yes, sure."
    assert run(tokens_of(text), first_min_words=4, quick_stops=2) == [
        "Sure thing, I can help with that,",
        "no problem.",
        "Yes, sure.",
    ]
