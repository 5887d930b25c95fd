"""Smart formatting of a transcript (SWML `asr_smart_format`): numbers, money, times, dates.

Theory of operation: the platform's recognizers can write "twenty five dollars" as "$25"; the
local one writes what it heard, in words or digits as it happens. `smart_format(text)` is a small
deterministic formatter over any recognizer's text, in this order:

1. digit strings: three or more single digits in a row ("five five five one two one two",
   "oh" for zero after the first) become one number "5551212" (phone numbers, codes, PINs);
2. cardinals: a run of number words ("two hundred and five", "twenty-one", "three thousand")
   becomes digits; a lone word under ten ("I have two kids") stays a word unless money, a
   percentage, a time or a date follows or precedes it, as smart formatting does;
   "3 point 5" becomes "3.5";
3. dates: a month and a day, the day in words or as an ordinal ("march third", "May 21st",
   "june twenty first") become "March 3rd", "May 21st", "June 21st";
4. money: "25 dollars", "25 dollars and 50 cents", "25.50 dollars" become "$25", "$25.50";
5. percentages: "15 percent" becomes "15%";
6. times: "3 30 p.m.", "3:30 pm", "7 am", "9 o'clock" become "3:30 PM", "7 AM", "9:00".

Everything else is left exactly as it was. Pure: regular expressions, no I/O.
"""

from __future__ import annotations

import re

__all__ = ["smart_format"]

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)

_DIGIT_WORD = {**{w: str(v) for w, v in _UNITS.items() if v < 10}, "oh": "0"}
_DIGITS = re.compile(
    r"\b(?:zero|one|two|three|four|five|six|seven|eight|nine)(?:[\s,-]+(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\b){2,}",
    re.IGNORECASE,
)
_NUMBER_WORD = "|".join([*_UNITS, *_TENS, *_SCALES])
_CARDINAL = re.compile(
    rf"\b(?:a\s+(?=hundred|thousand|million))?(?:{_NUMBER_WORD})(?:(?:[\s-]+(?:and\s+)?)(?:{_NUMBER_WORD}))*\b",
    re.IGNORECASE,
)
_CONTEXT_AFTER = re.compile(r"^\s*(?:dollars?|cents?|percent|point|o'clock|[ap]\.?\s?m\b\.?)", re.IGNORECASE)
_MERIDIEM_AFTER = re.compile(r"^\s*[ap]\.?\s?m\b", re.IGNORECASE)
_MONTH = "|".join(_MONTHS)
_CONTEXT_BEFORE = re.compile(rf"\b(?:{_MONTH}|point)\s*$", re.IGNORECASE)
_POINT = re.compile(r"\b(\d+) point (\d+)\b", re.IGNORECASE)
_ORDINAL_WORD = "|".join(_ORDINALS)
_DATE_WORDS = re.compile(
    rf"\b({_MONTH})\s+(?:the\s+)?(?:(twenty|thirty)[\s-]+)?({_ORDINAL_WORD})\b",
    re.IGNORECASE,
)
_DATE_DIGITS = re.compile(
    rf"\b({_MONTH})\s+(?:the\s+)?([1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\b(?!:|\s*[ap]\.?m\b)", re.IGNORECASE
)
_MONEY = re.compile(
    r"\$?\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?\s+dollars?(?:\s+and\s+(\d{1,2})\s+cents?)?\b", re.IGNORECASE
)
_PERCENT = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:percent|per cent)\b", re.IGNORECASE)
_TIME = re.compile(
    r"\b(1[0-2]|0?[1-9])(?::|\s)([0-5]\d)\s*([ap])\.?\s?m\b\.?|\b(1[0-2]|0?[1-9])\s*([ap])\.?\s?m\b\.?",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"\b(1[0-2]|0?[1-9])\s+o'clock\b", re.IGNORECASE)


def smart_format(text: str) -> str:
    """`text` with numbers, money, percentages, times and dates written as such (see the module doc)."""
    text = _DIGITS.sub(lambda m: "".join(_DIGIT_WORD[w.lower()] for w in re.findall(r"[a-z]+", m.group(0), re.I)), text)
    text = _DATE_WORDS.sub(_date_from_words, text)
    text = _CARDINAL.sub(_cardinal, text)
    text = _POINT.sub(r"\1.\2", text)
    text = _DATE_DIGITS.sub(lambda m: f"{m.group(1).capitalize()} {_ordinal(int(m.group(2)))}", text)
    text = _MONEY.sub(_money, text)
    text = _PERCENT.sub(r"\1%", text)
    text = _TIME.sub(_time, text)
    return _CLOCK.sub(r"\1:00", text)


def _words_value(words: list[str]) -> int | None:
    """The value of number words ("two hundred and five" -> 205); None when they do not parse."""
    total, current, seen = 0, 0, False
    for word in words:
        if word in ("and", "a"):
            current = current or (1 if word == "a" else 0)
            continue
        if word in _UNITS or word in _TENS:
            value = _UNITS.get(word, _TENS.get(word, 0))
            if current % 10 and value < 10 and current % 100 > 9 or (current % 100 and value >= 10):
                return None  # "twenty thirty", "five six": not one number
            current += value
        elif word == "hundred":
            current = (current or 1) * 100
        else:
            total += (current or 1) * _SCALES[word]
            current = 0
        seen = True
    return total + current if seen else None


def _cardinal(match: re.Match[str]) -> str:
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", match.group(0))]
    value = _words_value(words)
    if value is None:
        return _clock_words(match, words)
    lone = len([w for w in words if w not in ("and", "a")]) == 1 and value < 10
    if lone:
        after = match.string[match.end() :]
        before = match.string[: match.start()]
        if not (_CONTEXT_AFTER.match(after) or _CONTEXT_BEFORE.search(before)):
            return match.group(0)  # "I have two kids": a small number stays a word
    return str(value)


def _clock_words(match: re.Match[str], words: list[str]) -> str:
    """ "three thirty" before "p.m.": hour and minutes, which do not parse as one number."""
    if _MERIDIEM_AFTER.match(match.string[match.end() :]):
        for cut in range(1, len(words)):
            hour, minutes = _words_value(words[:cut]), _words_value(words[cut:])
            if hour is not None and minutes is not None and 1 <= hour <= 12 and 10 <= minutes <= 59:
                return f"{hour}:{minutes:02d}"
    return match.group(0)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _date_from_words(match: re.Match[str]) -> str:
    tens = _TENS.get((match.group(2) or "").lower(), 0)
    day = tens + _ORDINALS[match.group(3).lower()]
    if not 1 <= day <= 31:
        return match.group(0)
    return f"{match.group(1).capitalize()} {_ordinal(day)}"


def _money(match: re.Match[str]) -> str:
    dollars = match.group(1)
    cents = match.group(2) or (f"{int(match.group(3)):02d}" if match.group(3) else "")
    return f"${dollars}.{cents}" if cents else f"${dollars}"


def _time(match: re.Match[str]) -> str:
    if match.group(1):
        return f"{int(match.group(1))}:{match.group(2)} {match.group(3).upper()}M"
    return f"{int(match.group(4))} {match.group(5).upper()}M"
