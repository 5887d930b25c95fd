"""Effects: what the SWML interpreter asks the call to do, and what the call answers.

Theory of operation: the interpreter never touches a call. Each `start()`/`resume()` returns one
`Effect`; the executor (kernel) carries it out against the call and then calls
`resume(result)` with an `EffectResult` (or None when the effect has nothing to report). Control
verbs (`label`, `return`, later `goto`/`cond`/`execute`...) never show up here: they run inside
the interpreter.

Every effect is a frozen dataclass built with keywords and carries `path`, the JSON path of the
verb that produced it, so the executor's logs and errors point into the document. Units are in
the names: milliseconds for durations, seconds only where SWML itself says seconds
(`answer.max_duration`), decibels for volume.

- `Answer`      answer the inbound leg (no-op if already answered).
- `Play`        play `items` in order; `auto_answer` answers first if the call is not up yet.
- `Sleep`       wait `duration_ms` (-1: until the call ends).
- `Hangup`      end the call with `reason` (hangup | busy | decline). The script is over.
- `Unsupported` a schema verb this runner does not execute yet: log it and resume.
- `Finished`    the script ran out of verbs (or `return`ed from main): the caller hangs up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mediaserver.swml.play_urls import PlayFile, PlayItem, PlayRing, PlaySay, PlaySilence

__all__ = [
    "Answer",
    "Effect",
    "EffectResult",
    "Finished",
    "Hangup",
    "Play",
    "PlayFile",
    "PlayItem",
    "PlayRing",
    "PlaySay",
    "PlaySilence",
    "Played",
    "Sleep",
    "Unsupported",
]

SLEEP_FOREVER_MS = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    path: str
    max_duration_s: int | None = None  # SWML default 14400 s applies when None
    codecs: str | None = None  # comma-separated offer order, e.g. "PCMU,PCMA"


@dataclass(frozen=True, slots=True, kw_only=True)
class Play:
    path: str
    items: tuple[PlayItem, ...]
    volume_db: float = 0.0
    auto_answer: bool = True
    status_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sleep:
    path: str
    duration_ms: int  # SLEEP_FOREVER_MS: until the call ends


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup:
    path: str
    reason: str = "hangup"


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsupported:
    path: str
    verb: str
    params: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Ai:
    """Run a voice agent (`ai`, or `amazon_bedrock` as a reduced `ai`) until it ends."""

    path: str
    verb: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    path: str  # the section that ran out, or the `return` that ended the script


Effect = Answer | Play | Sleep | Hangup | Ai | Unsupported | Finished

# Effects after which the script is over: resume() raises.
FINAL_EFFECTS: tuple[type[Hangup], type[Finished]] = (Hangup, Finished)


@dataclass(frozen=True, slots=True)
class AiFinished:
    """What an `ai` verb left behind: `ai_result` ("success" | "failed") and any variables to set."""

    result: str
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Played:
    """Result of `Play`: completed is False when barge-in, hangup or an error cut it short."""

    completed: bool


EffectResult = Played | AiFinished
