"""Semantic end of turn: has the caller finished, or only paused? (docs/design.md §4)

Theory of operation: a fixed silence (`end_of_speech_timeout`) ends a turn whether the caller
finished a sentence or stopped to think in the middle of one. Two cheap signals say which:

* `EndOfTurnDetector.probability(pcm16k)`: an audio model (smart-turn v3, `engines/smart_turn.py`)
  that hears intonation and rhythm in the caller's last 8 s (16 kHz mono int16, ending at the
  current sample, trailing silence included) and returns the probability that the turn is
  complete. Blocking (~0.1 s of one core): the session runs it in the engine executor.
* The recognizer's text: `text_signal(text)` is +1 when a transcript ends in sentence
  punctuation, -1 when it is clearly unfinished (a trailing conjunction, preposition, article or
  filler: "… and", "… for", "… the", "um"; or a trailing comma, dash or ellipsis), else 0.

`end_of_turn_probability(p, text)` combines them: sentence punctuation adds `PUNCTUATION_LOGIT`
to the model's log-odds (Whisper ends most segments with a period, even cut ones, so it is a
weak hint); clearly unfinished text vetoes (probability 0). The veto is deliberate: measured on
the turn benchmark's cut sentences (`python -m benchmarks.turns`), smart-turn gives 0.9 and more
to most mid-sentence pauses of synthetic voices ("I'd like to book an appointment for" ...),
so no log-odds shift small enough to leave real verdicts alone would hold those turns. The turn
manager (pure, `turn.py`) applies this to each verdict with the final transcript of the same
silence. Nothing here does I/O.
"""

from __future__ import annotations

import math
import re
from typing import Protocol

from mediaserver.audio.frame import Pcm

__all__ = [
    "COMPLETE_THRESHOLD",
    "EndOfTurnDetector",
    "PUNCTUATION_LOGIT",
    "UNFINISHED_WORDS",
    "WEAK_UNFINISHED_WORDS",
    "end_of_turn_probability",
    "is_unfinished",
    "text_signal",
]

COMPLETE_THRESHOLD = 0.5  # the model's own decision threshold (pipecat: probability > 0.5)
PUNCTUATION_LOGIT = 1.0


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A turn whose last word is one of these is not over, whatever punctuation the recognizer added
# (Whisper ends cut-off segments with a period too): conjunctions, the prepositions that need an
# object, articles, possessives and fillers. A question or exclamation mark still ends it.
UNFINISHED_WORDS = _words(
    """
    and or but nor because although though whereas unless than
    to for of with from into onto toward towards via
    the a an my your our their
    um uh er erm uhm
    """
)
# These end a turn only when no sentence punctuation follows ("so", "if", "is", "can", "this"…):
# "I think so." and "Yes it is." are finished.
WEAK_UNFINISHED_WORDS = _words(
    """
    so since while if that which who whom whose where when whether
    in on at by about as like between through over under after before without within during
    against per
    this these those his her its some any each every no
    is are was were be am i'm i've i'd i'll we're you're they're it's there's
    can could would should will shall must might may do does did have has had
    hmm mm
    """
)

_SENTENCE_END = re.compile(r"[.!?]['\")\]]*$")
_QUESTION_END = re.compile(r"[!?]['\")\]]*$")
_TRAILING_OPEN = re.compile(r"(\.\.\.|…|[,;:\-–—])['\")\]]*$")
_WORDS = re.compile(r"[\w'’]+")


class EndOfTurnDetector(Protocol):
    def probability(self, pcm: Pcm) -> float:
        """P(turn complete) for the caller's audio up to now (16 kHz int16, at most the last 8 s used)."""
        ...


def text_signal(text: str) -> int:
    """+1: ends a sentence; -1: clearly unfinished; 0: no opinion (empty, or a bare last word)."""
    text = text.strip()
    if not text:
        return 0
    if _TRAILING_OPEN.search(text):
        return -1
    words = _WORDS.findall(text.lower().replace("’", "'"))
    last = words[-1] if words else ""
    if _QUESTION_END.search(text):
        return 1
    if last in UNFINISHED_WORDS:
        return -1
    if _SENTENCE_END.search(text):
        return 1
    return -1 if last in WEAK_UNFINISHED_WORDS else 0


def is_unfinished(text: str) -> bool:
    return text_signal(text) < 0


def end_of_turn_probability(probability: float, text: str) -> float:
    """The detector's probability, moved by what the transcript says (see the module docstring)."""
    signal = text_signal(text)
    if signal < 0:
        return 0.0  # clearly unfinished: only more silence (the longer bound) ends this turn
    p = min(max(probability, 1e-6), 1.0 - 1e-6)
    logit = math.log(p / (1.0 - p))
    if signal > 0:
        logit += PUNCTUATION_LOGIT
    return 1.0 / (1.0 + math.exp(-logit))
