"""Params of the control and voice verbs: checked once at load, with the JSON path of each field.

Theory of operation: `document.py` validates the verb list shape; this module holds one small
validator per verb that checks its params against the schema (signalwire SDK 3.7.5
`schema.json`, docs/swml-contract.md §1) and returns a canonical form the interpreter can run without
re-checking: nested verb lists (`cond.then`, `switch.case`, `execute.on_return`) become
`list[Verb]`, `unset` becomes a list, `cond` becomes `CondBranch`es. Every bad field of a verb is
reported (`SwmlErrors`), not only the first. Simple verbs use a field
table (name -> kind, checked by `mediaserver.fields`) so that adding a verb is adding a row.
Every number or boolean field also accepts a SWML expression string (`${…}`), resolved when the
verb runs.

Verb lists are loaded through the `LoadVerbs` callback that `document.py` passes in, so this
module does not import the document model (no cycle) and nested paths read like
`sections.main[2].cond[0].then[1].play.url`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from mediaserver.fields import Field, FieldError, Table, check, check_value
from mediaserver.swml.errors import SwmlError, raise_all

LoadVerbs = Callable[[Any, str], list[Any]]
Validator = Callable[[Any, str], Any]

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


# The field kinds of the tables below; SWML words its messages without the bad value.
_KINDS: dict[str, Field] = {
    "any": Field("any"),
    "str": Field("str", expected="a string"),
    "int": Field("int", expected="an integer"),
    "num": Field("num", expected="a number"),
    "bool": Field("bool", expected="a boolean"),
    "obj": Field("obj", expected="an object"),
    "strs": Field("list", items=Field("str"), expected="a list of strings"),
}
_PLAIN = Table({}, noun="parameter", expr=True)


def _field(kind: Any) -> Field:
    """A kind of the tables below: a name from `_KINDS`, a tuple of allowed values, or a Field."""
    if isinstance(kind, Field):
        return kind
    if isinstance(kind, tuple):
        return Field("any", choices=kind, expr=False)
    return _KINDS[kind]


def _raise_errors(errors: list[FieldError]) -> None:
    """Raise every field error of one verb (one alone as a plain `SwmlError`)."""
    raise_all(
        [
            SwmlError(error.path, f"expected {error.expected}" if error.problem == "type" else error.message)
            for error in errors
        ]
    )


def check_object(params: Any, path: str, allowed: frozenset[str] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise SwmlError(path, "expected an object")
    table = Table(dict.fromkeys(allowed or (), _KINDS["any"]), "keep" if allowed is None else "reject", "parameter")
    values, errors = check(table, params, path)
    _raise_errors(errors)
    return values


def check_field(kind: Any, value: Any, path: str) -> None:
    """kind: 'str' 'int' 'num' 'bool' 'obj' 'any' 'strs', a tuple of allowed strings, or a Field."""
    _raise_errors(check_value(_field(kind), value, path, _PLAIN)[1])


def _fields(table: dict[str, Any], required: frozenset[str] = frozenset()) -> Callable[[Any, str], dict[str, Any]]:
    spec = Table(
        {key: replace(_field(kind), required=key in required) for key, kind in table.items()},
        noun="parameter",
        expr=True,
    )

    def validate(params: Any, path: str) -> dict[str, Any]:
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise SwmlError(path, "expected an object")
        values, errors = check(spec, params, path)
        _raise_errors(errors)
        return values

    return validate


def _digits(value: str) -> str | None:
    return None if _DIGITS.match(value) else "expected DTMF digits 0-9 * # A-D, W (1 s pause) or w (0.5 s)"


def _play(value: Any) -> str | None:
    if isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(u, str) for u in value)):
        return None
    return "expected a play URL or a non-empty list of play URLs"


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
    "play": Field("any", check=_play),
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

# Not a schema verb: the SDK's `FunctionResult.execute_rpc()` emits it inside SWML actions
# (document.SDK_VERBS). Checked so a typo is caught; it runs as `Unsupported` (logged, skipped).
_execute_rpc = _fields(
    {"method": "str", "call_id": "str", "node_id": "str", "params": "obj"},
    frozenset({"method"}),
)

_goto = _fields(
    {"label": "str", "when": "str", "max": Field("int", lo=1, hi=100, expected="an integer from 1 to 100")},
    frozenset({"label"}),
)
_send_digits = _fields({"digits": Field("str", check=_digits)}, frozenset({"digits"}))
_prompt = _fields(_PROMPT, frozenset({"play"}))
_CONNECT = Table(
    {
        "to": _KINDS["str"],
        "from": _KINDS["str"],
        **dict.fromkeys(("timeout", "max_duration", "session_timeout"), _KINDS["int"]),
    },
    unknown="keep",
    expr=True,
)


def _connect(params: dict[str, Any], path: str) -> dict[str, Any]:
    values, errors = check(_CONNECT, params, path)
    _raise_errors(errors)
    return values


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
        return _goto(params, path)

    def unset(params: Any, path: str) -> list[str]:
        if isinstance(params, str):
            return [params]
        check_field("strs", params, path)
        return list(params)

    def set_(params: Any, path: str) -> dict[str, Any]:
        return check_object(params, path, None)

    def send_digits(params: Any, path: str) -> dict[str, Any]:
        return _send_digits(params, path)

    def prompt(params: Any, path: str) -> dict[str, Any]:
        return _prompt(params, path)

    def connect(params: Any, path: str) -> dict[str, Any]:
        checked = check_object(params, path, None)
        if not any(key in checked for key in ("to", "serial", "parallel", "serial_parallel")):
            raise SwmlError(path, "missing 'to' (or 'serial', 'parallel', 'serial_parallel')")
        return _connect(checked, path)

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
        "execute_rpc": _execute_rpc,
    }
