"""mod_openai's path expander: `${path}` / `%{path}` templates over JSON data, no JavaScript.

Theory of operation: in AI and SWAIG contexts (DataMap, prompt and step text, webhook
`response` text) templates are not SWML's JavaScript but a path lookup (contract §2, §6).
`expand(template, data)` replaces each `${…}` with the value at the dotted path in `data`:
names match without regard to ASCII case, one `[n]` per segment (negative from the end), an
unresolved path gives the empty string, non-strings are inserted as cJSON prints them (72.5 is
`72.500000`). Prefix helpers `lc:`, `enc:` (FreeSWITCH url-encode) and `fmt_ph:` apply in the
fixed order fmt_ph → lc → enc whatever order they are written in; one level of nested template
is expanded inside a path (`${meta_data.t.${lc:args.d}}`). `@{…}` functions are left as written.

`expand_json(value, data)` expands an output object the way the platform does: print it as
cJSON text, expand with string values JSON-escaped, parse the text again (`MISSING` when that
fails, e.g. an object was inserted into a string).

This is a port of the SDK's MIT-licensed reference (`signalwire/cli/execution/datamap_exec.py`,
which mirrors mod_openai); the differential test in tests/unit/swaig keeps the two in step.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

__all__ = [
    "MISSING",
    "as_dict",
    "cjson_parse",
    "cjson_print",
    "expand",
    "expand_json",
    "lookup",
    "object_item",
    "url_encode",
]


class _Missing:
    """Marks a path that does not resolve (distinct from JSON null)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()

_URL_UNSAFE = frozenset('\r\n #%&+:;<=>?@[\\]^`{|}"')
_UPPER_HEX = b"0123456789ABCDEF"
_MAX_PATH_LENGTH = 1024
_MAX_PATH_DEPTH = 128
_INT_MAX = 2**31 - 1
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_STRTOL_INDEX = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")
_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is an object, else an empty one (documents are read leniently)."""
    return value if isinstance(value, dict) else {}


def ascii_lower(text: str) -> str:
    """Lowercase ASCII letters only, as C's tolower() does."""
    return text.translate(_ASCII_LOWER)


def object_item(container: Any, name: str) -> Any:
    """cJSON_GetObjectItem(): first member whose name matches ignoring ASCII case, or MISSING."""
    if not isinstance(container, dict):
        return MISSING
    wanted = ascii_lower(name)
    for key, value in container.items():
        if ascii_lower(str(key)) == wanted:
            return value
    return MISSING


def has_item(container: Any, name: str) -> bool:
    return object_item(container, name) is not MISSING


def add_item(container: dict[str, Any], name: str, value: Any) -> None:
    """cJSON_AddItemToObject(): a second member of the same name is shadowed, so keep the first."""
    if not has_item(container, name):
        container[name] = value


def delete_item(container: dict[str, Any], name: str) -> None:
    wanted = ascii_lower(name)
    for key in list(container):
        if ascii_lower(str(key)) == wanted:
            del container[key]
            return


def string_item(container: Any, name: str) -> str | None:
    value = object_item(container, name)
    return value if isinstance(value, str) else None


INT_MAX, INT_MIN = 2**31 - 1, -(2**31)


def atoi(text: str) -> int:
    match = re.match(r"[ \t\n\v\f\r]*([+-]?)0*([0-9]{1,11})([0-9]*)", text)
    if not match:
        return 0
    # Clamped to a C int, as the platform's integers are (an overlong digit string is not parsed
    # whole: int() refuses more than 4,300 digits).
    value = INT_MAX + 1 if match.group(3) else int(match.group(2))
    return max(INT_MIN, min(INT_MAX, -value if match.group(1) == "-" else value))


def valueint(number: float) -> int:
    """cJSON's valueint: the number clamped to a C int; NaN is 0 (1e999 is inf, not an error)."""
    if number != number:
        return 0
    return INT_MAX if number >= INT_MAX else INT_MIN if number <= INT_MIN else int(number)


def is_true(value: Any) -> bool:
    """cJSON_FSTrue(): JSON true, or a string FreeSWITCH's switch_true() accepts."""
    if value is True:
        return True
    if not isinstance(value, str):
        return False
    if value.lower() in ("yes", "on", "true", "t", "enabled", "active", "allow"):
        return True
    return bool(re.fullmatch(r"[+-]?[0-9]+(\.[0-9]+)?", value.strip())) and atoi(value) != 0


def _cjson_string(text: str) -> str:
    parts = []
    for char in text:
        if char in _JSON_ESCAPES:
            parts.append(_JSON_ESCAPES[char])
        elif ord(char) < 32:
            parts.append(f"\\u{ord(char):04x}")
        else:
            parts.append(char)
    return '"' + "".join(parts) + '"'


