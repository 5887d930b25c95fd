"""The SIP message model: ``Request`` and ``Response``.

Theory of operation: a message is a start line, an ordered ``Headers`` multi-map and a byte
body. Structured views (``cseq``, ``vias``, ``from_addr``...) parse the header text on demand, so a
message built by hand or received from the wire behaves the same and nothing goes stale when a
header is edited. ``serialize()`` always writes a Content-Length equal to ``len(body)`` (needed for
TCP framing, and it overrides whatever the header said). ``make_response`` builds a response to a
request as RFC 3261 §8.2.6 says: Via, From, To, Call-ID and CSeq copied, a To tag added on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mssip.errors import SipParseError
from mssip.headers import CSeq, Headers, Via, parse_cseq, parse_via
from mssip.uri import NameAddress, parse_name_addr


class _MessageViews:
    """Read-only structured views shared by requests and responses."""

    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> CSeq:
        return parse_cseq(self.headers.get("CSeq") or "")

    @property
    def vias(self) -> list[Via]:
        return [parse_via(value) for value in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        return parse_via(self.headers.get("Via") or "")

    @property
    def from_addr(self) -> NameAddress:
        return parse_name_addr(self.headers.get("From") or "")

    @property
    def to_addr(self) -> NameAddress:
        return parse_name_addr(self.headers.get("To") or "")

    @property
    def content_type(self) -> str | None:
        """The media type, lower-cased and without parameters (``application/sdp``)."""
        value = self.headers.get("Content-Type")
        return value.split(";")[0].strip().lower() if value else None

    def _serialize(self, start_line: str) -> bytes:
        lines = [start_line]
        wrote_length = False
        for name, value in self.headers:
            if name == "Content-Length":
                if wrote_length:
                    continue
                value, wrote_length = str(len(self.body)), True
            lines.append(f"{name}: {value}")
        if not wrote_length:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass(eq=True)
class Request(_MessageViews):
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def serialize(self) -> bytes:
        return self._serialize(f"{self.method} {self.uri} {self.version}")


@dataclass(eq=True)
class Response(_MessageViews):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    @property
    def is_provisional(self) -> bool:
        return 100 <= self.status < 200

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def serialize(self) -> bytes:
        if "\r" in self.reason or "\n" in self.reason:
            raise ValueError("reason phrase may not contain CR or LF")
        return self._serialize(f"{self.version} {self.status} {self.reason}")


def make_response(request: Request, status: int, reason: str, *, to_tag: str | None = None) -> Response:
    """A response to ``request`` (RFC 3261 §8.2.6); ``to_tag`` is added only if To has no tag yet.

    Header values are copied as text, so this also works on a request that failed to parse in
    full (the 400 for a bad CSeq still echoes the bad CSeq, which is what the sender matches on).
    """
    headers = Headers()
    for value in request.headers.get_all("Via"):
        headers.add("Via", value)
    for name in ("From", "To", "Call-ID", "CSeq"):
        copied = request.headers.get(name)
        if copied is None:
            continue
        if name == "To" and to_tag and status > 100 and not _has_tag(copied):
            copied = f"{copied};tag={to_tag}"
        headers.add(name, copied)
    timestamp = request.headers.get("Timestamp")
    if status == 100 and timestamp:
        headers.add("Timestamp", timestamp)  # RFC 3261 §8.2.6.1
    return Response(status, reason, headers)


def _has_tag(value: str) -> bool:
    try:
        return parse_name_addr(value).tag is not None
    except SipParseError:
        return ";tag=" in value.replace(" ", "").lower()
