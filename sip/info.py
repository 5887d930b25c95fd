"""DTMF carried in SIP INFO bodies: ``application/dtmf-relay`` and ``application/dtmf``.

Theory of operation: neither format has an RFC of its own; both are de-facto standards that
Cisco, Asterisk, FreeSWITCH and the softphones agree on. ``application/dtmf-relay`` is lines of
``Name=value`` (``Signal=5`` and ``Duration=160``, in milliseconds; case and spacing vary, and
some senders write the events ``10`` and ``11`` for ``*`` and ``#``, as RFC 4733 numbers them).
``application/dtmf`` is the digit alone, or its RFC 4733 event number. ``parse_dtmf_info``
returns ``(digit, duration_ms)`` or raises ``ValueError`` naming the fault.
"""

from __future__ import annotations

DTMF_RELAY = "application/dtmf-relay"
DTMF = "application/dtmf"
INFO_TYPES = (DTMF_RELAY, DTMF)
DIGITS = "0123456789*#ABCD"
DEFAULT_DURATION_MS = 100  # what the sender meant when it says nothing (Cisco's default)


def _digit(text: str) -> str:
    text = text.strip().upper()
    if len(text) == 1 and text in DIGITS:
        return text
    if text.isdigit() and int(text) < len(DIGITS):
        return DIGITS[int(text)]  # RFC 4733 event code: 10 is '*', 11 '#', 12-15 'A'-'D'
    raise ValueError(f"not a DTMF digit: {text[:20]!r}")


def parse_dtmf_info(content_type: str, body: bytes) -> tuple[str, int]:
    """The digit and its duration in ms from an INFO body of one of ``INFO_TYPES``."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("DTMF INFO body is not ASCII") from None
    if content_type == DTMF:
        return _digit(text), DEFAULT_DURATION_MS
    if content_type != DTMF_RELAY:
        raise ValueError(f"not a DTMF INFO content type: {content_type}")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, eq, value = line.partition("=")
        if eq:
            fields[name.strip().lower()] = value.strip()
    if "signal" not in fields:
        raise ValueError("dtmf-relay body has no Signal line")
    duration = fields.get("duration", "")
    duration_ms = int(duration) if duration.isdigit() and 0 < int(duration) < 60_000 else DEFAULT_DURATION_MS
    return _digit(fields["signal"]), duration_ms
