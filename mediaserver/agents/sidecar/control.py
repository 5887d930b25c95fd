"""What SWAIG actions may do from a sidecar: the `AiControl` the tool runner applies them through.

Theory of operation: the SWAIG runner applies a function reply's actions in order through an
`AiControl`; for a sidecar that is this class. With `act_on_channel: false` every method is a
no-op (the engine still emits an `action` event with `executed: false`). Otherwise:
`set/unset_global_data` change the sidecar's global_data (the engine emits
`global_data_change` and persists it); `hangup` ends the call (stop reason `hung_up`); `stop`
stops the sidecar only (`stop_action`); SWML and `transfer` run through `run_swml`, the
kernel's running script (kernel/inline.py, wired by the app: an inline document runs beside the
script, a transfer makes the script continue in the document and ends the sidecar with
`transferred`); without one they are reported `executed: false`
(`swml_not_supported_in_sidecar`); `user_input` injects a user message
and forces a tick; `settings` may swap the model or sampling knobs. `say` is event-only: the
sidecar has no TTS handle. Step/context changes and hold mean nothing to an observer.

The control reaches its engine through `ControlledEngine`, the few things actions change
(engine.py's `SidecarEngine` is one, bound after construction), so this module sits below it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from mediaserver.pipeline.llm import LlmSettings

__all__ = ["ControlledEngine", "SidecarControl", "action_verdict"]


class ControlledEngine(Protocol):
    """What a sidecar's SWAIG actions change in its engine."""

    settings: LlmSettings  # the model and sampling knobs (`settings` action)

    @property
    def global_data(self) -> dict[str, Any]: ...
    def user_input(self, text: str) -> None:
        """A user message into the persistent history, then a tick."""
        ...

    def add_system_message(self, text: str) -> None: ...
    def change_global_data(self, updates: dict[str, Any], removed: list[str]) -> None: ...


def action_verdict(
    action: Any, act_on_channel: bool, permissions: dict[str, bool], *, can_run_swml: bool = False
) -> tuple[bool, str]:
    """Whether an action ran against the call, and why not (the `action` event's fields)."""
    names = set(action) if isinstance(action, dict) else set()
    if not act_on_channel:
        return False, "act_on_channel_false"
    if "say" in names:
        return False, "no_tts_in_sidecar"
    if names & {"SWML", "transfer"} and not permissions.get("swaig_allow_swml", True):
        return False, "swml_not_allowed"
    if names & {"SWML", "transfer"} and not can_run_swml:
        return False, "swml_not_supported_in_sidecar"
    if names & {"set_global_data", "unset_global_data"} and not permissions.get("swaig_set_global_data", True):
        return False, "swaig_set_global_data_false"
    if "settings" in names and not permissions.get("swaig_allow_settings", True):
        return False, "swaig_allow_settings_false"
    return True, ""


class SidecarControl:
    def __init__(
        self,
        act_on_channel: bool,
        *,
        hangup: Callable[[str], None],
        stop: Callable[[str], None],
        run_swml: Callable[[dict[str, Any], bool], bool] | None = None,
    ) -> None:
        self.act = act_on_channel
        self._hangup = hangup
        self._stop = stop
        self._run_swml = run_swml
        self.engine: ControlledEngine | None = None
        self.said: list[str] = []

    def say(self, text: str) -> None:
        self.said.append(text)  # no TTS in sidecar mode: the action event says executed=false

    def hangup(self, reason: str = "") -> None:
        if self.act:
            self._hangup(reason or "swaig")

    def stop(self) -> None:
        if self.act:
            self._stop("stop_action")

    def add_user_input(self, text: str) -> None:
        if self.act and self.engine is not None:
            self.engine.user_input(text)

    def add_system_message(self, text: str) -> None:
        if self.act and self.engine is not None:
            self.engine.add_system_message(text)

    def set_global_data(self, data: dict[str, Any]) -> None:
        if self.act and self.engine is not None:
            self.engine.change_global_data(dict(data), [])

    def unset_global_data(self, keys: list[str]) -> None:
        if self.act and self.engine is not None:
            self.engine.change_global_data({}, list(keys))

    def global_data(self) -> dict[str, Any]:
        return self.engine.global_data if self.engine is not None else {}

    def toggle_functions(self, changes: list[dict[str, Any]]) -> None:
        pass  # the SWAIG runner's function set already changed (LocalState)

    def update_settings(self, settings: dict[str, Any]) -> None:
        if not self.act or self.engine is None:
            return
        inner = settings.get("settings")
        knobs: dict[str, Any] = inner if isinstance(inner, dict) else settings
        engine = self.engine
        model = knobs.get("model") or knobs.get("ai_model")
        if isinstance(model, str) and model:
            engine.settings = replace(engine.settings, model=model)
        numbers: dict[str, Any] = {}
        for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
            value = knobs.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                numbers[name] = float(value)
        if numbers:
            engine.settings = replace(engine.settings, **numbers)

    @property
    def can_run_swml(self) -> bool:
        return self._run_swml is not None

    def swml(self, document: dict[str, Any], transfer: bool) -> None:
        # Without a runner (an embedder that wires none) the action is reported with
        # executed=false and the sidecar goes on; a transfer the kernel refuses (a bad document)
        # is logged on the call and the sidecar goes on too.
        if not self.act or self._run_swml is None:
            return
        if self._run_swml(document, transfer) and transfer:
            self._stop("transferred")

    def change_context(self, name: str) -> None:
        pass

    def change_step(self, name: str) -> None:
        pass

    def hold(self, timeout_s: int, music: str = "", on_end: Callable[[str], None] | None = None) -> None:
        pass

    # An observer has no audio, recognizer or voice of its own: these actions mean nothing here.
    def wait_for_user(self, mode: bool | int) -> None:
        pass

    def play_background(self, file: str, wait: bool = False) -> None:
        pass

    def stop_background(self) -> None:
        pass

    def add_hints(self, hints: list[Any]) -> None:
        pass

    def clear_hints(self) -> None:
        pass

    def change_voice(self, voice: str) -> None:
        pass

    def user_event(self, event: Any) -> None:
        pass

    def defer(self, apply: Callable[[], None]) -> None:
        apply()  # post_process: the sidecar speaks no answer to wait for

    def user_turns(self) -> int:
        return 0  # the engine calls the runner's begin_turn() itself, once per tick
