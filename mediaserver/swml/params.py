"""Params of the control and voice verbs: checked once at load, with the JSON path of each field.

Theory of operation: `document.py` validates the verb list shape; this module holds one small
validator per verb that checks its params against the schema (signalwire SDK 3.7.5
`schema.json`, SWML_CONTRACT §1) and returns a canonical form the interpreter can run without
re-checking: nested verb lists (`cond.then`, `switch.case`, `execute.on_return`) become
`list[Verb]`, `unset` becomes a list, `cond` becomes `CondBranch`es. Simple verbs use a field
table (`_FIELDS`: name -> kind) so that adding a verb is adding a row. Every number or boolean
field also accepts a SWML expression string (`${…}`), resolved when the verb runs.

Verb lists are loaded through the `LoadVerbs` callback that `document.py` passes in, so this
module does not import the document model (no cycle) and nested paths read like
`sections.main[2].cond[0].then[1].play.url`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mediaserver.swml.errors import SwmlError

LoadVerbs = Callable[[Any, str], list[Any]]
Validator = Callable[[Any, str], Any]

_EXPRESSION = re.compile(r"^[$%]\{.*\}$", re.DOTALL)
_DIGITS = re.compile(r"^[0-9*#A-DwW]+$")


@dataclass(frozen=True, slots=True)
class CondBranch:
    """One `cond` entry: run `then` when `when` is truthy (no `when`: the else branch)."""

    when: str | None
    then: list[Any]
    otherwise: list[Any] | None = None  # CondReg's own `else`
    path: str = ""


@dataclass(frozen=True, slots=True)
class SwitchSpec:
    variable: str | None  # None in execute.result: switch on return_value
    cases: dict[str, list[Any]]
    default: list[Any] | None
    path: str = ""


def _is_expr(value: Any) -> bool:
    return isinstance(value, str) and _EXPRESSION.match(value) is not None


def check_object(params: Any, path: str, allowed: frozenset[str] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise SwmlError(path, "expected an object")
    if allowed is not None:
        for key in params:
            if key not in allowed:
                raise SwmlError(f"{path}.{key}", "unknown parameter")
    return dict(params)


def check_field(kind: Any, value: Any, path: str) -> None:
    """kind: 'str' 'int' 'num' 'bool' 'obj' 'any' 'strs', or a tuple of allowed strings."""
    if isinstance(kind, tuple):
        if value not in kind:
            raise SwmlError(path, f"expected one of {', '.join(map(str, kind))}, got {value!r}")
        return
    if kind == "any":
        return
    if kind == "str":
        ok = isinstance(value, str)
    elif kind in ("int", "num", "bool") and _is_expr(value):
        ok = True
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "num":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "obj":
        ok = isinstance(value, dict)
    elif kind == "strs":
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
    else:  # pragma: no cover - a typo in the tables below
        raise AssertionError(kind)
    if not ok:
        names = {
            "str": "a string",
            "int": "an integer",
            "num": "a number",
            "bool": "a boolean",
            "obj": "an object",
            "strs": "a list of strings",
        }
        raise SwmlError(path, f"expected {names[kind]}")


def _fields(table: dict[str, Any], required: frozenset[str] = frozenset()) -> Callable[[Any, str], dict[str, Any]]:
    allowed = frozenset(table)

    def validate(params: Any, path: str) -> dict[str, Any]:
        checked = check_object(params, path, allowed)
        for key in sorted(required - set(checked)):
            raise SwmlError(path, f"missing required parameter {key!r}")
        for key, value in checked.items():
            check_field(table[key], value, f"{path}.{key}")
        return checked

    return validate


_RECORD = {
    "stereo": "bool",
    "format": ("wav", "mp3", "mp4"),
    "direction": ("speak", "listen"),
    "terminators": "str",
    "beep": "bool",
    "input_sensitivity": "num",
    "initial_timeout": "num",
    "end_silence_timeout": "num",
    "max_length": "num",
    "status_url": "str",
}
_RECORD_CALL = {**_RECORD, "direction": ("speak", "listen", "both"), "control_id": "str"}
_PROMPT = {
    "play": "any",
    "volume": "num",
    "say_voice": "str",
    "say_language": "str",
    "say_gender": "str",
    "max_digits": "int",
    "terminators": "str",
    "digit_timeout": "num",
    "initial_timeout": "num",
    "speech_timeout": "num",
    "speech_end_timeout": "num",
    "speech_language": "str",
    "speech_hints": "strs",
    "speech_engine": "str",
    "status_url": "str",
}
_DETECT = {
    "detect_message_end": "bool",
    "detectors": "str",
    "end_silence_timeout": "num",
    "initial_timeout": "num",
    "machine_ready_timeout": "num",
    "machine_voice_threshold": "num",
    "machine_words_threshold": "int",
    "status_url": "str",
    "timeout": "num",
    "tone": ("CED", "CNG"),
    "wait": "bool",
}
_REQUEST = {
    "url": "str",
    "method": ("GET", "POST", "PUT", "DELETE"),
    "headers": "obj",
    "body": "any",
    "timeout": "num",
    "connect_timeout": "num",
    "save_variables": "bool",
}


def build_validators(load_verbs: LoadVerbs) -> dict[str, Validator]:
    """The validators of the verbs this module knows, bound to the document's verb loader."""

    def verbs(value: Any, path: str) -> list[Any]:
        return load_verbs(value, path)

    def cond_list(value: Any, path: str) -> list[CondBranch]:
        if not isinstance(value, list) or not value:
            raise SwmlError(path, "expected a non-empty list of {when, then} / {else} objects")
        branches = []
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            entry = check_object(item, where, frozenset({"when", "then", "else"}))
            if "when" in entry:
                check_field("str", entry["when"], f"{where}.when")
                if "then" not in entry:
                    raise SwmlError(where, "missing 'then'")
                otherwise = verbs(entry["else"], f"{where}.else") if "else" in entry else None
                branches.append(CondBranch(entry["when"], verbs(entry["then"], f"{where}.then"), otherwise, where))
            elif "else" in entry:
                if "then" in entry:
                    raise SwmlError(f"{where}.then", "'then' needs a 'when'")
                branches.append(CondBranch(None, verbs(entry["else"], f"{where}.else"), None, where))
            else:
                raise SwmlError(where, "expected 'when' with 'then', or 'else'")
        return branches

    def switch_spec(value: Any, path: str, need_variable: bool) -> SwitchSpec:
        spec = check_object(value, path, frozenset({"variable", "case", "default"}))
        if need_variable and "variable" not in spec:
            raise SwmlError(path, "missing required parameter 'variable'")
        if "variable" in spec:
            check_field("str", spec["variable"], f"{path}.variable")
        if "case" not in spec:
            raise SwmlError(path, "missing required parameter 'case'")
        cases = check_object(spec["case"], f"{path}.case", None)
        return SwitchSpec(
            variable=spec.get("variable"),
            cases={str(key): verbs(items, f"{path}.case.{key}") for key, items in cases.items()},
            default=verbs(spec["default"], f"{path}.default") if "default" in spec else None,
            path=path,
        )

    def execute(params: Any, path: str) -> dict[str, Any]:
        checked = _fields(
            {"dest": "str", "params": "obj", "meta": "obj", "on_return": "any", "result": "any"}, frozenset({"dest"})
        )(params, path)
        if "on_return" in checked:
            checked["on_return"] = verbs(checked["on_return"], f"{path}.on_return")
        if "result" in checked:
            result = checked["result"]
            if isinstance(result, list):
                checked["result"] = cond_list(result, f"{path}.result")
            else:
                checked["result"] = switch_spec(result, f"{path}.result", need_variable=False)
        return checked

    def goto(params: Any, path: str) -> dict[str, Any]:
        checked = _fields({"label": "str", "when": "str", "max": "int"}, frozenset({"label"}))(params, path)
        limit = checked.get("max", 100)
        if not _is_expr(limit) and not 1 <= limit <= 100:
            raise SwmlError(f"{path}.max", f"expected an integer from 1 to 100, got {limit}")
        return checked

    def unset(params: Any, path: str) -> list[str]:
        if isinstance(params, str):
            return [params]
        check_field("strs", params, path)
        return list(params)

    def set_(params: Any, path: str) -> dict[str, Any]:
        return check_object(params, path, None)

    def send_digits(params: Any, path: str) -> dict[str, Any]:
        checked = _fields({"digits": "str"}, frozenset({"digits"}))(params, path)
        if not _is_expr(checked["digits"]) and not _DIGITS.match(checked["digits"]):
            raise SwmlError(f"{path}.digits", "expected DTMF digits 0-9 * # A-D, W (1 s pause) or w (0.5 s)")
        return checked

    def prompt(params: Any, path: str) -> dict[str, Any]:
        checked = _fields(_PROMPT, frozenset({"play"}))(params, path)
        play = checked["play"]
        if not (isinstance(play, str) or (isinstance(play, list) and play and all(isinstance(u, str) for u in play))):
            raise SwmlError(f"{path}.play", "expected a play URL or a non-empty list of play URLs")
        return checked

    def connect(params: Any, path: str) -> dict[str, Any]:
        checked = check_object(params, path, None)
        if not any(key in checked for key in ("to", "serial", "parallel", "serial_parallel")):
            raise SwmlError(path, "missing 'to' (or 'serial', 'parallel', 'serial_parallel')")
        if "to" in checked:
            check_field("str", checked["to"], f"{path}.to")
        for key in ("timeout", "max_duration", "session_timeout"):
            if key in checked:
                check_field("int", checked[key], f"{path}.{key}")
        if "from" in checked:
            check_field("str", checked["from"], f"{path}.from")
        return checked

    return {
        "cond": cond_list,
        "switch": lambda params, path: switch_spec(params, path, need_variable=True),
        "execute": execute,
        "transfer": _fields({"dest": "str", "params": "obj", "meta": "obj"}, frozenset({"dest"})),
        "goto": goto,
        "set": set_,
        "unset": unset,
        "request": _fields(_REQUEST, frozenset({"url", "method"})),
        "prompt": prompt,
        "record": _fields(_RECORD),
        "record_call": _fields(_RECORD_CALL),
        "stop_record_call": _fields({"control_id": "str"}),
        "send_digits": send_digits,
        "sip_refer": _fields(
            {"to_uri": "str", "status_url": "str", "username": "str", "password": "str"}, frozenset({"to_uri"})
        ),
        "user_event": _fields({"event": "obj"}, frozenset({"event"})),
        "denoise": _fields({}),
        "stop_denoise": _fields({}),
        "detect_machine": _fields(_DETECT),
        "connect": connect,
        "tap": _fields(
            {
                "uri": "str",
                "control_id": "str",
                "direction": ("speak", "listen", "both"),
                "codec": ("PCMU", "PCMA"),
                "rtp_ptime": "int",
                "status_url": "str",
            },
            frozenset({"uri"}),
        ),
        "stop_tap": _fields({"control_id": "str"}),
    }
