"""Speech recognition: the recognizer Protocol, its result, and SWML `hints`.

Theory of operation: a `SpeechRecognizer` turns one utterance (16 kHz mono int16, the whole
buffer so far) into text plus a confidence in 0..1 (the exponential of the decoder's average
token log-probability). It is blocking, holds one model per process, and is called by the kernel
from a worker thread, repeatedly on a growing buffer for partials and once more for the final;
implementations therefore keep no per-call state. `prompt` is earlier context (e.g. the agent's
last question) and `hotwords` are words to favour; both only bias decoding.

SWML `ai.hints` (contract §3) is a list of strings (words to favour) and of mappings
`{hint, pattern, replace, ignore_case=false}`: `hint` is favoured too, and `pattern` (a regular
expression) -> `replace` rewrites transcripts (e.g. "cue bit" -> "Qubit"). `parse_hints`
validates and splits them once per session; `apply_hint_rules` runs on every transcript.

`PartialBudget` caps partial passes (never finals) by the load, for all calls together: a token
bucket of `per_s` passes a second (up to `burst` saved), at most `max_in_flight` at once. One
caller speaking gets every partial at a 400 ms cadence (2.5 a second); twelve share the same
2.5, so each gets one every ~5 s, and the CPU partials take stays bounded however many callers
speak (docs/costs.md §7: partials every 500 ms would cost more than the finals and TTS together).
A skipped partial is not retried: the next one, or the final, hears the same audio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from mediaserver.audio.frame import Pcm
from mediaserver.clock import NS_PER_S, Clock

__all__ = [
    "HintRule",
    "PartialBudget",
    "Recognition",
    "SpeechRecognizer",
    "apply_hint_rules",
    "hotwords_text",
    "parse_hints",
]


@dataclass(frozen=True, slots=True)
class Recognition:
    text: str
    confidence: float  # 0..1, exp(average token log-probability)


class SpeechRecognizer(Protocol):
    sample_rate: int  # 16000

    def transcribe(self, pcm: Pcm, *, prompt: str | None = None, hotwords: str | None = None) -> Recognition: ...


@dataclass(frozen=True, slots=True)
class HintRule:
    pattern: str  # a regular expression
    replace: str  # re.sub replacement (\1 backreferences allowed)
    ignore_case: bool = False


def parse_hints(hints: list[str | dict[str, Any]]) -> tuple[list[str], list[HintRule]]:
    """SWML ai.hints -> (words to favour, rewrite rules). Raises ValueError naming the bad entry."""
    if not isinstance(hints, list):
        raise ValueError(f"hints must be a list, got {type(hints).__name__}")
    words: list[str] = []
    rules: list[HintRule] = []
    for index, hint in enumerate(hints):
        if isinstance(hint, str):
            if hint.strip():
                words.append(hint.strip())
            continue
        if not isinstance(hint, dict):
            raise ValueError(f"hints[{index}]: expected a string or a mapping, got {hint!r}")
        word = hint.get("hint")
        if word is not None:
            if not isinstance(word, str):
                raise ValueError(f"hints[{index}].hint must be a string, got {word!r}")
            if word.strip():
                words.append(word.strip())
        pattern, replace = hint.get("pattern"), hint.get("replace")
        if pattern is None and replace is None:
            if word is None:
                raise ValueError(f"hints[{index}]: needs 'hint' or 'pattern' and 'replace', got {hint!r}")
            continue
        if not isinstance(pattern, str) or not isinstance(replace, str):
            raise ValueError(f"hints[{index}]: 'pattern' and 'replace' must both be strings, got {hint!r}")
        ignore_case = bool(hint.get("ignore_case", False))
        try:
            re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        except re.error as error:
            raise ValueError(f"hints[{index}].pattern {pattern!r} is not a valid regular expression: {error}") from None
        rules.append(HintRule(pattern=pattern, replace=replace, ignore_case=ignore_case))
    return words, rules


def hotwords_text(words: list[str]) -> str | None:
    """Hint words as one `hotwords` string for the recognizer (None when there are none)."""
    return ", ".join(words) if words else None


def apply_hint_rules(text: str, rules: list[HintRule]) -> str:
    for rule in rules:
        text = re.sub(rule.pattern, rule.replace, text, flags=re.IGNORECASE if rule.ignore_case else 0)
    return text


class PartialBudget:
    """Partial ASR passes for the whole process: `try_start` before one, `done` after (see above).

    `per_s` 0 means no rate cap. Used from the event loop only; `clock` gives the time.
    """

    def __init__(self, clock: Clock, per_s: float = 0.0, *, burst: float = 2.0, max_in_flight: int = 1) -> None:
        if per_s < 0 or burst < 1 or max_in_flight < 1:
            raise ValueError(f"need per_s >= 0, burst >= 1, max_in_flight >= 1; got {per_s}, {burst}, {max_in_flight}")
        self._clock = clock
        self.per_s = per_s
        self.burst = burst
        self.max_in_flight = max_in_flight
        self._tokens = burst
        self._refilled_ns = clock.now_ns()
        self.in_flight = 0
        self.started = 0
        self.skipped = 0

    def try_start(self) -> bool:
        """True: run this partial (and call `done` after it); False: skip it, the budget is spent."""
        if self.per_s:
            now = self._clock.now_ns()
            self._tokens = min(self.burst, self._tokens + (now - self._refilled_ns) * self.per_s / NS_PER_S)
            self._refilled_ns = now
        if self.in_flight >= self.max_in_flight or (self.per_s and self._tokens < 1):
            self.skipped += 1
            return False
        if self.per_s:
            self._tokens -= 1
        self.in_flight += 1
        self.started += 1
        return True

    def done(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
