"""Text for speech: markup clean-up, numbers spoken naturally, `pronounce` rules, clause splitting.

Theory of operation: text from an LLM or a SWML `say:` is not speakable as-is, and espeak (Piper's
phonemizer) reads several common forms badly (docs/costs.md §1). Three pure steps, all regular
expressions, no I/O:

* `normalize_text` strips markup (SSML/HTML tags, markdown emphasis, links, bullets), expands
  title abbreviations whose dot would end a sentence ("Dr." -> "Doctor"), and spells out money
  and dashed digit groups ("$45.99", "555-0123").
* `speakable` = `normalize_text` plus what espeak gets wrong on its own: phone numbers in any
  usual shape are read digit by digit ("(555) 123-4567", "+1 555 123 4567", "5551234567" would
  otherwise be "five billion ..."), clock times ("10:05 pm" -> "10 oh 5 P M", "9:00" ->
  "9 o'clock"), slashed dates ("1/2/2024" -> "1 2 2024" instead of "one slash two slash ..."),
  "#5" -> "number 5". Numbers espeak already reads well ("1,200", "3.5", "50%", "3rd") are left
  alone. `speakable` is idempotent, so engines may apply it again to text already cleaned.
* `apply_pronounce` applies SWML `ai.pronounce` rules `[{replace, with, ignore_case=true}]`.
  `replace` is literal text, not a regular expression (callers write "A.I." or "SQL"); where it
  starts or ends with a word character it only matches whole words, so "AI" does not rewrite
  "said".

`ClauseSplitter` turns a stream of LLM tokens into clauses for TTS. Piper's time to first audio
grows with the length of the text it is given (one thread: "Sure," 43 ms, "Sure, I can help with
that." 127 ms), so the first `quick_stops` clauses (SWML `speech_gen_quick_stops`; 1 here, 3 for
the `ai` verb) are cut as early as sense allows: at , ; : once they have `first_min_words` words
(1 by default: a reply's "Sure," or "Okay," is heard while the rest is synthesized), and always at . ! ?;
later clauses are cut at sentence ends only (fewer, longer chunks sound more natural), or at
, ; : once a sentence runs past `max_words`. With 0 quick stops every clause is a sentence.
A boundary is only confirmed by the whitespace after it, so "3.5" arriving as "3." + "5" is
never cut, and neither is "Dr. Smith", "J. Smith" or "e.g. this" (abbreviations and initials),
nor an ellipsis.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["ClauseSplitter", "apply_pronounce", "normalize_text", "speakable"]

# ---- normalize_text (markup, abbreviations, money) -------------------------------------------

# Title abbreviations: expanded so the dot does not end the sentence. Kept small on purpose:
# ambiguous ones ("St." = Saint or Street) are left to the engine.
_ABBREVIATIONS = {
    "Dr": "Doctor",
    "Mr": "Mister",
    "Mrs": "Missus",
    "Ms": "Miz",
    "Prof": "Professor",
    "Jr": "Junior",
    "Sr": "Senior",
    "vs": "versus",
}
_ABBREVIATION = re.compile(r"\b(" + "|".join(_ABBREVIATIONS) + r")\.(?=\s|$)")
_LATIN = [
    (re.compile(r"\be\.g\.(?=[\s,]|$)", re.IGNORECASE), "for example"),
    (re.compile(r"\bi\.e\.(?=[\s,]|$)", re.IGNORECASE), "that is"),
]

_TAG = re.compile(r"<[^<>]{1,200}>")  # SSML/HTML tags; the bound avoids eating "a < b > c" prose
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")  # markdown [text](url) -> text
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|`+|~~)")
_LINE_MARK = re.compile(r"^\s*(?:#{1,6}\s+|[-*+•]\s+|>\s*)", re.MULTILINE)  # headings, bullets, quotes
_MONEY = re.compile(r"\$(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?\b")
_DASHED_DIGITS = re.compile(r"\b\d{3,}(?:-\d{2,})+\b")  # phone-like 555-0123, 800-555-0199
_SPACES = re.compile(r"[ \t]+")


def normalize_text(text: str) -> str:
    """Make LLM/SWML text speakable: no markup, no sentence-ending abbreviations."""
    text = _LINK.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    text = _LINE_MARK.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = text.replace("&", " and ")
    text = _ABBREVIATION.sub(lambda m: _ABBREVIATIONS[m.group(1)], text)
    for pattern, words in _LATIN:
        text = pattern.sub(words, text)
    text = _MONEY.sub(_say_money, text)
    text = _DASHED_DIGITS.sub(_say_digits, text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _say_money(match: re.Match[str]) -> str:
    dollars = int(match.group(1).replace(",", ""))
    words = f"{dollars} dollar{'' if dollars == 1 else 's'}"
    cents = int(match.group(2) or 0)
    if cents:
        words += f" and {cents} cent{'' if cents == 1 else 's'}"
    return words


def _say_digits(match: re.Match[str]) -> str:
    # "555-0123" -> "5 5 5, 0 1 2 3": digit by digit, a short pause between groups.
    return ", ".join(" ".join(group) for group in re.split(r"\D+", match.group(0)) if group)


# ---- speakable (numbers the way people say them) ----------------------------------------------

# Phone numbers: "+1 (555) 123-4567", "(555) 123-4567", "555.123.4567", "555 123 4567". The
# separators must be there (or the number is a bare run, below), so "1 2 3" prose is untouched.
_PHONE = re.compile(r"(?<![\w.,])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w.]\d|\d)")
_DIGIT_RUN = re.compile(r"(?<![\w.,$])\+?\d{7,}(?![\w.,]?\d)")  # 5551234567, +15551234567
# "p.m." keeps its final dot when it ends the sentence ("at 7 p.m." -> "at 7 P M.").
_TIME = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)(?:\s?([AaPp])\.?\s?[Mm]\b(?:\.(?=\s+[a-z]))?)?")
_AMPM = re.compile(r"\b(\d{1,2})\s?([AaPp])\.?[Mm]\b(?:\.(?=\s+[a-z]))?")
_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\b")
_NUMBER_SIGN = re.compile(r"#\s?(?=\d)")


def _say_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    plus = "plus " if text.startswith("+") else ""
    return plus + _say_digits(match)


def _say_run(match: re.Match[str]) -> str:
    digits = match.group(0).lstrip("+")
    plus = "plus " if match.group(0).startswith("+") else ""
    return plus + " ".join(digits)


def _say_time(match: re.Match[str]) -> str:
    hour, minute, half = match.group(1), int(match.group(2)), match.group(3)
    if minute == 0:
        spoken = f"{int(hour)} o'clock" if not half else str(int(hour))
    elif minute < 10:
        spoken = f"{int(hour)} oh {minute}"
    else:
        spoken = f"{int(hour)} {minute}"
    return f"{spoken} {half.upper()} M" if half else spoken


def speakable(text: str) -> str:
    """`normalize_text`, then phone numbers digit by digit, clock times, dates, '#5'."""
    text = _PHONE.sub(_say_phone, text)
    text = _DIGIT_RUN.sub(_say_run, text)
    text = _TIME.sub(_say_time, text)
    text = _AMPM.sub(lambda m: f"{m.group(1)} {m.group(2).upper()} M", text)
    text = _DATE.sub(lambda m: f"{m.group(1)} {m.group(2)} {m.group(3)}", text)
    text = _NUMBER_SIGN.sub("number ", text)
    return normalize_text(text)


# ---- pronounce -------------------------------------------------------------------------------


def apply_pronounce(text: str, rules: list[dict[str, Any]]) -> str:
    """Apply SWML `ai.pronounce` rules in order: literal `replace` -> `with`; ignore_case defaults to true."""
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise ValueError(f"pronounce[{index}]: expected a mapping with 'replace' and 'with', got {rule!r}")
        replace, spoken = rule.get("replace"), rule.get("with")
        if not isinstance(replace, str) or not replace or not isinstance(spoken, str):
            raise ValueError(f"pronounce[{index}]: 'replace' and 'with' must be strings, got {rule!r}")
        pattern = re.escape(replace)
        if re.match(r"\w", replace):
            pattern = r"(?<!\w)" + pattern
        if re.search(r"\w$", replace):
            pattern += r"(?!\w)"
        flags = re.IGNORECASE if rule.get("ignore_case", True) else 0
        text = re.sub(pattern, lambda _m, s=spoken: s, text, flags=flags)
    return text


# ---- clause splitting ------------------------------------------------------------------------

# Candidate boundaries; each is confirmed only by the whitespace that follows it.
_BOUNDARY = re.compile(r"(?P<end>[.!?]+)[\"'”’)\]]*(?=\s)|(?P<pause>[,;:—])[\"'”’)\]]*(?=\s)|(?P<line>\n)")
# A word before "." that does not end a sentence: titles, Latin, single-letter initials.
_NO_STOP = re.compile(
    r"(?:\b(?:" + "|".join(_ABBREVIATIONS) + r"|St|Mt|No|approx|e\.g|i\.e|a\.m|p\.m)|(?<![\w.])[A-Za-z])$",
    re.IGNORECASE,
)


class ClauseSplitter:
    """Streaming LLM tokens -> clauses for TTS (speakable text unless `normalize=False`)."""

    def __init__(
        self,
        *,
        first_min_words: int = 1,
        max_words: int = 30,
        pronounce: list[dict[str, Any]] | None = None,
        normalize: bool = True,
        quick_stops: int = 1,
    ) -> None:
        if first_min_words < 1 or max_words < first_min_words:
            raise ValueError(f"need 1 <= first_min_words <= max_words, got {first_min_words}, {max_words}")
        if quick_stops < 0:
            raise ValueError(f"quick_stops must be >= 0, got {quick_stops}")
        self._quick_stops = quick_stops
        self._first_min_words = first_min_words
        self._max_words = max_words
        self._pronounce = pronounce or []
        self._normalize = normalize
        self._buffer = ""
        self._emitted = 0  # clauses emitted so far; the first `quick_stops` are cut early

    def feed(self, token: str) -> list[str]:
        """Add a token; return the clauses it completed (often none)."""
        self._buffer += token
        out: list[str] = []
        while (cut := self._find_cut()) is not None:
            clause, self._buffer = self._buffer[:cut], self._buffer[cut:].lstrip()
            out.extend(self._finish(clause))
        return out

    def flush(self) -> str:
        """End of stream: whatever is left, as one clause ('' if nothing speakable is left)."""
        clause, self._buffer = self._buffer, ""
        return " ".join(self._finish(clause))

    def _find_cut(self) -> int | None:
        for match in _BOUNDARY.finditer(self._buffer):
            if match.group("line"):
                if self._buffer[: match.start()].strip():
                    return match.end()
                continue
            words_before = len(self._buffer[: match.start()].split())
            if match.group("end"):
                dots = match.group("end")
                before = self._buffer[: match.start()]
                if dots == "." and _NO_STOP.search(before):
                    continue  # "Dr. Smith", "J. Smith", "e.g. this"
                if dots.startswith(".."):
                    continue  # an ellipsis keeps the sentence going
                return match.end()
            limit = self._first_min_words if self._emitted < self._quick_stops else self._max_words
            if words_before >= limit:
                return match.end()
        return None

    def _finish(self, clause: str) -> list[str]:
        text = clause.strip()
        if self._pronounce:
            text = apply_pronounce(text, self._pronounce)
        if self._normalize:
            text = " ".join(speakable(text).split())
        if not text or not re.search(r"\w", text):
            return []
        self._emitted += 1
        return [text]
