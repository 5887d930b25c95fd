"""What SWAIG asks the AI session to do to the LLM's view of the conversation, as plain values.

Theory of operation: the SWAIG runner decides (a function answered `replace_in_history`, a step
or context was entered); only the session holds the history. So the runner queues one op per
decision and the session takes them (`ToolRunner.take_history_ops()`) when it next builds an
LLM request, and at once on a step or context change so that the tool loop's next round
already carries them. The ops, with the platform semantics each one stands for:

- `ReplacePair(tool_call_id, value)`: `replace_in_history` (SDK `FunctionResult`): after the
  pair's first send, `True` drops the tool call and its result from the history, a string
  replaces the call with an assistant message holding that text. A gather_info answer
  (`gather_submit`) is dropped the same way (contract §7: kept out of the LLM history).
- `StepEntered(left, left_block, mode)`: a step was entered; `mode` is the step's (or its
  context's) `history`: `keep` (the left step's instructions stay, as a system message),
  `default` (only the new step's instructions: the system prompt is rebuilt), `hide` (the prior
  dialogue leaves the model's view; `${step_history.<step>.summary}` / `${step_history.prev…}`
  bring back what the new step's text asks for).
- `ResetHistory(...)`: a context was entered with `isolated` or the entry parameters of a
  `context_switch` (SDK `Context.set_isolated/consolidate/full_reset/system_prompt/
  user_prompt`, or the leaving step's `reset`): `wipe` hides everything before the switch,
  `consolidate` puts one summary message in its place, `system_prompt` is injected as a system
  message (with `full_reset` it replaces the base prompt instead: the runner does that, since it
  composes the system prompt), `user_prompt` is added as a user message.

The pure helpers below work on any list of OpenAI-style messages with the `Conversation`
mutators (`remove`, `updated`): `replace_pair` edits in place, `summary_of` composes the text a
consolidation or a hidden step leaves behind (from the turns themselves: no LLM call, so a
switch never waits on a model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from mediaserver.swaig.templates import is_true

__all__ = [
    "EditableHistory",
    "HistoryOp",
    "ReplacePair",
    "ResetHistory",
    "StepEntered",
    "replace_pair",
    "replacement_of",
    "summary_of",
]

HistoryMode = Literal["keep", "default", "hide"]


@dataclass(frozen=True, slots=True)
class ReplacePair:
    tool_call_id: str
    value: bool | str  # True: drop the pair; text: the assistant message that replaces it


@dataclass(frozen=True, slots=True)
class StepEntered:
    left: str  # the step left ("" when there was none)
    left_block: str  # its instructions as the model saw them (kept with history "keep")
    mode: HistoryMode = "default"


@dataclass(frozen=True, slots=True)
class ResetHistory:
    wipe: bool = False  # isolated / full_reset: nothing before the switch stays in view
    consolidate: bool = False  # a summary of what came before stays instead
    system_prompt: str = ""  # injected as a system message ("" or replaced by the runner: none)
    user_prompt: str = ""


HistoryOp = ReplacePair | StepEntered | ResetHistory


class EditableHistory(Protocol):
    """The session's `Conversation` as these helpers use it (a list that reports its changes)."""

    def __iter__(self) -> Any: ...
    def remove(self, entry: dict[str, Any]) -> None: ...
    def updated(self, entry: dict[str, Any]) -> None: ...


def _remove(history: EditableHistory, entry: dict[str, Any]) -> None:
    # Conversation.remove compares by equality; two equal entries are interchangeable anyway.
    history.remove(entry)


def replacement_of(actions: Any) -> bool | str | None:
    """The `replace_in_history` of a reply's action list (the last one wins): text, True, or None."""
    found: bool | str | None = None
    for item in actions if isinstance(actions, list) else [actions]:
        if isinstance(item, dict) and "replace_in_history" in item:
            value = item["replace_in_history"]
            if isinstance(value, str) and value.strip().lower() not in ("true", "false", ""):
                found = value
            else:
                found = is_true(value) or None
    return found


def replace_pair(history: EditableHistory, tool_call_id: str, value: bool | str) -> bool:
    """Apply `replace_in_history` to the pair of `tool_call_id`; False when the pair is not there.

    The call leaves its assistant message (the message goes when it has no other call and no
    text, or becomes the replacement text); its tool result goes.
    """
    entries = list(history)
    call_entry = next((e for e in entries if any(c.get("id") == tool_call_id for c in _calls(e))), None)
    result = next((e for e in entries if e.get("role") == "tool" and e.get("tool_call_id") == tool_call_id), None)
    if call_entry is None and result is None:
        return False
    if result is not None:
        _remove(history, result)
    if call_entry is not None:
        others = [c for c in _calls(call_entry) if c.get("id") != tool_call_id]
        if isinstance(value, str) and value:
            call_entry.pop("tool_calls", None)
            call_entry["content"] = value
            if others:  # the other calls of the same message keep their own message
                call_entry["tool_calls"] = others
            history.updated(call_entry)
        elif others:
            call_entry["tool_calls"] = others
            history.updated(call_entry)
        elif call_entry.get("content"):
            call_entry.pop("tool_calls", None)
            history.updated(call_entry)
        else:
            _remove(history, call_entry)
    return True


def _calls(entry: dict[str, Any]) -> list[dict[str, Any]]:
    calls = entry.get("tool_calls") if entry.get("role") == "assistant" else None
    return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []


def summary_of(entries: Sequence[dict[str, Any]]) -> str:
    """The caller's and the agent's words, one line each ("" when nobody said anything)."""
    lines = []
    for entry in entries:
        content = entry.get("content")
        if not isinstance(content, str) or not content.strip():
            continue
        if entry.get("role") == "user":
            lines.append(f"Caller: {content.strip()}")
        elif entry.get("role") == "assistant":
            lines.append(f"Agent: {content.strip()}")
    return "\n".join(lines)
