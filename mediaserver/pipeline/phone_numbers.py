"""Phone numbers in the agent's speech, in the format SWML `tts_number_format` asks for.

Theory of operation: the schema's two formats are North American ones: "international"
`+12345678901` (E.164) and "national" `(234) 567-8901`. A number is one of ours when it has 10
digits, or 11 starting with the country code 1; other numbers (other countries, order numbers,
prices) are left exactly as they are.

The text reaches us in two shapes, so there are two rewrites:

* `format_phone_numbers(text, style)`: written text (a static greeting, a SWAIG `say`): each
  phone number in a usual written shape ("+1 (234) 567-8901", "234.567.8901", "2345678901") is
  rewritten in the asked format; `text.speakable` then reads it digit by digit.
* `respell_phone_numbers(spoken, style)`: text already made speakable (an LLM reply's clauses:
  `speakable` read "(234) 567-8901" as "2 3 4, 5 6 7, 8 9 0 1"): a run of single digits of a
  phone number's length is read again the way `speakable` reads the asked format, so the
  caller hears "plus 1 2 3 4 …" (international) or "2 3 4, 5 6 7, 8 9 0 1" (national).

Pure: regular expressions only.
"""

from __future__ import annotations

import re

from mediaserver.pipeline.text import speakable

__all__ = ["STYLES", "format_phone_numbers", "phone_digits", "respell_phone_numbers"]

STYLES = ("international", "national")

# Written: optional +1, optional ( ), separators - . or space between the 3-3-4 groups; or a bare run.
_WRITTEN = re.compile(
    r"(?<![\w+])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-]?)\d{3}[\s.-]?\d{4}(?![\w]|[.,]\d)"
    r"|(?<![\w+])\+1\d{10}(?!\w)"
)
# Spoken (speakable's output): "plus 1 2 3 …" or "2 3 4, 5 6 7, 8 9 0 1": single digits apart.
_SPELLED = re.compile(r"(?<![\w,])(?:plus,? )?\d(?:,? \d){9,10}(?![\w]|,? \d)")


def phone_digits(text: str) -> str | None:
    """The 10 national digits of a North American number written in `text`, or None."""
    digits = re.sub(r"\D", "", text)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10 or digits[0] in "01":  # an area code never starts with 0 or 1
        return None
    return digits


def _written(digits: str, style: str) -> str:
    if style == "national":
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return f"+1{digits}"


def format_phone_numbers(text: str, style: str) -> str:
    """Written phone numbers of `text` in `style` ("international" / "national"); others unchanged."""
    if style not in STYLES:
        return text

    def one(match: re.Match[str]) -> str:
        digits = phone_digits(match.group(0))
        return match.group(0) if digits is None else _written(digits, style)

    return _WRITTEN.sub(one, text)


def respell_phone_numbers(spoken: str, style: str) -> str:
    """Phone numbers already read digit by digit, read again as `style` is spoken."""
    if style not in STYLES:
        return spoken

    def one(match: re.Match[str]) -> str:
        digits = phone_digits(match.group(0))
        return match.group(0) if digits is None else speakable(_written(digits, style))

    return _SPELLED.sub(one, spoken)
