"""Text-to-speech: the engine Protocol, its chunk type, and the text clean-up every engine needs.

Theory of operation: an engine turns text into a stream of `TtsChunk`s, one per sentence, each
mono int16 PCM at the engine's own `sample_rate` (resampling to the call's rate happens once,
downstream, at the codec boundary). `synthesize` is blocking and is run by the kernel in a
bounded thread executor; it yields each sentence as soon as it is produced, so the first
sentence plays while later ones are still being synthesized (Piper: ~15-25 ms per word).

Text from an LLM or a SWML `say:` is not speakable as-is: `normalize_text` strips markup
(SSML/HTML tags, markdown emphasis, links, bullets), expands abbreviations that would otherwise
end a sentence ("Dr." -> "Doctor", since espeak splits at the dot), and spells out money and
dashed digit groups that espeak reads badly (COSTS.md §1: "$45.99", "555-0123").
`split_sentences` cuts normalized text where the engine would, so each chunk carries its text.
Pure: regular expressions only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from mediaserver.audio.frame import Pcm

__all__ = ["TtsChunk", "TtsEngine", "normalize_text", "split_sentences"]


@dataclass(frozen=True, slots=True)
class TtsChunk:
    pcm: Pcm  # mono int16
    sample_rate: int
    text: str  # the sentence this audio speaks (after normalization)

    @property
    def duration_ms(self) -> float:
        return 1000.0 * len(self.pcm) / self.sample_rate


class TtsEngine(Protocol):
    sample_rate: int

    def synthesize(self, text: str) -> Iterator[TtsChunk]:
        """Blocking; yields one chunk per sentence, as soon as each is synthesized."""
        ...


# ---- normalization ---------------------------------------------------------------------------

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
_LATIN = [(re.compile(r"\be\.g\.(?=[\s,]|$)", re.IGNORECASE), "for example"),
          (re.compile(r"\bi\.e\.(?=[\s,]|$)", re.IGNORECASE), "that is")]  # fmt: skip

_TAG = re.compile(r"<[^<>]{1,200}>")  # SSML/HTML tags; the bound avoids eating "a < b > c" prose
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")  # markdown [text](url) -> text
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|`+|~~)")
_LINE_MARK = re.compile(r"^\s*(?:#{1,6}\s+|[-*+•]\s+|>\s*)", re.MULTILINE)  # headings, bullets, quotes
_MONEY = re.compile(r"\$(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?\b")
_DASHED_DIGITS = re.compile(r"\b\d{3,}(?:-\d{2,})+\b")  # phone-like 555-0123, 800-555-0199
_SPACES = re.compile(r"[ \t]+")
# Boundaries: after . ! ? (and a closing quote or bracket) plus whitespace, but not after an
# ellipsis ("well... maybe" is one sentence); and at every line break (list items, headings).
_SENTENCE_END = re.compile(r"(?<!\.\.)(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+|\s*\n\s*")


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


def split_sentences(text: str) -> list[str]:
    """Cut normalized text after . ! ? followed by space (not after an ellipsis), and at line breaks."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def _say_money(match: re.Match[str]) -> str:
    dollars = int(match.group(1).replace(",", ""))
    words = f"{dollars} dollar{'' if dollars == 1 else 's'}"
    cents = int(match.group(2) or 0)
    if cents:
        words += f" and {cents} cent{'' if cents == 1 else 's'}"
    return words


def _say_digits(match: re.Match[str]) -> str:
    # "555-0123" -> "5 5 5, 0 1 2 3": digit by digit, a short pause between groups.
    return ", ".join(" ".join(group) for group in match.group(0).split("-"))
