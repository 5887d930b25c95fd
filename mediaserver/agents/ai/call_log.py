"""The `ai` session's record of the call: what webhook, hook and post-prompt bodies report.

Theory of operation: `CallRecorder` listens to the session's `Conversation` (the LLM history,
kernel/agent.py) and stamps each entry with the wall-clock time it was added (epoch µs, the
platform's unit). From that it answers:

- `call_log()`: the conversation as the LLM holds it now (after barge-in cuts, removed pairs,
  resets), the system prompt first, each entry with its `timestamp`; a preemptive reply may run
  a tool before the caller's turn enters the history, so the session passes those words as
  `pending_user`;
- `raw_call_log()`: every entry ever added, in order, never removed (an entry cut by a
  barge-in shows what was heard), plus the lines that never reach the LLM (fillers spoken while
  a function runs, role `assistant-manual`, as the platform logs them);
- `response_times()`: the post-prompt `times`, one entry per agent response: its text, word
  count and `answer_time` (seconds from the caller's turn, or from the AI start, to the
  response entering the conversation);
- `dates_us()`: `call_start_date`, `call_answer_date`, `ai_start_date`, `ai_end_date`,
  `call_end_date`. The server has no separate call-start clock for an AI verb, so the call
  dates are the recorder's creation (when the verb began, the call already answered); the end
  dates are set by `ended()` (call_end_date only when the call ended with the AI).

Listeners run synchronously, possibly inside the media tick: `_on_event` only copies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mediaserver.kernel.agent import AgentEvent, Conversation

__all__ = ["CallRecorder"]

Entry = dict[str, Any]


class CallRecorder:
    def __init__(self, history: Conversation, now_us: Callable[[], int], system_prompt: Callable[[], str]) -> None:
        self.history = history
        self.now_us = now_us
        self.system_prompt = system_prompt
        self.started_us = now_us()
        self.ended_us = 0
        self.call_ended = False
        self._stamps: dict[int, int] = {}  # id(live entry) -> when it was added
        self._raw: list[Entry] = []
        self._raw_live: dict[int, Entry] = {}  # id(live entry) -> its raw copy (updated in place)
        self._pending_seen: tuple[str | None, int] = (None, 0)
        for entry in history:  # params.convo: seeded before the AI started
            self._added(id(entry), dict(entry), self.started_us)
        history.subscribe(self._on_event)

    def _added(self, key: int, entry: Entry, at: int) -> None:
        self._stamps[key] = at
        raw = {**entry, "timestamp": at}
        self._raw.append(raw)
        self._raw_live[key] = raw

    def _on_event(self, event: AgentEvent) -> None:
        if event.kind == "added":
            self._added(event.key, event.entry, self.now_us())
        elif event.kind == "updated" and event.key in self._raw_live:
            self._raw_live[event.key].update(event.entry)
        elif event.kind == "removed":  # stays in the raw log; the key may be reused by a new entry
            self._stamps.pop(event.key, None)
            self._raw_live.pop(event.key, None)

    def note(self, role: str, content: str) -> None:
        """A line said outside the LLM's conversation (a filler): raw log only."""
        self._raw.append({"role": role, "content": content, "timestamp": self.now_us()})

    def ended(self, call_over: bool) -> None:
        """The AI ended (`call_over`: the call too, else call_end_date stays out)."""
        if not self.ended_us:
            self.ended_us = self.now_us()
            self.call_ended = call_over

    def _system(self) -> list[Entry]:
        prompt = self.system_prompt()
        return [{"role": "system", "content": prompt, "timestamp": self.started_us}] if prompt else []

    def _pending(self, text: str | None) -> list[Entry]:
        if text is None:
            return []
        if self._pending_seen[0] != text:  # one stamp per pending turn: both logs agree
            self._pending_seen = (text, self.now_us())
        return [{"role": "user", "content": text, "timestamp": self._pending_seen[1]}]

    def call_log(self, pending_user: str | None = None) -> list[Entry]:
        """`pending_user`: the caller's words a preemptive reply answers before the turn is committed."""
        stamped = [{**entry, "timestamp": self._stamps.get(id(entry), self.started_us)} for entry in self.history]
        return self._system() + stamped + self._pending(pending_user)

    def raw_call_log(self, pending_user: str | None = None) -> list[Entry]:
        return self._system() + [dict(entry) for entry in self._raw] + self._pending(pending_user)

    def response_times(self) -> list[dict[str, Any]]:
        times = []
        asked = self.started_us
        for entry in self._raw:
            role, content = entry.get("role"), entry.get("content")
            if role == "user":
                asked = int(entry["timestamp"])
            elif role == "assistant" and isinstance(content, str) and content.strip():
                times.append(
                    {
                        "response": content,
                        "response_word_count": len(content.split()),
                        "answer_time": round(max(0, int(entry["timestamp"]) - asked) / 1e6, 3),
                    }
                )
        return times

    def dates_us(self) -> dict[str, int]:
        dates = {
            "call_start_date": self.started_us,
            "call_answer_date": self.started_us,
            "ai_start_date": self.started_us,
        }
        if self.ended_us:
            dates["ai_end_date"] = self.ended_us
        if self.call_ended:
            dates["call_end_date"] = self.ended_us
        return dates