def cjson_print(value: Any, depth: int = 0) -> str:
    """cJSON_Print(): whole numbers without a point, others with six decimals, tabs per level."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            return "null"
        if number.is_integer():
            return str(int(number))
        return f"{number:f}"
    if isinstance(value, str):
        return _cjson_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(cjson_print(item, depth + 1) for item in value) + "]"
    if isinstance(value, dict):
        inner = depth + 1
        members = [
            "\t" * inner + _cjson_string(str(key)) + ":\t" + cjson_print(item, inner) for key, item in value.items()
        ]
        if not members:
            return "{\n" + "\t" * depth + "}"
        return "{\n" + ",\n".join(members) + "\n" + "\t" * depth + "}"
    return _cjson_string(str(value))


def cjson_parse(text: str) -> Any:
    """cJSON_Parse(): skip a BOM and leading whitespace, allow control characters, ignore trailers."""
    text = text.lstrip("\ufeff").lstrip("".join(chr(code) for code in range(33)))
    try:
        value, _ = json.JSONDecoder(strict=False).raw_decode(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the stack
        return MISSING
    return value


def url_encode(value: str) -> str:
    """switch_url_encode(): encode unsafe bytes; an existing `%XX` (upper hex) is left alone."""
    raw = value.encode("utf-8")
    last = len(raw) - 1
    parts = []
    for index, byte in enumerate(raw):
        if byte == 0x25 and last - index > 1 and raw[index + 1] in _UPPER_HEX and raw[index + 2] in _UPPER_HEX:
            parts.append("%")
        elif byte < 0x20 or byte > 0x7E or chr(byte) in _URL_UNSAFE:
            parts.append(f"%{byte:02X}")
        else:
            parts.append(chr(byte))
    return "".join(parts)


def format_phone_national(value: str) -> str:
    """`fmt_ph`: libphonenumber's national format when `phonenumbers` is installed, else NANP only."""
    try:
        import phonenumbers  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        digits = re.sub(r"[^0-9]", "", value)
        if len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        if len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789":
            return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
        return value
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        return "INVALID NUMBER"
    if not phonenumbers.is_valid_number(number):
        return "INVALID NUMBER"
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))


def _end_braces(text: str) -> dict[int, int]:
    """For each `{` at i, the first `}` after it that brings the depth counted from i back to 0
    (no entry: it is never closed), all in one pass: a stack pairs them. Scanning forward from
    each `${` was quadratic, and `${` repeated without a `}` (a webhook reply) stalled the loop."""
    ends: dict[int, int] = {}
    opened: list[int] = []
    for index, char in enumerate(text):
        if char == "{":
            opened.append(index)
        elif char == "}" and opened:
            ends[opened.pop()] = index
    return ends


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted template path, or MISSING (get_json_object())."""
    if len(path.encode("utf-8")) > _MAX_PATH_LENGTH or path.endswith("."):
        return MISSING
    current = data
    for depth, token in enumerate((part for part in path.split(".") if part), start=1):
        if depth > _MAX_PATH_DEPTH:
            return MISSING
        if "[" not in token:
            current = object_item(current, token)
            if current is MISSING:
                return MISSING
            continue
        name, rest = token.split("[", 1)
        close = rest.find("]")
        if close < 0:
            return MISSING
        index_text = rest[:close]
        if rest[close + 1 :] or not _STRTOL_INDEX.fullmatch(index_text):
            return MISSING
        index = int(index_text)
        if index > _INT_MAX:
            return MISSING
        current = object_item(current, name)
        if not isinstance(current, list):
            return MISSING
        if index < 0:
            index += len(current)
        if not 0 <= index < len(current):
            return MISSING
        current = current[index]
    return current


def _value_text(value: Any, escape_json: bool) -> str:
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace('"', '\\"') if escape_json else value
    return cjson_print(value)


def expand(
    template: str,
    data: Any,
    escape_json: bool = False,
    *,
    nested: bool = True,
    unresolved: list[str] | None = None,
) -> str:
    """Expand `${…}` and `%{…}`; unresolved paths go to `unresolved` (for logs) and become ""."""
    parts: list[str] = []
    index = 0
    length = len(template)
    ends = _end_braces(template) if "{" in template else {}
    while index < length:
        char = template[index]
        if char not in "$%" or index + 1 >= length or template[index + 1] != "{":
            parts.append(char)
            index += 1
            continue
        end = ends.get(index + 1, -1)
        if end < 0:  # no closing brace: the text stays as written
            parts.append(char)
            index += 1
            continue
        if end == index + 2:  # ${} expands to nothing
            index = end + 1
            continue
        body = template[index + 2 : end]
        lowercase = encode = phone = False
        while True:
            head = ascii_lower(body[:7])
            if head.startswith("lc:"):
                body, lowercase = body[3:], True
            elif head == "fmt_ph:":
                body, phone = body[7:], True
            elif head.startswith("enc:"):
                body, encode = body[4:], True
            else:
                break
        path = body
        if nested and ("${" in path or "%{" in path):
            path = expand(path, data, escape_json, nested=False)
        value = lookup(data, path)
        if value is MISSING:
            if unresolved is not None:
                unresolved.append(path)
        else:
            text = _value_text(value, escape_json)
            # fixed order, whatever order the helpers are written in
            if phone and text:
                text = format_phone_national(text)
            if lowercase and text:
                text = ascii_lower(text)
            if encode and text:
                text = url_encode(text)
            parts.append(text)
        index = end + 1
    return "".join(parts)


def expand_json(value: Any, data: Any, unresolved: list[str] | None = None) -> Any:
    """Expand an output object as JSON text and parse it back (MISSING when it no longer parses)."""
    return cjson_parse(expand(cjson_print(value), data, escape_json=True, unresolved=unresolved))
