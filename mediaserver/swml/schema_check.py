"""Check `ai`, `amazon_bedrock` and `ai_sidecar` bodies against the SDK's `schema.json`.

Theory of operation: these three verbs carry large nested bodies (prompt, params, SWAIG, …) that
the runner hands to the agent layer as written, so the document model checks them here, once, at
load. The reference is the `schema.json` shipped inside the installed `signalwire` package (found
with `importlib.util.find_spec`, without importing the SDK, which would pull in aiohttp); it is
compiled once per process with `jsonschema_rs` (the validator the SDK itself depends on). That
costs about 0.2 s on first use, so start-up code may call `prepare()`; a check is then well under
a millisecond. `check_body(verb, body, path)` validates `{verb: body}` against the schema's
wrapper definition (`AI`, `AmazonBedrock`, `AiSidecar`) and turns each validation error into an
`Issue` whose path is the verb's path plus the JSON path inside the body:
`sections.main[2].ai.prompt`.

Reading the schema the way the SDK writes documents (docs/swml-contract.md §3):
- unknown keys are tolerated: the SDK emits keys outside the schema (`SWAIG.mcp_servers`,
  function `fillers`, step `gather_info`), so a closed object's extra key is a note, never an
  error (an `unevaluatedProperties` that is itself a schema, like named contexts, still applies);
- `anyOf`/`oneOf` pass when one branch passes under that rule; otherwise the branch that got
  furthest into the value is reported (the others are "wrong shape" noise), and branches that all
  fail on the value itself become one message (`expected a number or a ${…} expression`);
- a few SDK outputs the schema forgot are allowed by `_SDK_DIALECT` (each entry says which);
  the golden SDK documents (tests/unit/swml/test_golden.py) load with zero errors.

Without the SDK or `jsonschema_rs` (neither is a runtime dependency) a small built-in check still
refuses the mistakes that would run a call with no prompt: a missing or non-object `prompt`.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_DEFS", "Issue", "check_body", "prepare", "schema_available"]

# verb -> the schema definition of the single-key verb object `{verb: body}`.
SCHEMA_DEFS: dict[str, str] = {"ai": "AI", "amazon_bedrock": "AmazonBedrock", "ai_sidecar": "AiSidecar"}
_EXPRESSION_PATTERN = "^[\\$%]\\{.*\\}$"  # schema SWMLVar
_MAX_SHOWN = 60  # characters of a bad value quoted in a message


@dataclass(frozen=True, slots=True)
class Issue:
    path: str  # full JSON path, e.g. "sections.main[2].ai.prompt"
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def schema_available() -> bool:
    """True when the SDK's schema.json and jsonschema_rs are installed (the full check runs)."""
    return _loaded() is not None


def prepare() -> bool:
    """Load and compile the schema now (about 0.2 s, once per process) rather than inside the
    first call's document load; returns `schema_available()`. For start-up code."""
    schema = _loaded()
    if schema is None:
        return False
    for name in SCHEMA_DEFS.values():
        schema.check(f"/$defs/{name}", None, "")
    return True


def check_body(verb: str, body: Any, path: str) -> tuple[list[Issue], list[Issue]]:
    """(errors, notes) of one verb body; `path` is the verb item's path (`sections.main[2]`)."""
    schema = _loaded()
    if schema is None:
        return _fallback(verb, body, path), []
    errors, notes = schema.check(f"/$defs/{SCHEMA_DEFS[verb]}", {verb: body}, path)
    return _dedupe(errors), _dedupe(notes)


# ---- the schema --------------------------------------------------------------------------------


class _Schema:
    """The patched schema and one compiled validator per definition asked for (by JSON pointer)."""

    def __init__(self, schema: dict[str, Any], compile_: Callable[[dict[str, Any]], Any]) -> None:
        self.schema = schema
        self._compile = compile_
        self._validators: dict[str, Any] = {}

    def check(self, pointer: str, value: Any, base: str) -> tuple[list[Issue], list[Issue]]:
        validator = self._validators.get(pointer)
        if validator is None:
            # The root keeps `$id` so that `#/$defs/...` references resolve inside this document.
            root = {key: self.schema[key] for key in ("$schema", "$id", "$defs")}
            validator = self._validators[pointer] = self._compile({**root, "$ref": f"#{pointer}"})
        errors: list[Issue] = []
        notes: list[Issue] = []
        try:
            for error in validator.iter_errors(value):
                found, noted = _walk(self, error, base)
                errors.extend(found)
                notes.extend(noted)
        except UnicodeEncodeError as error:  # a lone surrogate ("\ud800" in JSON): not text the validator can read
            return [Issue(base, f"text that is not valid Unicode: {error.reason}")], []
        return errors, notes

    def at(self, location: list[str | int]) -> Any:
        """The schema value at a keyword location, or None when it cannot be found."""
        node: Any = self.schema
        for part in location:
            found = isinstance(node, dict) and part in node
            found = found or (isinstance(node, list) and isinstance(part, int) and part < len(node))
            if not found:
                return None
            node = node[part]
        return node


