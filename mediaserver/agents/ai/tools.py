"""The seam for SWAIG: what the AI session asks of function calling, and what actions may do.

Theory of operation: the types live in `mediaserver.swaig.seam` (below the kernel in the import
layers, so SWAIG can use them without importing the kernel) and are re-exported here, the
name the kernel uses. `StaticToolRunner` is a trivial in-process runner: a dict of Python
callables, each taking the parsed arguments and the `AiControl` and returning a `ToolOutcome`
(or a plain string). Tests use it, and the app falls back to it when no SWAIG runner is wired.

The kernel's `ToolRunner` is the seam's plus the lifecycle the AI session and the sidecar use:
`start` (SWAIG includes and startup_hook), `finish` (hangup_hook, post-prompt summary),
`begin_turn` (loop guards reset per caller turn), `system_prompt` (contexts/steps add the
current step), `take_history_ops` (replace_in_history, step/context history changes),
`turn_done` (per-step flags after each agent turn), `swaig_log` (what each webhook answered)
and `close`. Its methods have no-op defaults: a runner that subclasses it (`StaticToolRunner`)
gets them; the SWAIG runner implements them all. The AI session and the sidecar take this one,
so nothing probes a runner for its lifecycle.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mediaserver.swaig.history_ops import HistoryOp
from mediaserver.swaig.seam import AiControl, ToolInvocation, ToolOutcome, ToolRunnerFactory
from mediaserver.swaig.seam import ToolRunner as SeamToolRunner

__all__ = [
    "AiControl",
    "StaticTool",
    "StaticToolRunner",
    "ToolInvocation",
    "ToolOutcome",
    "ToolRunner",
    "ToolRunnerFactory",
]

ToolFunction = Callable[[dict[str, Any], AiControl], "ToolOutcome | str | Awaitable[ToolOutcome | str]"]


class ToolRunner(SeamToolRunner, Protocol):
    """A tool runner with the session lifecycle (see the module doc); the bodies are the defaults."""

    swaig_log: list[dict[str, Any]]

    async def start(self, control: AiControl) -> None:
        """Before the first turn."""
        return None

    async def finish(
        self, global_data: dict[str, Any], summary: str | None = None, history: list[dict[str, Any]] | None = None
    ) -> None:
        """When the agent ends, even after the caller hung up."""
        return None

    def begin_turn(self) -> None:
        """A new caller turn (or sidecar tick) begins."""
        return None

    def system_prompt(self, base: str) -> str:
        """The system prompt to send, from the verb's `base` prompt."""
        return base

    def take_history_ops(self) -> list[HistoryOp]:
        """What to do to the LLM history since the last call (replace_in_history, step moves)."""
        return []

    def turn_done(self) -> bool:
        """The agent ended a turn; True: it speaks again without waiting for the caller."""
        return False

    async def close(self) -> None:
        """Release what the runner owns (an HTTP session)."""
        return None


@dataclass
class StaticTool:
    name: str
    description: str
    function: ToolFunction
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    active: bool = True


class StaticToolRunner(ToolRunner):
    def __init__(self, tools: list[StaticTool] | None = None) -> None:
        self.tools = {t.name: t for t in tools or []}
        self.invocations: list[ToolInvocation] = []
        self.swaig_log: list[dict[str, Any]] = []

    def tool_definitions(self) -> list[dict[str, Any]]:
        return [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in self.tools.values()
            if t.active
        ]

    async def invoke(self, invocation: ToolInvocation, control: AiControl) -> ToolOutcome:
        self.invocations.append(invocation)
        tool = self.tools.get(invocation.name)
        if tool is None or not tool.active:
            raise LookupError(f"no active function named {invocation.name!r}")
        try:
            args = json.loads(invocation.arguments or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"arguments of {invocation.name} are not JSON: {exc}") from None
        result = tool.function(args if isinstance(args, dict) else {}, control)
        if isinstance(result, Awaitable):
            result = await result
        return result if isinstance(result, ToolOutcome) else ToolOutcome(response=str(result))
