"""SWAIG actions: apply a function reply's `action` list to the live conversation, in order.

Theory of operation: `apply_actions(actions, control, params, local)` walks the list (a single
object is accepted as a list of one) and, for each key of each item, calls `AiControl` (the AI
session) and the runner's own state (`LocalState`: the function set that `toggle_functions`
changes, the meta_data scopes, the contexts/steps engine). Contract §5 and seed 001 define the
actions; the table in `ACTIONS` says which are applied and how. Permission flags from
`ai.params` gate three groups: `swaig_allow_swml` (SWML, transfer), `swaig_allow_settings`
(settings and runtime ASR timing), `swaig_set_global_data` (set/unset_global_data); a denied
action is logged and skipped. Unknown action names (data_map_demo emits `start_playback`…) are
logged and ignored, never fatal; a malformed value (hold: "soon") is named in the log and
skipped. Nothing here raises for agent input.

With the reply's `post_process: true` the list is not applied now: `AiControl.defer` gets it and
the session applies it once the AI has spoken its answer to the tool result.

`context_switch` reaches a control that can reset the LLM's view (`SwitchesContext`: the AI
session, agents/ai/context_switch.py) as one normalized dict; any other control gets its prompts
as a system message and a user input. `ai.params.transfer_summary: true` makes every transfer
(`transfer`, `SWML` with transfer) ask for the summary, as the transfer action's `summarize` does.

The result says what happened (`applied`, `denied`, `ignored`, `deferred`) and carries
`replace_in_history` for the runner, which decides what the LLM history keeps.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from mediaserver.swaig.pom import render_pom
from mediaserver.swaig.seam import AiControl

__all__ = ["ACTIONS", "ActionReport", "LocalState", "SwitchesContext", "apply_actions", "parse_hold"]

log = logging.getLogger(__name__)

HOLD_DEFAULT_S = 300
HOLD_MAX_S = 900
TEMPERATURE_MAX = 1.5


class LocalState(Protocol):
    """The runner-side state some actions change (besides the AI session)."""

    def toggle(self, name: str, active: bool) -> bool: ...  # False: no such function
    def meta_set(self, data: dict[str, Any]) -> None: ...
    def meta_unset(self, keys: list[str] | None) -> None: ...  # None: clear the scope
    def step_changed(self, name: str) -> str | None: ...  # the step entered, or None if refused
    def context_changed(self, name: str) -> str | None: ...


@runtime_checkable
class SwitchesContext(Protocol):
    """A control that can reset the LLM's view for `context_switch` (the AI session does)."""

    # switch: {system_prompt, user_prompt, consolidate, full_reset}, the prompts as text
    def context_switch(self, switch: dict[str, Any]) -> None: ...


@dataclass
class ActionReport:
    applied: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    replace_in_history: bool | str | None = None
    ended: bool = False  # hangup, stop or a transfer: the AI session is over
    deferred: bool = False  # post_process: the actions wait for the AI's next reply to be spoken
    params: dict[str, Any] = field(default_factory=dict)  # the ai.params applied under (hold_music)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _flag(params: dict[str, Any], name: str) -> bool:
    return _truthy(params.get(name, True))


def parse_hold(value: Any) -> int:
    """Seconds of hold: int, "5m", "90s", "1:30", {timeout}; out of 1..900 → 300 (platform rule)."""
    if isinstance(value, dict):
        value = value.get("timeout", HOLD_DEFAULT_S)
    seconds: float
    if isinstance(value, bool):
        seconds = HOLD_DEFAULT_S
    elif isinstance(value, int | float):
        seconds = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if m := re.fullmatch(r"(\d+):(\d{1,2})", text):
            seconds = int(m[1]) * 60 + int(m[2])
        elif m := re.fullmatch(r"(\d+(?:\.\d+)?)\s*(h|m|s|ms)?", text):
            unit = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, None: 1}[m[2]]
            seconds = float(m[1]) * unit
        else:
            raise ValueError(f"hold: {value!r} is not a duration")
    else:
        raise ValueError(f"hold: {value!r} is not a duration")
    return int(seconds) if 0 < seconds <= HOLD_MAX_S else HOLD_DEFAULT_S


def _swml_document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, list):  # a bare verb list: the document's main section
        value = {"version": "1.0.0", "sections": {"main": value}}
    if not isinstance(value, dict):
        raise ValueError("SWML: expected a document object or its JSON text")
    if "sections" not in value:  # e.g. the SDK's execute_swml() of text that is not JSON: {raw_swml}
        raise ValueError(f"SWML: the document has no sections (keys: {', '.join(map(str, value)) or 'none'})")
    return value