def _schema_file() -> Path | None:
    spec = importlib.util.find_spec("signalwire")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "schema.json"
        if candidate.is_file():
            return candidate
    return None


@cache
def _loaded() -> _Schema | None:
    try:
        import jsonschema_rs
    except ImportError:
        return None
    location = _schema_file()
    if location is None:
        return None
    schema = _with_sdk_dialect(json.loads(location.read_text(encoding="utf-8")))
    return _Schema(schema, jsonschema_rs.Draft202012Validator)


def _with_sdk_dialect(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema plus what SDK 3.7.5 agents are seen to send (each change names its source);
    patches `schema` (freshly parsed) in place."""
    defs = schema["$defs"]
    for name, patch in _SDK_DIALECT.items():
        if name in defs:
            patch(defs[name], defs)
    return schema


def _drop_required(definition: dict[str, Any], key: str) -> None:
    definition["required"] = [item for item in definition.get("required", []) if item != key]


def _flags_may_be_text(definition: dict[str, Any], defs: dict[str, Any]) -> None:
    for key in ("numbered", "numberedBullets"):
        definition["properties"][key]["anyOf"].append({"type": "string"})


def _title_only_section(definition: dict[str, Any], defs: dict[str, Any]) -> None:
    _drop_required(definition, "body")
    _flags_may_be_text(definition, defs)


def _open_actions(definition: dict[str, Any], defs: dict[str, Any]) -> None:
    # A known action must still match its definition; an object naming none of the known actions
    # is one the schema does not list (the agent layer logs and skips what it cannot run).
    known = [key for ref in definition["anyOf"] for key in defs[ref["$ref"].rsplit("/", 1)[1]].get("required", [])]
    definition["anyOf"].append({"type": "object", "minProperties": 1, "propertyNames": {"not": {"enum": known}}})


def _fillers_by_language(definition: dict[str, Any], defs: dict[str, Any]) -> None:
    by_language = {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}
    for key in ("enter_fillers", "exit_fillers"):
        definition["properties"][key] = {"anyOf": [definition["properties"][key], by_language]}


_SDK_DIALECT: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    # contexts_demo: `enter_fillers` / `exit_fillers` as {language: [phrases]}, not a list.
    "ContextsPOMObject": _fillers_by_language,
    "ContextsTextObject": _fillers_by_language,
    # contexts_demo: `contexts` holds named contexts and no `default` (the first one starts).
    "Contexts": lambda d, _: _drop_required(d, "default"),
    # faq_bot_agent: a POM section with a title only (its body was empty); it renders a heading.
    # data_map_demo: `numbered` / `numberedBullets` given text (the renderer takes it as true).
    "PomSectionBodyContent": _title_only_section,
    "PomSectionBulletsContent": _flags_may_be_text,
    # gather_per_question_functions_demo, step_function_inheritance_demo: `pom: []` beside
    # `contexts` (the steps carry the text).
    "AIPromptPom": lambda d, _: d["properties"]["pom"].pop("minItems", None),
    # data_map_demo: SWAIG actions the schema does not list (`start_playback`, `stop_playback`).
    "Action": _open_actions,
}


# ---- errors -> issues --------------------------------------------------------------------------


def _walk(schema: _Schema, error: Any, base: str) -> tuple[list[Issue], list[Issue]]:
    """(errors, notes) of one jsonschema_rs error; unions descend into their best branch."""
    kind = error.kind
    name = type(kind).__name__
    where = _join(base, error.instance_path)
    if name in ("UnevaluatedProperties", "AdditionalProperties"):
        return _unknown_keys(schema, error, where)
    if name in ("AnyOf", "OneOfNotValid") and kind.context:
        return _union(schema, error, base, where)
    return [Issue(where, _message(error))], []


def _unknown_keys(schema: _Schema, error: Any, where: str) -> tuple[list[Issue], list[Issue]]:
    location = list(error.schema_path)
    rule = schema.at(location)
    if rule in (False, {"not": {}}, None):  # a closed object: the key is outside the schema
        keys = ", ".join(repr(key) for key in error.kind.unexpected)
        return [], [Issue(where, f"unknown key{'s' if len(error.kind.unexpected) > 1 else ''} {keys} (ignored)")]
    # `unevaluatedProperties: {schema}` (named contexts): each extra value must match that schema.
    pointer = "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in location)
    errors: list[Issue] = []
    notes: list[Issue] = []
    for key in error.kind.unexpected:
        found, noted = schema.check(pointer, error.instance[key], f"{where}.{key}")
        errors.extend(found)
        notes.extend(noted)
    return errors, notes


def _union(schema: _Schema, error: Any, base: str, where: str) -> tuple[list[Issue], list[Issue]]:
    branches = []
    for branch in error.kind.context:
        errors: list[Issue] = []
        notes: list[Issue] = []
        for sub in branch:
            found, noted = _walk(schema, sub, base)
            errors.extend(found)
            notes.extend(noted)
        if not errors:
            return [], notes  # a branch passes once unknown keys are tolerated
        branches.append((errors, notes, branch))
    if all(issue.path == where for errors, _, _ in branches for issue in errors):
        # Every branch fails on the value itself: one message listing what would have fitted.
        expected = _dedupe_text(_expectation(sub) for _, _, branch in branches for sub in branch)
        if all(text is not None for text in expected):
            return [Issue(where, f"expected {' or '.join(str(t) for t in expected)}, got {_kind(error.instance)}")], []
    # The branch that matched deepest is the one the author meant; shallower ones are shape noise.
    errors, notes, _ = max(branches, key=lambda b: (max(_depth(issue.path) for issue in b[0]), -len(b[0])))
    return errors, notes


def _depth(path: str) -> int:
    return path.count(".") + path.count("[")


def _expectation(error: Any) -> str | None:
    """What a failed leaf wanted, as a noun phrase, or None when it is not a plain type test."""
    kind = error.kind
    name = type(kind).__name__
    if name == "Type":
        return " or ".join(_TYPE_NOUNS.get(t, t) for t in kind.types)
    if name == "Pattern" and kind.pattern == _EXPRESSION_PATTERN:
        return "a ${…} expression"
    if name == "Enum":
        return "one of " + ", ".join(json.dumps(option) for option in kind.options)
    if name == "Required":
        return None
    return None


_TYPE_NOUNS = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def _message(error: Any) -> str:
    kind = error.kind
    name = type(kind).__name__
    if name == "Required":
        return f"missing required key {kind.property!r}"
    if name == "Type":
        return f"expected {' or '.join(_TYPE_NOUNS.get(t, t) for t in kind.types)}, got {_kind(error.instance)}"
    if name == "Enum":
        return f"expected one of {', '.join(json.dumps(o) for o in kind.options)}, got {_shown(error.instance)}"
    if name in ("Minimum", "ExclusiveMinimum", "Maximum", "ExclusiveMaximum", "MinLength", "MaxLength"):
        return f"{_shown(error.instance)} is out of range ({error.message.split(' is ', 1)[-1]})"
    text = str(error.message)
    shown = json.dumps(error.instance)
    if text.startswith(shown):  # jsonschema_rs quotes the whole value first; keep it short
        text = _shown(error.instance) + text[len(shown) :]
    return text


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"a string {_shown(value)}"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _join(base: str, instance_path: Any) -> str:
    path = base
    for part in instance_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _dedupe(issues: list[Issue]) -> list[Issue]:
    return list(dict.fromkeys(issues))


def _dedupe_text(items: Any) -> list[str | None]:
    return list(dict.fromkeys(items))


# ---- without the SDK ---------------------------------------------------------------------------


def _fallback(verb: str, body: Any, path: str) -> list[Issue]:
    """The checks that keep a call from running with no prompt, when the schema is not installed."""
    where = f"{path}.{verb}"
    if not isinstance(body, dict):
        return [Issue(where, f"expected an object, got {_kind(body)}")]
    if "prompt" not in body:
        return [Issue(where, "missing required key 'prompt'")]
    prompt = body["prompt"]
    if verb == "ai_sidecar":
        ok = isinstance(prompt, str | dict)
        return [] if ok else [Issue(f"{where}.prompt", f"expected a string or an object, got {_kind(prompt)}")]
    if not isinstance(prompt, dict):
        return [Issue(f"{where}.prompt", f"expected an object, got {_kind(prompt)}")]
    if "text" not in prompt and "pom" not in prompt:
        return [Issue(f"{where}.prompt", "missing required key 'text' (or 'pom')")]
    return []
