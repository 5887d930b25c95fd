"""Bytes to ``Request | Response``, and a framer that cuts a TCP byte stream into messages.

Theory of operation: ``parse_message`` reads one complete message (a UDP datagram, or one frame
from ``StreamFramer``). It is lenient where RFC 3261 asks receivers to be (leading CRLFs, bare LF
line ends, folded lines, spaces around the colon, compact header names, comma-grouped Via values,
unknown headers) and strict where a wrong value would mislead the transaction layer (missing or
malformed Via/From/To/Call-ID/CSeq, a CSeq method that differs from the request method, a
Content-Length larger than the body). Every fault raises ``SipParseError`` whose ``reason`` reads
as a reason phrase; once the start line and headers were read, ``partial`` carries them so the
endpoint can still address a 400 to the sender. A body longer than Content-Length is cut to it
(RFC 3261 §18.3); a missing Content-Length means "the rest of the datagram".
"""

from __future__ import annotations

import re

from mssip.errors import SipParseError
from mssip.grammar import is_token
from mssip.headers import Headers, parse_cseq, parse_via, split_list_value
from mssip.message import Request, Response
from mssip.transaction import MAGIC_COOKIE
from mssip.uri import parse_name_addr

MANDATORY_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")
SINGLETON_HEADERS = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length")

# RFC 3261 §25.1: exactly one SP between the three elements and none after (RFC 4475 §3.1.2.9-10).
_REQUEST_LINE = re.compile(r"^([A-Za-z0-9.!%*_+`'~-]+) (\S+) (SIP/\d+\.\d+)$", re.IGNORECASE)
_STATUS_LINE = re.compile(r"^(SIP/\d+\.\d+) (\d{3})(?: ([^\r\n]*))?$", re.IGNORECASE)  # RFC 3261: no CR in a reason
_QUOTED_PAIR = re.compile(r"\\[\x00-\x7f]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_URI_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
# \r?: the head keeps its CRLFs, and "$" matches only before LF (a Content-Length that was not the
# last header was missed, so its body was framed as the start of the next message).
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\S*)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


def _split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Split at the first empty line (CRLFCRLF, or LFLF from sloppy senders)."""
    candidates = [(i, 4) for i in [data.find(b"\r\n\r\n")] if i >= 0]
    candidates += [(i, 2) for i in [data.find(b"\n\n")] if i >= 0]
    if not candidates:
        return None
    end, sep = min(candidates)
    return data[:end], data[end + sep :]


# Bodies we act on are SDP (a few KiB) or DTMF INFO; anything larger is refused with 413.
MAX_BODY_BYTES = 32 * 1024
# Headers whose value is a delta-seconds (RFC 3261 §25.1: at most 2**32 - 1).
_DELTA_SECONDS = ("Expires", "Min-Expires", "Session-Expires", "Min-SE")


def parse_message(data: bytes, *, max_body_bytes: int = MAX_BODY_BYTES) -> Request | Response:
    """Parse one whole message; ``max_body_bytes`` bounds Content-Length (413 beyond it)."""
    data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message")
    split = _split_head(data)
    # No empty line at all: a datagram of headers only (UDP keeps datagrams whole, so accept it).
    head_bytes, body = split if split is not None else (data, b"")
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header section is not valid UTF-8") from None
    lines = [line.rstrip("\r") for line in head.split("\n")]

    headers, line_fault = _parse_header_lines(lines[1:])
    try:
        message = _parse_start_line(lines[0])
    except SipParseError as err:
        # A request whose start line is malformed still gets its 400 when its headers can
        # address one (RFC 4475 §3.1.2.7-10); a bad status line has nobody to answer.
        method = lines[0].split(" ", 1)[0]
        if lines[0][:4].upper() == "SIP/" or not is_token(method) or not all(n in headers for n in MANDATORY_HEADERS):
            raise
        raise SipParseError(err.reason, partial=Request(method, "", headers)) from None
    # Control characters may only appear escaped as a quoted-pair (RFC 3261 §25.1, RFC 4475
    # §3.1.2.2 intmeth); elsewhere they are a fault (and would reach our logs).
    if _CONTROL.search(_QUOTED_PAIR.sub("", head)):
        # RFC 3261 grammar has no control characters in headers; they would also reach our logs.
        line_fault = line_fault or "control character in header"
    message.headers = headers

    if message.version.upper() != "SIP/2.0":
        raise SipParseError(f"SIP version {message.version} not supported", status=505, partial=message)
    if line_fault:
        raise SipParseError(line_fault, partial=message)
    try:
        _validate_headers(message)
        message.body = _cut_body(headers, body, max_body_bytes)
    except _Fault as fault:
        raise SipParseError(fault.reason, partial=message) from None
    except _TooLarge as fault:
        raise SipParseError(str(fault), status=413, partial=message) from None
    return message


class _Fault(Exception):
    """Raised inside validation; ``parse_message`` re-raises it with the partial message attached."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse_start_line(line: str) -> Request | Response:
    if line[:4].upper() == "SIP/":
        match = _STATUS_LINE.match(line)
        if not match or not 100 <= int(match.group(2)) <= 699:
            raise SipParseError("bad status line")
        return Response(int(match.group(2)), match.group(3) or "", Headers(), b"", match.group(1).upper())
    match = _REQUEST_LINE.match(line)
    if not match:
        raise SipParseError("bad request line")
    method, uri, version = match.groups()
    return Request(method, uri, Headers(), b"", version.upper())


