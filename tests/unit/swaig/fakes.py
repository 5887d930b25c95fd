"""A recording fake of the AI session's `AiControl` (the public Protocol SWAIG acts through)."""

from __future__ import annotations

from typing import Any


class FakeControl:
    def __init__(self, global_data: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._global = dict(global_data or {})
        self.history: list[dict[str, Any]] = []  # the conversation, as far as a test builds one

    def _rec(self, name: str, value: Any = None) -> None:
        self.calls.append((name, value))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def say(self, text: str) -> None:
        self._rec("say", text)

    def hangup(self, reason: str = "") -> None:
        self._rec("hangup", reason)

    def stop(self) -> None:
        self._rec("stop")

    def add_user_input(self, text: str) -> None:
        self._rec("add_user_input", text)

    def add_system_message(self, text: str) -> None:
        self._rec("add_system_message", text)

    def set_global_data(self, data: dict[str, Any]) -> None:
        self._global.update(data)
        self._rec("set_global_data", dict(data))

    def unset_global_data(self, keys: list[str]) -> None:
        for key in keys:
            self._global.pop(key, None)
        self._rec("unset_global_data", list(keys))

    def global_data(self) -> dict[str, Any]:
        return dict(self._global)

    def user_turns(self) -> int:
        return sum(1 for entry in self.history if entry.get("role") == "user")

    def toggle_functions(self, changes: list[dict[str, Any]]) -> None:
        self._rec("toggle_functions", changes)

    def update_settings(self, settings: dict[str, Any]) -> None:
        self._rec("update_settings", settings)

    def swml(self, document: dict[str, Any], transfer: bool) -> None:
        self._rec("swml", (document, transfer))

    def change_context(self, name: str) -> None:
        self._rec("change_context", name)

    def change_step(self, name: str) -> None:
        self._rec("change_step", name)

    def hold(self, timeout_s: int) -> None:
        self._rec("hold", timeout_s)
