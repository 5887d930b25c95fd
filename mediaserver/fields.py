"""Declarative field tables: the one checker behind settings, SWML params and the ai/sidecar configs.

Theory of operation: a `Table` maps each key of an input object to a `Field` (its kind, default,
bounds or allowed values, a nested table or item field, whether a SWML `${…}` expression may stand
in for it). `check(table, data, path)` walks the object once and returns the coerced values and
every `FieldError`, each naming the full path of the bad value (`ai.params.end_of_speech_timeout`,
`webrtc.ice_servers[0].urls`, `sip.trunks.carrier`). `validate` is the strict form: it raises
`FieldErrors` (all of them, in order) and callers turn that into their own exception.

Coercion: a `loose` table (settings, env vars, YAML) also takes `"12"`, `"1.5"`, `"yes"` on number
and boolean fields and integral floats (`1000.0`) on integer fields; a strict one (SWML) takes
only the JSON type, plus expression strings where `expr` allows them (left as is, resolved when
the verb runs). `repair=True` (the ai verb: a bad value never stops a call) puts the default in
place of a badly typed value and clamps an out-of-range number, and notes that value on the error.

Messages: `expected an integer, got 'abc'`, `70000 is outside 0..65535`, `expected one of a, b,
got 'c'`, `unknown setting`, `missing required parameter 'url'`. A field's `expected` text replaces
the kind's name in all of them (`expected an integer from 1 to 100, got 101`); on a list or map it
speaks for the whole container, so a bad item is reported once against the container. Each error
also carries `problem`, `value` and `expected`, so a caller can word it its own way.

Pure: no I/O, no asyncio. A `check` hook on a field adds a rule of the caller's own (an IP network,
a URL scheme) and returns the reason text, or None when the value is fine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "MISSING",
    "Field",
    "FieldError",
    "FieldErrors",
    "Kind",
    "Problem",
    "Table",
    "check",
    "check_value",
    "is_expression",
    "join",
    "validate",
]

Kind = Literal["any", "str", "int", "num", "bool", "obj", "list", "map", "table"]
Problem = Literal["type", "range", "choice", "invalid", "unknown", "missing"]
Unknown = Literal["reject", "ignore", "keep"]

_EXPRESSION = re.compile(r"^[$%]\{.*\}$", re.DOTALL)
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_NAMES: dict[str, str] = {
    "any": "a value",
    "str": "a string",
    "int": "an integer",
    "num": "a number",
    "bool": "true or false",
    "obj": "an object",
    "list": "a list",
    "map": "a table",
    "table": "a table",
}


class _Missing:
    """The sentinel of 'no default': the key is left out of the result when absent."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def is_expression(value: object) -> bool:
    """A whole-string SWML expression, `${…}` or `%{…}`."""
    return isinstance(value, str) and _EXPRESSION.match(value) is not None


@dataclass(frozen=True, slots=True)
class Field:
    """One key: its kind and the rules on its value (see the module docstring)."""

    kind: Kind = "any"
    default: Any = MISSING
    required: bool = False
    lo: int | float | None = None
    hi: int | float | None = None
    choices: tuple[Any, ...] = ()
    nonempty: bool = False  # str, list, map: an empty one is a type error
    lone: bool = False  # list: a single item stands for a list of one
    items: Field | None = None  # list: each item; map: each value
    table: Table | None = None  # table: the nested keys
    expr: bool | None = None  # None: as the table says
    expected: str = ""  # replaces the kind's name in messages
    check: Callable[[Any], str | None] | None = None  # the caller's own rule on the coerced value


