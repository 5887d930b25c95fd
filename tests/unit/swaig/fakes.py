"""A recording fake of the AI session's `AiControl` (the public Protocol SWAIG acts through)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class FakeControl:
    def __init__(self, global_data: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._global = dict(global_data or {})
        self.history: list[dict[str, Any]] = []  # the conversation, as far as a test builds one
        self.deferred: list[Callable[[], None]] = []
        self.hold_music = ""
        self.hold_end: Callable[[str], None] | None = None

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

    def hold(self, timeout_s: int, music: str = "", on_end: Callable[[str], None] | None = None) -> None:
        self._rec("hold", timeout_s)
        self.hold_music, self.hold_end = music, on_end

    def wait_for_user(self, mode: bool | int) -> None:
        self._rec("wait_for_user", mode)

    def play_background(self, file: str, wait: bool = False) -> None:
        self._rec("play_background", (file, wait))

    def stop_background(self) -> None:
        self._rec("stop_background")

    def add_hints(self, hints: list[Any]) -> None:
        self._rec("add_hints", hints)

    def clear_hints(self) -> None:
        self._rec("clear_hints")

    def change_voice(self, voice: str) -> None:
        self._rec("change_voice", voice)

    def user_event(self, event: Any) -> None:
        self._rec("user_event", event)

    def defer(self, apply: Callable[[], None]) -> None:
        """post_process: kept until the test says the reply was spoken (`spoken()`)."""
        self._rec("defer")
        self.deferred.append(apply)

    def spoken(self) -> None:
        deferred, self.deferred = self.deferred, []
        for apply in deferred:
            apply()
