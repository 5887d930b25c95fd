"""Small lexical helpers shared by the URI, header and SDP code.

Theory of operation: SIP header values are UTF-8 text in which separators (``,`` between list
values, ``;`` before parameters) may also appear inside double-quoted strings and, for ``,``,
inside ``<...>`` around a URI. These helpers split text on a separator only where it is outside
quotes (and brackets when asked), and read/write ``;name=value`` parameter lists. They raise
``ValueError``; the public parse functions turn that into a ``SipParseError`` naming the header.
"""

from __future__ import annotations

import string

# RFC 3261 §25.1 token characters.
TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")

Params = dict[str, str | None]


def is_token(text: str) -> bool:
    return bool(text) and frozenset(text) <= TOKEN_CHARS  # a set, not a loop: values may be 64 KiB


def split_outside_quotes(text: str, sep: str, *, angle: bool = False) -> list[str]:
    """Split ``text`` on ``sep`` where it is outside quoted strings (and ``<...>`` when ``angle``)."""
    if '"' not in text and not (angle and "<" in text):
        # Nothing to skip: str.split gives the same parts without a Python loop over each
        # character (a 64 KiB Via, parsed several times per request, cost a quarter second).
        return text.split(sep)
    parts: list[str] = []
    buf: list[str] = []
    in_quotes = escaped = False
    depth = 0
    for ch in text:
        if in_quotes:
            buf.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
            continue
        if ch == '"':
            in_quotes = True
        elif angle and ch == "<":
            depth += 1
        elif angle and ch == ">" and depth:
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    if in_quotes:
        raise ValueError("unterminated quoted string")
    parts.append("".join(buf))
    return parts


def parse_params(text: str) -> Params:
    """Read ``;a=b;c`` into ``{"a": "b", "c": None}``; names are lower-cased (they are case-insensitive)."""
    params: Params = {}
    for piece in split_outside_quotes(text, ";"):
        piece = piece.strip()
        if not piece:
            # Tolerate the leading ';' and stray ';;' some stacks emit.
            continue
        name, eq, value = piece.partition("=")
        name = name.strip().lower()
        if not is_token(name):
            raise ValueError(f"bad parameter name {name!r}")
        value = value.strip()
        if eq and not value.startswith('"') and any(ch in value for ch in ' \t,<>"'):
            raise ValueError(f"bad value for parameter {name!r}")
        params[name] = value if eq else None
    return params


def format_params(params: Params) -> str:
    return "".join(f";{name}" if value is None else f";{name}={value}" for name, value in params.items())


def unquote(text: str) -> str:
    """Remove the quotes and backslash escapes of a quoted string; plain text is returned stripped."""
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        out: list[str] = []
        escaped = False
        for ch in text[1:-1]:
            if escaped:
                out.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            else:
                out.append(ch)
        return "".join(out)
    return text


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