def _transfer_document(dest: str, summarize: bool = False) -> dict[str, Any]:
    transfer: dict[str, Any] = {"dest": dest}
    if summarize:  # the AI session fills the variable in as it ends (agents/ai/swml_actions.py)
        transfer["params"] = {"transfer_summary": "${transfer_summary}"}
    return {"version": "1.0.0", "sections": {"main": [{"transfer": transfer}]}}


def _keys(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise ValueError(f"expected a key or a list of keys, got {type(value).__name__}")


def _settings(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("settings: expected an object")
    settings = dict(value)
    if isinstance(settings.get("temperature"), int | float) and settings["temperature"] > TEMPERATURE_MAX:
        settings["temperature"] = TEMPERATURE_MAX
    return settings


Handler = Callable[[Any, dict[str, Any], AiControl, LocalState | None, ActionReport], None]


def _a_swml(value: Any, item: dict[str, Any], c: AiControl, _: LocalState | None, r: ActionReport) -> None:
    # The control runs it on the call's script (kernel/inline.py): transfer ends the agent and the
    # script continues in the document; otherwise its verbs run now and the agent resumes.
    transfer = _truthy(item.get("transfer", False))
    document = _swml_document(value)
    if transfer and _truthy(r.params.get("transfer_summary", False)):
        c.update_settings({"transfer_summary": True})  # ai.params.transfer_summary: every transfer
    c.swml(document, transfer)
    r.ended = r.ended or transfer


def _a_transfer(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, r: ActionReport) -> None:
    dest = value.get("dest") if isinstance(value, dict) else value
    if not isinstance(dest, str) or not dest:
        raise ValueError("transfer: needs a destination")
    # `summarize` on the action wins; without it, ai.params.transfer_summary decides (contract §3.1)
    asked = value.get("summarize") if isinstance(value, dict) and "summarize" in value else None
    summarize = _truthy(asked if asked is not None else r.params.get("transfer_summary", False))
    if summarize:
        c.update_settings({"transfer_summary": True})
    c.swml(_transfer_document(dest, summarize), True)
    r.ended = True


def _a_hangup(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, r: ActionReport) -> None:
    if _truthy(value):
        c.hangup("swaig")
        r.ended = True


def _a_stop(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, r: ActionReport) -> None:
    if _truthy(value):
        c.stop()
        r.ended = True


def _a_hold(value: Any, _i: dict[str, Any], c: AiControl, s: LocalState | None, r: ActionReport) -> None:
    seconds = parse_hold(value)
    music = str(r.params.get("hold_music") or "")
    route = value.get("timeout_step") if isinstance(value, dict) else None
    on_end: Callable[[str], None] | None = None
    if isinstance(route, str) and route:
        # SDK hold(timeout_step=…): the move happens when the hold times out, not now.
        def on_end(reason: str) -> None:
            apply_actions([{"change_step": route}], c, r.params, s)

    c.hold(seconds, music, on_end)


def _a_say(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
    if not isinstance(value, str):
        raise ValueError("say: expected text")
    c.say(value)


def _a_set_global(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
    if not isinstance(value, dict):
        raise ValueError("set_global_data: expected an object")
    c.set_global_data(value)


def _a_unset_global(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
    if isinstance(value, dict):  # an object replaces the whole of global_data
        c.unset_global_data(list(c.global_data()))
        if value:
            c.set_global_data(value)
        return
    c.unset_global_data(_keys(value))


def _a_set_meta(value: Any, _i: dict[str, Any], _c: AiControl, s: LocalState | None, __: ActionReport) -> None:
    if not isinstance(value, dict):
        raise ValueError("set_meta_data: expected an object")
    if s is not None:
        s.meta_set(value)


def _a_unset_meta(value: Any, _i: dict[str, Any], _c: AiControl, s: LocalState | None, __: ActionReport) -> None:
    if s is not None:
        s.meta_unset(None if isinstance(value, dict) else _keys(value))


def _a_toggle(value: Any, _i: dict[str, Any], c: AiControl, s: LocalState | None, __: ActionReport) -> None:
    items = value if isinstance(value, list) else [value]
    changes = []
    for entry in items:
        if not isinstance(entry, dict) or "function" not in entry:
            raise ValueError("toggle_functions: each entry needs function and active")
        names = entry["function"] if isinstance(entry["function"], list) else [entry["function"]]
        active = _truthy(entry.get("active", True))
        for name in names:
            if s is not None and not s.toggle(str(name), active):
                log.info("toggle_functions: no function named %r", name)
            changes.append({"function": str(name), "active": active})
    c.toggle_functions(changes)


def _a_change_step(value: Any, _i: dict[str, Any], c: AiControl, s: LocalState | None, __: ActionReport) -> None:
    if not isinstance(value, str):
        raise ValueError("change_step: expected a step name")
    entered = s.step_changed(value) if s is not None else value
    if entered is not None:
        c.change_step(entered)


def _a_change_context(value: Any, _i: dict[str, Any], c: AiControl, s: LocalState | None, __: ActionReport) -> None:
    if not isinstance(value, str):
        raise ValueError("change_context: expected a context name")
    entered = s.context_changed(value) if s is not None else value
    if entered is not None:
        c.change_context(entered)


def _prompt_text(value: Any, params: dict[str, Any]) -> str:
    """A context_switch prompt: text as is, a POM (section list) rendered as the verb's prompt is."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list | dict):
        fmt = "xml" if params.get("pom_format") == "xml" else "markdown"
        return render_pom(value if isinstance(value, list) else [value], fmt, "context_switch")
    raise ValueError(f"context_switch: a prompt must be text or a POM, got {type(value).__name__}")


def _a_context_switch(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, r: ActionReport) -> None:
    spec = {"system_prompt": value} if isinstance(value, str) else value
    if not isinstance(spec, dict):
        raise ValueError("context_switch: expected text or an object")
    switch: dict[str, Any] = {
        "system_prompt": _prompt_text(spec.get("system_prompt") or spec.get("system_pom"), r.params),
        "user_prompt": _prompt_text(spec.get("user_prompt") or spec.get("user_pom"), r.params),
        "consolidate": _truthy(spec.get("consolidate", False)),
        "full_reset": _truthy(spec.get("full_reset", False)),
    }
    if not any(switch.values()):
        raise ValueError("context_switch: no prompt, consolidate or full_reset")
    if isinstance(c, SwitchesContext):  # the AI session: the LLM's view is reset as asked
        c.context_switch(switch)
        return
    # a control without history ops (the sidecar): the prompts join its conversation
    if switch["system_prompt"]:
        c.add_system_message(switch["system_prompt"])
    if switch["user_prompt"]:
        c.add_user_input(switch["user_prompt"])


def _a_user_input(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
    if not isinstance(value, str):
        raise ValueError("user_input: expected text")
    c.add_user_input(value)


def _a_wait_for_user(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
    if isinstance(value, str) and value.strip().lower() == "answer_first":
        c.wait_for_user(True)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        c.wait_for_user(int(value) if value > 0 else False)
    else:
        c.wait_for_user(_truthy(value))


def _a_playback_bg(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
    spec = {"file": value} if isinstance(value, str) else value
    if not isinstance(spec, dict) or not isinstance(spec.get("file"), str) or not spec["file"].strip():
        raise ValueError("playback_bg: expected a file name or {file, wait}")
    c.play_background(spec["file"].strip(), _truthy(spec.get("wait", False)))


def _a_stop_playback_bg(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
    if _truthy(value) or value == {}:
        c.stop_background()


def _a_add_hints(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
    hints = value if isinstance(value, list) else [value]
    if not all(isinstance(h, str | dict) for h in hints):
        raise ValueError("add_dynamic_hints: expected strings or {hint, pattern, replace} objects")
    c.add_hints(hints)


def _a_clear_hints(_v: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
    c.clear_hints()


def _a_change_voice(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("change_voice: expected engine.voice[:model]")
    c.change_voice(value.strip())


def _a_user_event(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
    # The user_event verb's shape is {event: {...}}; the action may carry either.
    if isinstance(value, dict) and set(value) == {"event"}:
        value = value["event"]
    c.user_event(value)


def _timing(name: str, least: int) -> Handler:
    """Runtime ASR timing (SDK set_end_of_speech_timeout / set_speech_event_timeout): ms, number or text."""

    def handler(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
        try:
            ms = int(float(value)) if not isinstance(value, bool) else None
        except (TypeError, ValueError, OverflowError):  # "soon", None, "inf"
            ms = None
        if ms is None or ms < least:
            raise ValueError(f"{name}: expected milliseconds >= {least}, got {value!r}")
        c.update_settings({name: ms})  # the turn manager takes it from the next frame on

    return handler


def _setting(name: str) -> Handler:
    def handler(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
        c.update_settings({name: value})

    return handler


def _a_settings(value: Any, _i: dict[str, Any], c: AiControl, _: LocalState | None, __: ActionReport) -> None:
    c.update_settings(_settings(value))


def _a_replace(value: Any, _i: dict[str, Any], _c: AiControl, _s: LocalState | None, r: ActionReport) -> None:
    r.replace_in_history = value if isinstance(value, str) else _truthy(value)


# name -> (handler, permission flag or None). The per-reply LLM flags (functions_on_speaker_timeout,
# extensive_data, back_to_back_functions) reach the session through update_settings under their
# own action name, as the runtime ASR timing does; the rest have an AiControl method each.
ACTIONS: dict[str, tuple[Handler, str | None]] = {
    "SWML": (_a_swml, "swaig_allow_swml"),
    "transfer": (_a_transfer, "swaig_allow_swml"),
    "hangup": (_a_hangup, None),
    "stop": (_a_stop, None),
    "hold": (_a_hold, None),
    "say": (_a_say, None),
    "set_global_data": (_a_set_global, "swaig_set_global_data"),
    "unset_global_data": (_a_unset_global, "swaig_set_global_data"),
    "set_meta_data": (_a_set_meta, None),
    "unset_meta_data": (_a_unset_meta, None),
    "toggle_functions": (_a_toggle, None),
    "change_step": (_a_change_step, None),
    "change_context": (_a_change_context, None),
    "context_switch": (_a_context_switch, None),
    "user_input": (_a_user_input, None),
    "settings": (_a_settings, "swaig_allow_settings"),
    "end_of_speech_timeout": (_timing("end_of_speech_timeout", 1), "swaig_allow_settings"),
    "speech_event_timeout": (_timing("speech_event_timeout", 0), "swaig_allow_settings"),
    "wait_for_user": (_a_wait_for_user, None),
    "playback_bg": (_a_playback_bg, None),
    "stop_playback_bg": (_a_stop_playback_bg, None),
    "functions_on_speaker_timeout": (_setting("functions_on_speaker_timeout"), None),
    "extensive_data": (_setting("extensive_data"), None),
    "back_to_back_functions": (_setting("back_to_back_functions"), None),
    "add_dynamic_hints": (_a_add_hints, None),
    "clear_dynamic_hints": (_a_clear_hints, None),
    "change_voice": (_a_change_voice, None),
    "user_event": (_a_user_event, None),
    "replace_in_history": (_a_replace, None),
}
# keys that qualify another key of the same item rather than being actions of their own
_MODIFIERS = {"SWML": ("transfer",)}


def apply_actions(
    actions: Any,
    control: AiControl,
    params: dict[str, Any],
    local: LocalState | None = None,
    *,
    post_process: Any = False,
) -> ActionReport:
    """Apply `actions` in order (see module docstring); never raises for agent input.

    With the reply's `post_process` true the whole list is handed to `control.defer` and
    applied once the AI has spoken its answer to the tool result (the SDK: "let the AI respond
    one more time, then execute actions"; say "please hold" before the hold lands).
    """
    report = ActionReport(params=params)
    if actions is None:
        return report
    if _truthy(post_process) and actions:
        control.defer(lambda: _log_report(apply_actions(actions, control, params, local)))
        report.deferred = True
        return report
    items = actions if isinstance(actions, list) else [actions]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            log.warning("action[%d]: expected an object, got %s; ignored", index, type(item).__name__)
            report.ignored.append(f"[{index}]")
            continue
        skip = {m for key, mods in _MODIFIERS.items() if key in item for m in mods}
        for name, value in item.items():
            if name in skip:
                continue
            entry = ACTIONS.get(name)
            if entry is None:
                log.info("action[%d].%s: unknown action, ignored", index, name)
                report.ignored.append(name)
                continue
            handler, flag = entry
            if flag is not None and not _flag(params, flag):
                log.warning("action[%d].%s: denied by params.%s=false", index, name, flag)
                report.denied.append(name)
                continue
            try:
                handler(value, item, control, local, report)
            # RecursionError: SWML text (or a POM) nested too deeply; OverflowError: int(1e999)
            except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as exc:
                log.warning("action[%d].%s: %s; skipped", index, name, exc)
                report.ignored.append(name)
                continue
            report.applied.append(name)
    return report


def _log_report(report: ActionReport) -> None:
    log.debug("deferred actions: applied %s, denied %s, ignored %s", report.applied, report.denied, report.ignored)
