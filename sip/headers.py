"""Header fields: an ordered multi-map plus the structured Via and CSeq values.

Theory of operation: ``Headers`` keeps every field in arrival order as ``(name, value)``.
Names are normalised on the way in: compact forms (``v``, ``i``, ``m``...) become full names and
known names get their canonical spelling (``call-id`` -> ``Call-ID``), so lookups are
case-insensitive and serialisation is predictable; unknown names keep the sender's spelling.
Values never contain CR or LF (the parser unfolds continuation lines; ``add``/``set`` refuse them,
which also stops header injection from application strings). Headers whose grammar is a
comma-separated list (Via, Contact, Route...) are split by the parser into one entry per value,
so ``get_all("Via")`` gives every hop in order however the sender grouped them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from mssip.errors import SipParseError
from mssip.grammar import Params, format_params, parse_params, split_outside_quotes
from mssip.uri import format_host, parse_hostport

COMPACT_FORMS = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
    "n": "Identity-Info",
}

_CANONICAL_NAMES = [
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Content-Length",
    "Content-Type",
    "Content-Encoding",
    "Content-Disposition",
    "Content-Language",
    "Max-Forwards",
    "Route",
    "Record-Route",
    "Allow",
    "Supported",
    "Require",
    "Proxy-Require",
    "Unsupported",
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "User-Agent",
    "Server",
    "Expires",
    "Min-Expires",
    "WWW-Authenticate",
    "Authorization",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Authentication-Info",
    "Retry-After",
    "Timestamp",
    "Subject",
    "Date",
    "Warning",
    "Event",
    "Refer-To",
    "Referred-By",
    "Allow-Events",
    "Session-Expires",
    "Min-SE",
    "RSeq",
    "RAck",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Remote-Party-ID",
    "Diversion",
    "Reason",
    "Organization",
    "Priority",
    "Reply-To",
    "MIME-Version",
    "Call-Info",
    "Alert-Info",
    "Error-Info",
    "In-Reply-To",
    "Identity",
    "Identity-Info",
    "Accept-Contact",
    "Reject-Contact",
    "Request-Disposition",
    "Path",
    "Service-Route",
    "Replaces",
]
CANONICAL = {name.lower(): name for name in _CANONICAL_NAMES}

# Headers whose grammar is a comma-separated list of values (RFC 3261 §7.3.1). The auth headers,
# Date, Warning-free text and unknown headers are *not* split: commas there are not separators.
LIST_HEADERS = frozenset(
    name.lower()
    for name in [
        "Via",
        "Contact",
        "Route",
        "Record-Route",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Content-Encoding",
        "Allow-Events",
        "Path",
        "Service-Route",
        "Call-Info",
        "Alert-Info",
        "Error-Info",
        "In-Reply-To",
        "P-Asserted-Identity",
        "Diversion",
    ]
)


_CANONICAL_CACHE: dict[str, str] = {}


def canonical_name(name: str) -> str:
    cached = _CANONICAL_CACHE.get(name)
    if cached is not None:
        return cached
    stripped = name.strip()
    lower = stripped.lower()
    result = COMPACT_FORMS[lower] if lower in COMPACT_FORMS else CANONICAL.get(lower, stripped)
    if len(_CANONICAL_CACHE) < 4096:  # bounded: peers may invent any number of header names
        _CANONICAL_CACHE[name] = result
    return result


def split_list_value(name: str, value: str) -> list[str]:
    """Split a list header's value into its elements (a no-op for other headers)."""
    if canonical_name(name).lower() not in LIST_HEADERS or "," not in value:
        return [value]
    try:
        parts = split_outside_quotes(value, ",", angle=True)
    except ValueError:
        return [value]  # leave it whole; the header's own parser will report the fault
    return [part.strip() for part in parts if part.strip()]


def _check_value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("header values may not contain CR or LF")
    return value


class Headers:
    """Ordered multi-map of header fields with case-insensitive, compact-form-aware lookup."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), _check_value(v)) for n, v in items]

    @staticmethod
    def _key(name: str) -> str:
        return canonical_name(name).lower()

    def get(self, name: str, default: str | None = None) -> str | None:
        key = self._key(name)
        for item_name, value in self._items:
            if item_name.lower() == key:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        key = self._key(name)
        return [value for item_name, value in self._items if item_name.lower() == key]

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), _check_value(value)))

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name by one, kept at the first one's position."""
        key, name = self._key(name), canonical_name(name)
        _check_value(value)
        out: list[tuple[str, str]] = []
        placed = False
        for item in self._items:
            if item[0].lower() != key:
                out.append(item)
            elif not placed:
                out.append((name, value))
                placed = True
        if not placed:
            out.append((name, value))
        self._items = out

    def prepend(self, name: str, value: str) -> None:
        """Insert before the first field of this name (or at the top): how a hop adds its Via."""
        key = self._key(name)
        index = next((i for i, (n, _) in enumerate(self._items) if n.lower() == key), 0)
        self._items.insert(index, (canonical_name(name), _check_value(value)))

    def replace_first(self, name: str, value: str) -> None:
        key = self._key(name)
        for i, (item_name, _) in enumerate(self._items):
            if item_name.lower() == key:
                self._items[i] = (item_name, _check_value(value))
                return
        raise KeyError(name)

    def remove(self, name: str) -> int:
        key = self._key(name)
        before = len(self._items)
        self._items = [item for item in self._items if item[0].lower() != key]
        return before - len(self._items)

    def copy(self) -> Headers:
        clone = Headers()
        clone._items = list(self._items)
        return clone

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(n.lower(), v) for n, v in self._items] == [(n.lower(), v) for n, v in other._items]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


_TOKEN = r"[A-Za-z0-9.!%*_+`'~-]+"
_VIA = re.compile(rf"^\s*({_TOKEN})\s*/\s*([A-Za-z0-9.]+)\s*/\s*({_TOKEN})\s+(.*)$")


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...;rport;received=...``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        value = self.params.get("rport")
        return int(value) if value and value.isdigit() else None

    @property
    def sent_by(self) -> str:
        return format_host(self.host) + (f":{self.port}" if self.port is not None else "")

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"


def parse_via(text: str) -> Via:
    match = _VIA.match(text)
    if not match:
        raise SipParseError("bad Via header")
    name, version, transport, rest = match.groups()
    hostport, _, params = rest.partition(";")
    try:
        host, port = parse_hostport(hostport)
        parsed = parse_params(params)
    except ValueError:
        raise SipParseError("bad Via header") from None
    return Via(transport.upper(), host, port, parsed, f"{name.upper()}/{version}")


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


_CSEQ = re.compile(r"^\s*(\d{1,10})\s+([A-Za-z0-9.!%*_+`'~-]+)\s*$")


def parse_cseq(text: str) -> CSeq:
    match = _CSEQ.match(text)
    # RFC 3261 §8.1.1.5: the number is a 32-bit unsigned integer below 2**31.
    if not match or int(match.group(1)) >= 2**31:
        raise SipParseError("bad CSeq")
    return CSeq(int(match.group(1)), match.group(2))