def _parse_header_lines(lines: list[str]) -> tuple[Headers, str | None]:
    """Unfold and split header lines; a bad line is skipped and reported, the others are kept."""
    fields: list[str] = []
    fault: str | None = None
    for line in lines:
        if "\r" in line:
            fault = fault or "malformed header line: bare CR"
            continue
        if line[:1] in (" ", "\t"):
            if fields:
                fields[-1] += " " + line.strip()  # RFC 3261 §7.3.1: folding is equivalent to one SP
            else:
                fault = fault or "malformed header line: continuation before first header"
        elif line.strip():
            fields.append(line)
    headers = Headers()
    for text in fields:
        name, colon, value = text.partition(":")
        name = name.strip()
        if not colon or not is_token(name):
            fault = fault or "malformed header line"
            continue
        for part in split_list_value(name, value.strip()):
            headers.add(name, part)
    return headers, fault


def _validate_headers(message: Request | Response) -> None:
    headers = message.headers
    missing = [name for name in MANDATORY_HEADERS if headers.get(name) is None]
    if missing:
        names = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
        raise _Fault(f"missing {names} header{'s' if len(missing) > 1 else ''}")
    for name in SINGLETON_HEADERS:
        if len(headers.get_all(name)) > 1:
            raise _Fault(f"more than one {name} header")
    try:
        cseq = parse_cseq(headers.get("CSeq") or "")
    except SipParseError:
        raise _Fault("bad CSeq") from None
    if isinstance(message, Request):
        if cseq.method != message.method:
            raise _Fault(f"CSeq method {cseq.method} does not match request method {message.method}")
        if not _URI_START.match(message.uri):
            raise _Fault("bad Request-URI")
        scheme, _, rest = message.uri.partition(":")
        # '?' may appear in the user part (RFC 4475 §3.1.2.2); after the '@' it starts headers.
        if scheme.lower() in ("sip", "sips") and "?" in rest[rest.find("@") + 1 :]:
            # RFC 3261 §19.1.5: headers in a Request-URI are not allowed (RFC 4475 §3.1.2.11).
            raise _Fault("Request-URI has a headers component")
    if not (headers.get("Call-ID") or "").strip():
        raise _Fault("empty Call-ID header")
    try:
        for value in headers.get_all("Via"):
            parse_via(value)
    except SipParseError:
        raise _Fault("bad Via header") from None
    if isinstance(message, Request) and message.top_via.branch == MAGIC_COOKIE:
        # The RFC 3261 cookie with no identifier after it (RFC 4475 §3.2.1): no transaction key.
        raise _Fault("Via branch is the magic cookie alone")
    for name in ("From", "To"):
        try:
            parse_name_addr(headers.get(name) or "")
        except SipParseError:
            raise _Fault(f"bad {name} header") from None
    for value in headers.get_all("Contact"):
        if value.strip() == "*" and isinstance(message, Request) and message.method == "REGISTER":
            continue
        try:
            contact = parse_name_addr(value)
        except SipParseError:
            raise _Fault("bad Contact header") from None
        expires = contact.params.get("expires")
        if expires is not None and not _is_delta_seconds(expires):
            raise _Fault("bad Contact expires parameter")
    for name in _DELTA_SECONDS:
        for value in headers.get_all(name):
            if not _is_delta_seconds(value.split(";")[0].strip()):
                raise _Fault(f"bad {name} header")
    max_forwards = headers.get("Max-Forwards")
    if max_forwards is not None and not (
        max_forwards.isascii()  # "²" passes isdigit() but not int(), nor do more than 4300 digits
        and max_forwards.isdigit()
        and len(max_forwards.lstrip("0")) <= 3
        and int(max_forwards) <= 255
    ):
        raise _Fault("bad Max-Forwards")


