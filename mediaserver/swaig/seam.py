"""The seam between the AI loop (kernel) and SWAIG: tool calls in, outcomes and actions out.

Theory of operation: the AI session asks a `ToolRunner` for the OpenAI `tools` entries of the
functions active right now, and hands it every tool call the LLM makes as a `ToolInvocation`
(the raw JSON arguments, untouched). The runner answers with a `ToolOutcome`: the text the LLM
gets as the tool result (None: keep the call out of the LLM history) and the actions it
applied. Actions reach the live conversation only through `AiControl`, which the AI session
implements; SWAIG never touches the call directly.

These types are defined here, below the kernel in the import layers, so that the kernel's
`mediaserver.agents.ai.tools` can re-export them and both sides share one nominal
`ToolOutcome` (the kernel may import swaig; swaig may not import the kernel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["AiControl", "CallInfo", "ToolInvocation", "ToolOutcome", "ToolRunner", "ToolRunnerFactory"]


@dataclass(frozen=True)
class ToolInvocation:
    id: str
    name: str
    arguments: str  # raw JSON text from the LLM


@dataclass
class ToolOutcome:
    response: str | None
    actions: list[dict[str, Any]] = field(default_factory=list)


class AiControl(Protocol):
    """What SWAIG actions may do to the live conversation (the AI session implements it)."""

    def say(self, text: str) -> None: ...
    def hangup(self, reason: str = "") -> None: ...
    def stop(self) -> None: ...
    def add_user_input(self, text: str) -> None: ...
    def add_system_message(self, text: str) -> None: ...
    def set_global_data(self, data: dict[str, Any]) -> None: ...
    def unset_global_data(self, keys: list[str]) -> None: ...
    def global_data(self) -> dict[str, Any]: ...
    def toggle_functions(self, changes: list[dict[str, Any]]) -> None: ...
    def update_settings(self, settings: dict[str, Any]) -> None: ...
    def swml(self, document: dict[str, Any], transfer: bool) -> None: ...
    def change_context(self, name: str) -> None: ...
    def change_step(self, name: str) -> None: ...
    def hold(self, timeout_s: int, music: str = "", on_end: Callable[[str], None] | None = None) -> None:
        """Hold: caller speech ignored, `music` (a file or URL; "" = silence) looped, for
        `timeout_s`; then `on_end(reason)` (the SDK's timeout_step routing) and the AI resumes."""
        ...

    def wait_for_user(self, mode: bool | int) -> None:
        """True: say nothing more until the caller speaks; n: the same for at most n seconds;
        False: back to normal (attention prompts)."""
        ...

    def play_background(self, file: str, wait: bool = False) -> None:
        """Play `file` once under the conversation; `wait` suppresses attention prompts meanwhile."""
        ...

    def stop_background(self) -> None: ...
    def add_hints(self, hints: list[Any]) -> None:
        """SWML-style hints (words, or {hint, pattern, replace, ignore_case}) for the recognizer."""
        ...

    def clear_hints(self) -> None:
        """Drop the hints added at run time (the verb's own `hints` stay)."""
        ...

    def change_voice(self, voice: str) -> None:
        """`engine.voice[:model]` for the next utterance on; an unknown voice keeps the current one."""
        ...

    def user_event(self, event: Any) -> None:
        """Hand an application event to whoever watches the call (the event bus)."""
        ...

    def defer(self, apply: Callable[[], None]) -> None:
        """post_process: run `apply` once the reply now being generated has been spoken."""
        ...

    def user_turns(self) -> int:
        """How many caller turns the conversation holds: a change tells SWAIG a new turn began
        (its loop guards reset), for a session that does not call `begin_turn` itself."""
        ...


class ToolRunner(Protocol):
    def tool_definitions(self) -> list[dict[str, Any]]:
        """OpenAI `tools` entries for the currently active functions."""
        ...

    async def invoke(self, invocation: ToolInvocation, control: AiControl) -> ToolOutcome: ...


@dataclass(frozen=True)
class CallInfo:
    """What SWAIG needs to know about the call (the kernel's Call, reduced to plain values).

    `call_id` must be the id the SWML fetch used: the SDK mints its `__token`s for it.
    """

    call_id: str
    ai_session_id: str = ""
    caller_id_name: str = ""
    caller_id_num: str = ""
    direction: str = "inbound"
    project_id: str = ""
    space_id: str = ""
    call: dict[str, Any] = field(default_factory=dict)  # SWMLCall: the fetch body's `call` object
    vars: dict[str, Any] = field(default_factory=dict)  # SWMLVars


ToolRunnerFactory = Callable[..., ToolRunner]
