"""The SWML document model: text in, validated `Document` out, or one `SwmlError` with a path.

Theory of operation: `load_document(text)` parses JSON (tried first when the text starts with
`{`) or YAML, then `document_from_data` walks the result once and builds `Verb`s. Every problem
raises `SwmlError(path, message)` where `path` is the JSON path of the offending value, e.g.
`sections.main[3].play.urls[1]: expected a string`, so a bad document fails at load with a
message its author can act on, never halfway through a call.

Shape (docs/swml-contract.md §2): an object with `sections` (an object of name -> list of verbs) that
must hold `main`; `version` is optional and other top-level keys are tolerated. A verb is a
single-key object `{verb: params}`, or a bare string (`"answer"`, `"hangup"`) meaning the verb
with empty params, as SignalWire accepts. Verb names must be one of the 39 schema verbs.

Params of the verbs this runner executes are validated through `_VALIDATORS` (one small
function per verb, so growing the runner is adding rows): answer, play, sleep, hangup, label
here; the control and voice verbs (cond, switch, execute, request, prompt, record…) in
`params.py`, which turns nested verb lists into `Verb`s with their own paths.
A validator returns the params in canonical form (`null` -> `{}`; `sleep: 500` ->
`{"duration": 500}`). Params of all other verbs are kept as written until their verb is built.
Number fields also accept a SWML expression string (`${...}` / `%{...}`, schema `SWMLVar`);
the interpreter resolves those, so the document model stays true to the schema.

Labels are resolved at load into `Document.labels[section][label] -> index`. Pure: stdlib + yaml.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from mediaserver.swml.errors import SwmlError
from mediaserver.swml.params import CondBranch, SwitchSpec, build_validators
from mediaserver.swml.play_urls import parse_play_url

__all__ = ["VERBS", "Document", "SwmlError", "Verb", "document_from_data", "is_expression", "load_document"]

# The schema's SWMLMethod list (docs/swml-contract.md §1, signalwire SDK 3.7.5): 39 verbs.
VERBS: frozenset[str] = frozenset(
    {
        "answer",
        "ai",
        "ai_sidecar",
        "amazon_bedrock",
        "cond",
        "connect",
        "denoise",
        "detect_machine",
        "enter_queue",
        "execute",
        "goto",
        "hangup",
        "join_conference",
        "join_room",
        "label",
        "live_transcribe",
        "live_translate",
        "pay",
        "play",
        "prompt",
        "receive_fax",
        "record",
        "record_call",
        "request",
        "return",
        "send_digits",
        "send_fax",
        "send_sms",
        "set",
        "sip_refer",
        "sleep",
        "stop_denoise",
        "stop_record_call",
        "stop_tap",
        "switch",
        "tap",
        "transfer",
        "unset",
        "user_event",
    }
)

HANGUP_REASONS = ("hangup", "busy", "decline")
_EXPRESSION = re.compile(r"^[$%]\{.*\}$", re.DOTALL)  # schema SWMLVar pattern


@dataclass(frozen=True, slots=True)
class Verb:
    name: str
    params: Any  # canonical form for validated verbs, as written for the others
    path: str  # JSON path of the verb item, e.g. "sections.main[3]"


@dataclass(frozen=True, slots=True)
class Document:
    sections: dict[str, list[Verb]]
    version: str | None = None
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    source: str = "<inline>"


def is_expression(value: object) -> bool:
    """True for a whole-value SWML expression such as `${vars.count}` (schema SWMLVar)."""
    return isinstance(value, str) and _EXPRESSION.match(value) is not None


def load_document(text: str | bytes, source: str = "<inline>") -> Document:
    """Parse JSON or YAML text and validate it; `source` (file name, URL) names it in errors."""
    return document_from_data(_parse_text(text, source), source)


def document_from_data(data: Any, source: str = "<inline>") -> Document:
    """Validate an already-parsed document (a webhook's JSON body, a SWAIG `SWML` action)."""
    if not isinstance(data, dict):
        raise SwmlError("", f"{source}: expected a document object with 'sections', got {_kind(data)}")
    version = data.get("version")
    if version is not None and not isinstance(version, str | int | float):
        raise SwmlError("version", "expected a string")
    if "sections" not in data:
        raise SwmlError("", f"{source}: missing required key 'sections'")
    raw_sections = data["sections"]
    if not isinstance(raw_sections, dict):
        raise SwmlError("sections", "expected an object")
    if "main" not in raw_sections:
        raise SwmlError("sections", "missing required section 'main'")
    sections: dict[str, list[Verb]] = {}
    labels: dict[str, dict[str, int]] = {}
    for name, items in raw_sections.items():
        if not isinstance(name, str):
            raise SwmlError("sections", f"section names must be strings, got {name!r}")
        sections[name] = load_verbs(items, f"sections.{name}")
        labels[name] = _label_table(sections[name])
    for name, verbs in sections.items():
        _check_gotos(verbs, labels[name], name)
    return Document(
        sections=sections,
        version=None if version is None else str(version),
        labels=labels,
        source=source,
    )


def load_verbs(items: Any, path: str) -> list[Verb]:
    """Validate a list of verbs (a section; later also `cond.then`, `on_return`...)."""
    if not isinstance(items, list):
        raise SwmlError(path, "expected a list of verbs")
    return [load_verb(item, f"{path}[{index}]") for index, item in enumerate(items)]


def load_verb(item: Any, path: str) -> Verb:
    params: Any
    if isinstance(item, str):
        name, params = item, {}
    elif isinstance(item, dict):
        if len(item) != 1:
            keys = ", ".join(repr(key) for key in item) or "none"
            raise SwmlError(path, f"expected a single-key object {{verb: params}}, got keys {keys}")
        ((name, params),) = item.items()
        if not isinstance(name, str):
            raise SwmlError(path, f"verb names must be strings, got {name!r}")
    else:
        raise SwmlError(path, f"expected a verb object or a verb name, got {_kind(item)}")
    if name not in VERBS:
        raise SwmlError(path, f"unknown verb {name!r}")
    validate = _VALIDATORS.get(name)
    if validate is not None:
        params = validate(params, f"{path}.{name}")
    return Verb(name, params, path)


# ---- parsing -------------------------------------------------------------------------------


def _parse_text(text: str | bytes, source: str) -> Any:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")  # -sig: tolerate a BOM from editors on Windows
        except UnicodeDecodeError as exc:
            raise SwmlError("", f"{source}: not UTF-8 text ({exc})") from None
    if not text.strip():
        raise SwmlError("", f"{source}: empty document")
    json_error: json.JSONDecodeError | None = None
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            json_error = exc  # YAML flow style also starts with "{": give it a chance
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        if json_error is not None:
            raise SwmlError("", f"{source}: invalid JSON: {json_error}") from None
        detail = " ".join(str(exc).split())
        raise SwmlError("", f"{source}: invalid YAML: {detail}") from None


def _label_table(verbs: list[Verb]) -> dict[str, int]:
    table: dict[str, int] = {}
    for index, verb in enumerate(verbs):
        if verb.name != "label":
            continue
        if verb.params in table:
            first = verbs[table[verb.params]].path
            raise SwmlError(f"{verb.path}.label", f"duplicate label {verb.params!r} (first at {first})")
        table[verb.params] = index
    return table


def _nested(verb: Verb) -> list[list[Verb]]:
    """The verb lists inside a verb (cond branches, switch cases, execute's on_return/result)."""
    params = verb.params
    found: list[list[Verb]] = []
    specs = []
    if verb.name == "cond":
        specs = list(params)
    elif verb.name == "switch":
        specs = [params]
    elif verb.name == "execute" and isinstance(params, dict):
        if params.get("on_return"):
            found.append(params["on_return"])
        result = params.get("result")
        specs = list(result) if isinstance(result, list) else [result] if result is not None else []
    for spec in specs:
        if isinstance(spec, CondBranch):
            found.append(spec.then)
            if spec.otherwise:
                found.append(spec.otherwise)
        elif isinstance(spec, SwitchSpec):
            found.extend(spec.cases.values())
            if spec.default:
                found.append(spec.default)
    return found


def _check_gotos(verbs: list[Verb], labels: dict[str, int], section: str) -> None:
    # A goto jumps within its section (also from inside cond/switch blocks): a label that is not
    # there is a document error, caught at load rather than when the branch first runs.
    for verb in verbs:
        if verb.name == "goto" and isinstance(verb.params.get("label"), str) and verb.params["label"] not in labels:
            raise SwmlError(f"{verb.path}.goto.label", f"no label {verb.params['label']!r} in section {section!r}")
        for nested in _nested(verb):
            _check_gotos(nested, labels, section)


# ---- per-verb params -----------------------------------------------------------------------


def _answer(params: Any, path: str) -> dict[str, Any]:
    checked = _object(params, path, allowed=_ANSWER_KEYS)
    if "max_duration" in checked:
        _integer(checked["max_duration"], f"{path}.max_duration", minimum=7)
    for key in sorted(_ANSWER_KEYS - {"max_duration"}):
        if key in checked:
            _string(checked[key], f"{path}.{key}")
    return checked


_ANSWER_KEYS = frozenset({"max_duration", "codecs", "username", "password", "sip_auth_username", "sip_auth_password"})


def _play(params: Any, path: str) -> dict[str, Any]:
    checked = _object(params, path, allowed=_PLAY_KEYS)
    if "url" in checked and "urls" in checked:
        raise SwmlError(path, "give either 'url' or 'urls', not both")
    if "url" in checked:
        _play_url(checked["url"], f"{path}.url")
    elif "urls" in checked:
        urls = checked["urls"]
        if not isinstance(urls, list) or not urls:
            raise SwmlError(f"{path}.urls", "expected a non-empty list of strings")
        for index, url in enumerate(urls):
            _play_url(url, f"{path}.urls[{index}]")
    else:
        raise SwmlError(path, "missing 'url' or 'urls'")
    if "volume" in checked:
        _number(checked["volume"], f"{path}.volume", minimum=-40, maximum=40)
    if "auto_answer" in checked and not isinstance(checked["auto_answer"], bool):
        raise SwmlError(f"{path}.auto_answer", "expected a boolean")
    for key in ("say_voice", "say_language", "say_gender", "status_url"):
        if key in checked:
            _string(checked[key], f"{path}.{key}")
    return checked


_PLAY_KEYS = frozenset(
    {"url", "urls", "volume", "say_voice", "say_language", "say_gender", "auto_answer", "status_url"}
)


def _play_url(url: Any, path: str) -> None:
    # A URL built by an expression ("${greeting_url}", "say:Hi ${name}") is only known at run
    # time; the interpreter parses it after expansion.
    if isinstance(url, str) and ("${" in url or "%{" in url):
        return
    parse_play_url(url, path)


def _sleep(params: Any, path: str) -> dict[str, Any]:
    if isinstance(params, dict):
        checked = _object(params, path, allowed=frozenset({"duration"}))
        if "duration" not in checked:
            raise SwmlError(path, "missing 'duration'")
        _integer(checked["duration"], f"{path}.duration", minimum=-1)
        return checked
    _integer(params, path, minimum=-1)
    return {"duration": params}


def _hangup(params: Any, path: str) -> dict[str, Any]:
    checked = _object(params, path, allowed=frozenset({"reason"}))
    if "reason" in checked and checked["reason"] not in HANGUP_REASONS:
        raise SwmlError(f"{path}.reason", f"expected one of {', '.join(HANGUP_REASONS)}")
    return checked


def _label(params: Any, path: str) -> str:
    if not isinstance(params, str) or not params:
        raise SwmlError(path, "expected a non-empty string")
    return params


_VALIDATORS: dict[str, Callable[[Any, str], Any]] = {
    "answer": _answer,
    "play": _play,
    "sleep": _sleep,
    "hangup": _hangup,
    "label": _label,
    # Control and voice verbs (params.py): nested verb lists load through load_verbs.
    **build_validators(load_verbs),
}


# ---- value checks --------------------------------------------------------------------------


def _object(params: Any, path: str, allowed: frozenset[str]) -> dict[str, Any]:
    if params is None:  # YAML "- hangup:" parses to null; it means "no params"
        return {}
    if not isinstance(params, dict):
        raise SwmlError(path, "expected an object")
    for key in params:
        if key not in allowed:
            raise SwmlError(f"{path}.{key}", "unknown parameter")
    return dict(params)


def _integer(value: Any, path: str, minimum: int) -> None:
    if is_expression(value):
        return
    # bool is an int subclass in Python; JSON true is not a number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SwmlError(path, "expected an integer")
    if value < minimum:
        raise SwmlError(path, f"expected an integer >= {minimum}, got {value}")


def _number(value: Any, path: str, minimum: float, maximum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SwmlError(path, "expected a number")
    if not minimum <= value <= maximum:
        raise SwmlError(path, f"expected a number from {minimum} to {maximum}, got {value}")


def _string(value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise SwmlError(path, "expected a string")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
