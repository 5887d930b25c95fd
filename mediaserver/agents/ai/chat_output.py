"""What a chat prints (chat.py): the agent's words, the caller's, each tool call, result and action.

Theory of operation: `ChatPrinter` writes one event per line, human (`agent: …`, `you: …`,
`  -> tool(args)`, `  <- tool: result`) or JSON (`--json`: `{"event": …, …}`). The agent's
clauses, as `TextVoice` speaks them, are joined into one `agent` line that is printed before any
other event and when the agent goes quiet (`flush`), so a reply cut for speech reads as said.
`ObservedTools` wraps the SWAIG runner without changing it: it prints each `tool_call` (its
arguments), each `tool_result` (the response and the actions returned), one `action` line per
SWAIG action, and the post-prompt `summary` as the session hands it to the runner to deliver.
`PrintedEvents` is the call's event sink: the call events that show an action's effect or a
failure (`SHOWN_EVENTS`) are printed as they are logged.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, TextIO

from mediaserver.agents.ai.chat_media import Activity
from mediaserver.agents.ai.tools import AiControl, ToolInvocation, ToolOutcome, ToolRunner
from mediaserver.events import CallEvent
from mediaserver.kernel.fetch import public_url
from mediaserver.swaig.history_ops import HistoryOp

__all__ = ["SHOWN_EVENTS", "ChatPrinter", "ObservedTools", "PrintedEvents"]

# The session's call events shown in a chat: the effects of SWAIG actions and the failures.
SHOWN_EVENTS = frozenset(
    {
        "ai_change_step",
        "ai_change_context",
        "ai_toggle_functions",
        "ai_settings_updated",
        "ai_hold",
        "ai_hold_ended",
        "ai_wait_for_user",
        "ai_voice_changed",
        "ai_voice_refused",
        "ai_hints_changed",
        "ai_background_started",
        "ai_actions_deferred",
        "ai_failure",
        "ai_config_warning",
        "ai_language_changed",
        "ai_hard_stop",
        "tool_failed",
        "hangup_requested",
        "user_event",
        "verb_unsupported",
    }
)


class ChatPrinter:
    """Prints chat events as they happen: human lines, or one JSON object per line (`as_json`).

    The agent's clauses are joined into one `agent` line, printed before any other event and
    when the agent goes quiet (`flush`)."""

    def __init__(self, out: TextIO, *, as_json: bool = False, echo_user: bool = True) -> None:
        self.out = out
        self.as_json = as_json
        self.echo_user = echo_user  # False: the caller's lines are on the terminal already, as typed
        self._speech: list[str] = []

    def speech(self, text: str) -> None:
        if text.strip():
            self._speech.append(text.strip())

    def flush(self) -> None:
        if self._speech:
            text, self._speech = " ".join(self._speech), []
            self._write({"event": "agent", "text": text})

    def emit(self, event: dict[str, Any]) -> None:
        self.flush()
        if event["event"] != "user" or self.echo_user or self.as_json:
            self._write(event)

    def _write(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, default=str) if self.as_json else _human(event)
        print(line, file=self.out, flush=True)


def _human(event: dict[str, Any]) -> str:
    kind = event["event"]
    if kind == "agent":
        return f"agent: {event['text']}"
    if kind == "user":
        return f"you: {event['text']}"
    if kind == "tool_call":
        return f"  -> {event['name']}({json.dumps(event['arguments'])})"
    if kind == "tool_result":
        return f"  <- {event['name']}: {event['response']}"
    if kind == "action":
        return f"  action {event['action']}: {json.dumps(event['value'], default=str)}"
    if kind == "summary":
        delivered = f" (to {event['url']})" if event.get("url") else ""
        return f"summary{delivered}: {event['text']}"
    if kind == "start":
        return f"chat {event['call_id']} with {event['source']} (/quit or end of input to hang up)"
    if kind == "end":
        return f"ended: {event['result']}"
    fields = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in event.items() if k not in ("event", "ts"))
    return f"  [{kind}] {fields}".rstrip()


class ObservedTools(ToolRunner):
    """The SWAIG runner, unchanged, with each call, result, action and the summary printed."""

    def __init__(self, inner: ToolRunner, printer: ChatPrinter, activity: Activity, post_prompt_url: str) -> None:
        self.inner = inner
        self.printer = printer
        self.activity = activity
        self.post_prompt_url = post_prompt_url

    @property
    def swaig_log(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.inner.swaig_log

    def tool_definitions(self) -> list[dict[str, Any]]:
        return self.inner.tool_definitions()

    async def invoke(self, invocation: ToolInvocation, control: AiControl) -> ToolOutcome:
        try:
            arguments: Any = json.loads(invocation.arguments or "{}")
        except json.JSONDecodeError:
            arguments = invocation.arguments  # shown as sent; the runner answers the model about it
        self.activity.tools += 1
        try:
            for _ in range(5):  # a function filler queued just before the call is said first, as on a call
                await asyncio.sleep(0)
            self.printer.emit(
                {"event": "tool_call", "id": invocation.id, "name": invocation.name, "arguments": arguments}
            )
            outcome = await self.inner.invoke(invocation, control)
        finally:
            self.activity.tools -= 1
        self.printer.emit(
            {"event": "tool_result", "name": invocation.name, "response": outcome.response, "actions": outcome.actions}
        )
        for action in outcome.actions:
            for name, value in action.items() if isinstance(action, dict) else ():
                self.printer.emit({"event": "action", "function": invocation.name, "action": name, "value": value})
        return outcome

    async def start(self, control: AiControl) -> None:
        self.activity.tools += 1  # SWAIG includes and startup_hook: the agent's first turn waits for them
        try:
            await self.inner.start(control)
        finally:
            self.activity.tools -= 1

    async def finish(
        self, global_data: dict[str, Any], summary: str | None = None, history: list[dict[str, Any]] | None = None
    ) -> None:
        if summary is not None:
            url = public_url(self.post_prompt_url) if self.post_prompt_url else ""
            self.printer.emit({"event": "summary", "text": summary, "url": url.split("?")[0]})
        await self.inner.finish(global_data, summary, history)

    def begin_turn(self) -> None:
        self.inner.begin_turn()

    def system_prompt(self, base: str) -> str:
        return self.inner.system_prompt(base)

    def take_history_ops(self) -> list[HistoryOp]:
        return self.inner.take_history_ops()

    def turn_done(self) -> bool:
        return self.inner.turn_done()

    async def close(self) -> None:
        await self.inner.close()


class PrintedEvents:
    """The call's event sink: the events that show an action's effect are printed (SHOWN_EVENTS)."""

    def __init__(self, printer: ChatPrinter) -> None:
        self.printer = printer

    def publish_call_event(self, call_id: str, event: CallEvent, entry: dict[str, Any]) -> None:
        if event.EVENT in SHOWN_EVENTS:
            self.printer.emit({k: v for k, v in entry.items() if k != "ts"})