class _TooLarge(Exception):
    """The declared body is over the limit: 413, not 400 (RFC 3261 §21.4.11)."""


def _is_delta_seconds(text: str) -> bool:
    # isascii: str.isdigit() is also true of '²' and other digits that int() refuses.
    return text.isascii() and text.isdigit() and len(text) <= 10 and int(text) < 2**32


def _cut_body(headers: Headers, body: bytes, max_body_bytes: int) -> bytes:
    declared = headers.get("Content-Length")
    if declared is None:
        if len(body) > max_body_bytes:
            raise _TooLarge(f"body of {len(body)} bytes exceeds limit {max_body_bytes}")
        return body
    if not (declared.isascii() and declared.isdigit()):
        raise _Fault("bad Content-Length")
    if len(declared.lstrip("0")) > 10:  # over any limit, and int() refuses more than 4300 digits
        raise _TooLarge(f"Content-Length of {len(declared)} digits exceeds limit {max_body_bytes}")
    length = int(declared)
    if length > max_body_bytes:
        raise _TooLarge(f"Content-Length {length} exceeds limit {max_body_bytes}")
    if length > len(body):
        raise _Fault(f"Content-Length {length} exceeds body {len(body)} bytes")
    return body[:length]


class StreamFramer:
    """Cut a stream-transport (TCP/TLS) byte stream into whole messages by Content-Length.

    ``feed`` returns the complete messages found so far (each ready for ``parse_message``) and
    keeps the remainder. CRLFs between messages (RFC 5626 keep-alive pings) are skipped. A header
    section or body over the limits, or an unreadable Content-Length, raises ``SipParseError``: the
    stream has lost its framing and the glue must close the connection.
    """

    def __init__(self, max_header_bytes: int = 65536, max_body_bytes: int = 1 << 20) -> None:
        self._buffer = bytearray()
        self._max_header_bytes = max_header_bytes
        self._max_body_bytes = max_body_bytes

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        messages: list[bytes] = []
        while True:
            start = 0
            while start < len(self._buffer) and self._buffer[start] in b"\r\n":
                start += 1
            del self._buffer[:start]
            split = _split_head(bytes(self._buffer))
            if split is None:
                if len(self._buffer) > self._max_header_bytes:
                    raise SipParseError(f"header section exceeds {self._max_header_bytes} bytes")
                return messages
            head, rest = split
            length = _stream_content_length(head)
            if length > self._max_body_bytes:
                raise SipParseError(f"Content-Length {length} exceeds limit {self._max_body_bytes}")
            if len(rest) < length:
                return messages
            total = len(self._buffer) - len(rest) + length
            messages.append(bytes(self._buffer[:total]))
            del self._buffer[:total]

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a message."""
        return len(self._buffer)


def _stream_content_length(head: bytes) -> int:
    match = _CONTENT_LENGTH.search(head)
    if match is None:
        return 0  # RFC 3261 §18.3 requires it on streams; treat absence as an empty body
    if not match.group(1).isdigit() or len(match.group(1).lstrip(b"0")) > 10:  # int() refuses > 4300 digits
        raise SipParseError("bad Content-Length")
    return int(match.group(1))