@dataclass(frozen=True, slots=True)
class Table:
    """The keys of one object; `unknown` says what an unlisted key is: refused, dropped or kept."""

    fields: Mapping[str, Field]
    unknown: Unknown = "reject"
    noun: str = "key"  # "unknown {noun}", "missing required {noun} 'x'"
    unknown_text: str = "unknown {noun}"  # may name {key} and {known} (the listed keys, sorted)
    unknown_at_table: bool = False  # name the table's path, not the key's, in an unknown-key error
    choice_text: str = "expected one of {choices}, got {value!r}"
    loose: bool = False
    expr: bool = False


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str
    problem: Problem
    message: str
    value: Any = None
    expected: str = ""
    repaired: Any = MISSING  # what repair mode put in the value's place

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class FieldErrors(ValueError):
    """Every error of one `validate` call; `str()` is their messages joined with '; '."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


def join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def check(table: Table, data: Any, path: str = "", *, repair: bool = False) -> tuple[dict[str, Any], list[FieldError]]:
    """The coerced values of `data` (absent keys get their defaults) and every error found."""
    errors: list[FieldError] = []
    values = _Checker(errors, repair).table(table, data, path)
    return values, errors


def check_value(
    spec: Field, value: Any, path: str, within: Table | None = None, *, repair: bool = False
) -> tuple[Any, list[FieldError]]:
    """One value against one field (`within` gives the coercion and message rules; default strict)."""
    errors: list[FieldError] = []
    result = _Checker(errors, repair).value(spec, value, path, within or Table({}))
    return result, errors


def validate(table: Table, data: Any, path: str = "") -> dict[str, Any]:
    """`check`, raising `FieldErrors` when there is any error."""
    values, errors = check(table, data, path)
    if errors:
        raise FieldErrors(errors)
    return values


class _Bad(Exception):
    def __init__(self, problem: Problem, message: str, clamped: Any = MISSING) -> None:
        super().__init__(message)
        self.problem: Problem = problem
        self.message = message
        self.clamped = clamped


@dataclass
class _Checker:
    errors: list[FieldError] = field(default_factory=list)
    repair: bool = False

    def table(self, table: Table, data: Any, path: str) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            self.errors.append(
                FieldError(path, "type", f"expected {_NAMES['table']}, got {data!r}", data, _NAMES["table"])
            )
            return {}
        values: dict[str, Any] = {}
        if table.unknown == "reject":
            known = ", ".join(sorted(table.fields))
            for key, value in data.items():
                if key not in table.fields:
                    text = table.unknown_text.format(noun=table.noun, key=key, known=known)
                    where = path if table.unknown_at_table else join(path, key)
                    self.errors.append(FieldError(where, "unknown", text, value))
        for key, spec in table.fields.items():
            if spec.required and key not in data:
                self.errors.append(FieldError(path, "missing", f"missing required {table.noun} {key!r}"))
        for key, value in data.items():  # the caller's order, so a kept object reads as given
            given = table.fields.get(key)
            if given is None:
                if table.unknown == "keep":
                    values[key] = value
                continue
            result = self.value(given, value, join(path, key), table)
            if result is not MISSING:
                values[key] = result
        for key, spec in table.fields.items():
            if key not in data and spec.default is not MISSING:
                values[key] = spec.default
        return values

    def value(self, spec: Field, value: Any, path: str, table: Table) -> Any:
        """The coerced value, or MISSING (after noting the error) when it is bad."""
        if (table.expr if spec.expr is None else spec.expr) and is_expression(value):
            return value
        before = len(self.errors)
        try:
            result = self._coerce(spec, value, path, table)
            if len(self.errors) > before and spec.expected and spec.kind in ("list", "map"):
                del self.errors[before:]
                raise _Bad("type", _expected(spec, value))
            if len(self.errors) > before:
                return MISSING
            self._rules(spec, result, table)
            return result
        except _Bad as bad:
            repaired: Any = MISSING
            if self.repair:
                repaired = spec.default if bad.clamped is MISSING else bad.clamped
            expected = _name(spec)
            self.errors.append(FieldError(path, bad.problem, bad.message, value, expected, repaired))
            return repaired

    def _coerce(self, spec: Field, value: Any, path: str, table: Table) -> Any:
        kind = spec.kind
        if kind == "any":
            return value
        if kind == "str":
            if not isinstance(value, str) or (spec.nonempty and not value):
                raise _Bad("type", _expected(spec, value))
            return value
        if kind in ("int", "num"):
            return _number(spec, value, table.loose)
        if kind == "bool":
            return _boolean(spec, value, table.loose)
        if kind == "obj":
            if not isinstance(value, Mapping):
                raise _Bad("type", _expected(spec, value))
            return value
        if kind == "list":
            items = [value] if spec.lone and not isinstance(value, list) else value
            if not isinstance(items, list) or (spec.nonempty and not items):
                raise _Bad("type", _expected(spec, value))
            if spec.items is None:
                return list(items)
            checked = [self.value(spec.items, item, f"{path}[{i}]", table) for i, item in enumerate(items)]
            return [item for item in checked if item is not MISSING]
        if kind == "map":
            if not isinstance(value, Mapping) or (spec.nonempty and not value):
                raise _Bad("type", _expected(spec, value))
            if spec.items is None:
                return dict(value)
            out = {key: self.value(spec.items, item, join(path, key), table) for key, item in value.items()}
            return {key: item for key, item in out.items() if item is not MISSING}
        assert kind == "table" and spec.table is not None, spec
        if not isinstance(value, Mapping):
            raise _Bad("type", _expected(spec, value))
        return self.table(spec.table, value, path)

    @staticmethod
    def _rules(spec: Field, value: Any, table: Table) -> None:
        if spec.choices and value not in spec.choices:
            if spec.expected:
                raise _Bad("choice", f"expected {spec.expected}, got {value!r}")
            choices = ", ".join(map(str, spec.choices))
            raise _Bad("choice", table.choice_text.format(choices=choices, value=value))
        if spec.kind in ("int", "num"):
            lo, hi = spec.lo, spec.hi
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                clamped = min(max(value, lo if lo is not None else value), hi if hi is not None else value)
                if spec.expected:
                    raise _Bad("range", f"expected {spec.expected}, got {value!r}", clamped)
                raise _Bad("range", f"{value!r} is outside {lo}..{hi}", clamped)
        if spec.check is not None:
            reason = spec.check(value)
            if reason is not None:
                raise _Bad("invalid", reason)


def _name(spec: Field) -> str:
    if spec.expected:
        return spec.expected
    name = _NAMES[spec.kind]
    return f"a non-empty {name.split(' ', 1)[1]}" if spec.nonempty else name


def _expected(spec: Field, value: Any) -> str:
    return f"expected {_name(spec)}, got {value!r}"


def _number(spec: Field, value: Any, loose: bool) -> int | float:
    number: Any = value
    if loose and isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise _Bad("type", _expected(spec, value)) from None
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
        raise _Bad("type", _expected(spec, value))
    if spec.kind == "int" and isinstance(number, float):
        if not (loose and number.is_integer()):
            raise _Bad("type", _expected(spec, value))
        return int(number)
    return number


def _boolean(spec: Field, value: Any, loose: bool) -> bool:
    if isinstance(value, bool):
        return value
    if loose and isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    if loose and isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _Bad("type", _expected(spec, value))
