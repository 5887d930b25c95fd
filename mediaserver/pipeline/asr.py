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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from mediaserver.audio.frame import Pcm

__all__ = ["HintRule", "Recognition", "SpeechRecognizer", "apply_hint_rules", "hotwords_text", "parse_hints"]


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
