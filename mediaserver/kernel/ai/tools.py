"""The seam for SWAIG: what the AI session asks of function calling, and what actions may do.

Theory of operation: the types live in `mediaserver.swaig.seam` (below the kernel in the import
layers, so SWAIG can use them without importing the kernel) and are re-exported here, the
name the kernel uses. `StaticToolRunner` is a trivial in-process runner: a dict of Python
callables, each taking the parsed arguments and the `AiControl` and returning a `ToolOutcome`
(or a plain string). Tests use it, and the app falls back to it when no SWAIG runner is wired.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mediaserver.swaig.seam import AiControl, ToolInvocation, ToolOutcome, ToolRunner, ToolRunnerFactory

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


@dataclass
class StaticTool:
    name: str
    description: str
    function: ToolFunction
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    active: bool = True


class StaticToolRunner:
    def __init__(self, tools: list[StaticTool] | None = None) -> None:
        self.tools = {t.name: t for t in tools or []}
        self.invocations: list[ToolInvocation] = []

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
