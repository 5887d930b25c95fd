"""The SWML document model: text in, validated `Document` out, or `SwmlError`s with their paths.

Theory of operation: `load_document(text)` parses JSON (tried first when the text starts with
`{`) or YAML, then `document_from_data` walks the result once and builds `Verb`s. Every problem
is a `SwmlError(path, message)` where `path` is the JSON path of the offending value, e.g.
`sections.main[3].play.urls[1]: expected a string`, so a bad document fails at load with a
message its author can act on, never halfway through a call. The walk does not stop at the
first problem: each verb, section and label check that fails is collected and the load raises
them together (`SwmlErrors`, one error alone is raised as itself), so `mediaserver validate`
lists every error in one run. Within one verb the field checks report every bad field.

Shape (docs/swml-contract.md §2): an object with `sections` (an object of name -> list of verbs) that
must hold `main`; `version` is optional and other top-level keys are tolerated. A verb is a
single-key object `{verb: params}`, or a bare string (`"answer"`, `"hangup"`) meaning the verb
with empty params, as SignalWire accepts. Verb names must be one of the 39 schema verbs, or
one of `SDK_VERBS` (`execute_rpc`, which the SDK's RPC helpers put inside SWML actions although
the schema does not list it: accepted, and run as `Unsupported`, i.e. logged and skipped).

Params of the verbs this runner executes are validated through `_VALIDATORS` (one small
function per verb, so growing the runner is adding rows): answer, play, sleep, hangup, label
in `basic_params.py`; the control and voice verbs (cond, switch, execute, request, prompt,
record…) in `params.py`, which turns nested verb lists into `Verb`s with their own paths. The bodies of
`ai`, `amazon_bedrock` and `ai_sidecar` are checked against the SDK's schema.json
(`schema_check.py`) and kept as written. Their errors come in two weights: one that leaves the
agent without a body or a prompt (a plain-string `prompt`, no `prompt`) refuses the document
like any other; the rest (an out-of-range `params` value…) are kept on the verb as `problems`,
because the agent layer repairs those values and a call must not stop for them (fields.py
`repair`). `schema_problems(document)` lists them; `mediaserver validate` reports them as errors.
A validator returns the params in canonical form (`null` -> `{}`; `sleep: 500` ->
`{"duration": 500}`). Params of all other verbs are kept as written until their verb is built.
Number fields also accept a SWML expression string (`${...}` / `%{...}`, schema `SWMLVar`);
the interpreter resolves those, so the document model stays true to the schema.

Labels are resolved at load into `Document.labels[section][label] -> index`. Pure: stdlib + yaml.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from mediaserver.swml.basic_params import BASIC_VALIDATORS, is_expression
from mediaserver.swml.errors import SwmlError, SwmlErrors, raise_all
from mediaserver.swml.params import CondBranch, SwitchSpec, build_validators
from mediaserver.swml.schema_check import SCHEMA_DEFS, check_body

__all__ = [
    "SDK_VERBS",
    "VERBS",
    "Document",
    "SwmlError",
    "SwmlErrors",
    "Verb",
    "all_verbs",
    "document_from_data",
    "is_expression",
    "load_document",
    "schema_problems",
]

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

# Verbs outside the schema that SDK agents emit: `FunctionResult.execute_rpc()` (and its
# `rpc_dial`, `rpc_ai_message`, `rpc_ai_unhold`) returns `{"SWML": {"sections": {"main":
# [{"execute_rpc": {method, call_id?, node_id?, params?}}]}}}` (docs/swml-contract.md §1).
SDK_VERBS: frozenset[str] = frozenset({"execute_rpc"})


@dataclass(frozen=True, slots=True)
class Verb:
    name: str
    params: Any  # canonical form for validated verbs, as written for the others
    path: str  # JSON path of the verb item, e.g. "sections.main[3]"
    # Schema errors the runner tolerates (ai bodies: the agent repairs the value); see above.
    problems: tuple[SwmlError, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class Document:
    sections: dict[str, list[Verb]]
    version: str | None = None
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    source: str = "<inline>"


def load_document(text: str | bytes, source: str = "<inline>") -> Document:
    """Parse JSON or YAML text and validate it; `source` (file name, URL) names it in errors."""
    return document_from_data(_parse_text(text, source), source)


def document_from_data(data: Any, source: str = "<inline>") -> Document:
    """Validate an already-parsed document (a webhook's JSON body, a SWAIG `SWML` action)."""
    try:
        return _document_from_data(data, source)
    except RecursionError:  # verbs nested past the stack (or a YAML alias that contains itself)
        raise SwmlError("", f"{source}: document nested too deeply") from None


def _document_from_data(data: Any, source: str) -> Document:
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
    problems: list[SwmlError] = []  # every error, with the tolerated ones of loaded sections
    tolerated = 0
    for name, items in raw_sections.items():
        if not isinstance(name, str):
            problems.append(SwmlError("sections", f"section names must be strings, got {name!r}"))
            continue
        try:
            sections[name] = load_verbs(items, f"sections.{name}")
        except SwmlError as exc:
            problems.append(exc)
            continue
        found = [error for verb in _each_verb(sections[name]) for error in verb.problems]
        problems.extend(found)
        tolerated += len(found)
        labels[name] = _label_table(sections[name], problems)
    for name, verbs in sections.items():
        _check_gotos(verbs, labels[name], name, problems)
    if len(problems) > tolerated:
        raise_all(problems)
    return Document(
        sections=sections,
        version=None if version is None else str(version),
        labels=labels,
        source=source,
    )


def load_verbs(items: Any, path: str) -> list[Verb]:
    """Validate a list of verbs (a section, `cond.then`, `on_return`...); all bad verbs reported."""
    if not isinstance(items, list):
        raise SwmlError(path, "expected a list of verbs")
    verbs: list[Verb] = []
    problems: list[SwmlError] = []  # in document order, a failed list also reports its tolerated ones
    failed = False
    for index, item in enumerate(items):
        try:
            verb = load_verb(item, f"{path}[{index}]")
        except SwmlError as exc:
            problems.append(exc)
            failed = True
            continue
        verbs.append(verb)
        problems.extend(error for each in _each_verb([verb]) for error in each.problems)
    if failed:
        raise_all(problems)
    return verbs


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
    if name not in VERBS and name not in SDK_VERBS:
        raise SwmlError(path, f"unknown verb {name!r}")
    if name in SCHEMA_DEFS:
        return Verb(name, params, path, problems=_agent_problems(name, params, path))
    validate = _VALIDATORS.get(name)
    if validate is not None:
        params = validate(params, f"{path}.{name}")
    return Verb(name, params, path)


def schema_problems(document: Document) -> list[SwmlError]:
    """The schema errors the document loaded with (tolerated at call time), in document order."""
    return [error for verb in all_verbs(document) for error in verb.problems]


# ---- parsing -------------------------------------------------------------------------------


# libyaml's safe loader, when PyYAML was built with it (the wheels are): ~9x faster than the pure
# Python one (1.4 vs 15.7 ms for config/swml/agent.yaml), and a file route is parsed per call.
_SAFE_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
        except RecursionError:
            raise SwmlError("", f"{source}: document nested too deeply") from None
        except json.JSONDecodeError as exc:
            json_error = exc  # YAML flow style also starts with "{": give it a chance
        except ValueError as exc:  # an integer of more than 4300 digits
            raise SwmlError("", f"{source}: invalid JSON: {exc}") from None
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader (libyaml's when built)
    except RecursionError:
        raise SwmlError("", f"{source}: document nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise SwmlError("", f"{source}: invalid YAML: {exc}") from None
    except yaml.YAMLError as exc:
        if json_error is not None:
            raise SwmlError("", f"{source}: invalid JSON: {json_error}") from None
        detail = " ".join(str(exc).split())
        if "maximum nesting depth" in detail:  # libyaml's own limit (1000), where Python recursion stops PyYAML's
            raise SwmlError("", f"{source}: document nested too deeply") from None
        raise SwmlError("", f"{source}: invalid YAML: {detail}") from None


def _label_table(verbs: list[Verb], problems: list[SwmlError]) -> dict[str, int]:
    table: dict[str, int] = {}
    for index, verb in enumerate(verbs):
        if verb.name != "label":
            continue
        if verb.params in table:
            first = verbs[table[verb.params]].path
            problems.append(SwmlError(f"{verb.path}.label", f"duplicate label {verb.params!r} (first at {first})"))
            continue
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


def _check_gotos(verbs: list[Verb], labels: dict[str, int], section: str, problems: list[SwmlError]) -> None:
    # A goto jumps within its section (also from inside cond/switch blocks): a label that is not
    # there is a document error, caught at load rather than when the branch first runs.
    for verb in verbs:
        if verb.name == "goto" and isinstance(verb.params.get("label"), str) and verb.params["label"] not in labels:
            label = verb.params["label"]
            problems.append(SwmlError(f"{verb.path}.goto.label", f"no label {label!r} in section {section!r}"))
        for nested in _nested(verb):
            _check_gotos(nested, labels, section, problems)


# ---- per-verb params -----------------------------------------------------------------------


def _agent_problems(verb: str, params: Any, path: str) -> tuple[SwmlError, ...]:
    """`ai` / `amazon_bedrock` / `ai_sidecar` against the SDK schema: raise if the agent could
    not start (no object body, no usable prompt), else return the errors it will repair."""
    errors = [SwmlError(issue.path, issue.message) for issue in check_body(verb, params, path)[0]]
    fatal = {f"{path}.{verb}{suffix}" for suffix in ("", ".prompt", ".prompt.text", ".prompt.pom")}
    if any(error.path in fatal for error in errors):
        raise_all(errors)
    return tuple(errors)


_VALIDATORS: dict[str, Callable[[Any, str], Any]] = {
    **BASIC_VALIDATORS,  # answer, play, sleep, hangup, label (basic_params.py)
    # Control and voice verbs (params.py): nested verb lists load through load_verbs.
    **build_validators(load_verbs),
}


def all_verbs(document: Document) -> list[Verb]:
    """Every verb of the document in order, nested ones (cond, switch, execute) included."""
    return [verb for verbs in document.sections.values() for verb in _each_verb(verbs)]


def _each_verb(verbs: list[Verb]) -> Iterator[Verb]:
    for verb in verbs:
        yield verb
        for nested in _nested(verb):
            yield from _each_verb(nested)


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
