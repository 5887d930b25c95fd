"""Tool-loop guards: keep a model from running away on tools (seed 002, "Anti-loop guards").

Theory of operation: `ToolGuards` counts the tool calls of one LLM turn (the runner's
`begin_turn()` resets it when the caller speaks) and, before any dispatch, says whether a call
may run:

- more than `max_calls` (4) calls in a turn: answer the canned "already looked up" text and
  bail (`tool_loop`);
- the same (name, arguments) as the previous call: the first repeat is answered "DUPLICATE: …"
  without reaching the webhook; the third identical call in a row bails (`tool_loop`);
- a name that is not a tool the model may call now (phantom): answered with the list of valid
  names so the model can correct itself; the third phantom in a turn bails.

A bail means the model gets the canned reply and the runner tells the session (`bailed`), so
the turn ends with speech rather than another tool call. Arguments compare as parsed JSON
(key order and spacing do not make a call "new").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

__all__ = ["GuardVerdict", "ToolGuards", "Verdict"]

LOOP_REPLY = "You have already looked up this information. Use the prior results to craft your answer."
DUPLICATE_REPLY = (
    "DUPLICATE: you already called this tool with these arguments earlier in this turn. "
    "Use that result instead of calling it again."
)


class Verdict(Enum):
    RUN = "run"
    DUPLICATE = "duplicate"
    PHANTOM = "phantom"
    BAIL = "bail"


@dataclass(frozen=True)
class GuardVerdict:
    verdict: Verdict
    response: str = ""
    reason: str = ""  # "tool_loop" | "phantom_tool" when bailing


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments or "{}"), sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):  # not JSON, an int of > 4300 digits, nested too deeply
        return arguments.strip()


class ToolGuards:
    def __init__(self, max_calls: int = 4, max_repeats: int = 3, max_phantoms: int = 3) -> None:
        self.max_calls = max_calls
        self.max_repeats = max_repeats
        self.max_phantoms = max_phantoms
        self.begin_turn()

    def begin_turn(self) -> None:
        self.calls = 0
        self.phantoms = 0
        self.last: tuple[str, str] | None = None
        self.repeats = 0

    def check(self, name: str, arguments: str, valid_names: list[str]) -> GuardVerdict:
        self.calls += 1
        if name not in valid_names:
            self.phantoms += 1
            if self.phantoms >= self.max_phantoms:
                return GuardVerdict(Verdict.BAIL, LOOP_REPLY, "phantom_tool")
            listing = ", ".join(valid_names) or "none"
            return GuardVerdict(
                Verdict.PHANTOM, f"'{name}' is not a valid tool. Available tools: {listing}. Retry with one of these."
            )
        if self.calls > self.max_calls:
            return GuardVerdict(Verdict.BAIL, LOOP_REPLY, "tool_loop")
        key = (name, _canonical(arguments))
        if key == self.last:
            self.repeats += 1
            if self.repeats + 1 >= self.max_repeats:
                return GuardVerdict(Verdict.BAIL, LOOP_REPLY, "tool_loop")
            return GuardVerdict(Verdict.DUPLICATE, DUPLICATE_REPLY)
        self.last, self.repeats = key, 0
        return GuardVerdict(Verdict.RUN)
