"""What the UAS checks before it acts on a request, and small helpers of the endpoint.

Theory of operation: ``screen_request`` applies the RFC 3261 §8.2 checks in the RFC's order
(method, then headers, then content) and returns the refusal to send, or None when the request
may be dispatched. It reads only the request and the allowed methods, so the rules can be tested
and changed without touching the endpoint's state. The other helpers are pure functions on
messages: stamping the real source address into the top Via, reading the user part of a URI,
telling a session refresh from a changed offer, and making a safe reason phrase.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mssip.errors import SipParseError
from mssip.message import Request
from mssip.uri import parse_uri

Addr = tuple[str, int]

KNOWN_METHODS = frozenset(
    ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE",
     "INFO", "UPDATE", "PRACK", "PUBLISH"]
)  # fmt: skip
HANDLED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS")
REQUIRED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL")  # a UAS that takes calls must handle these
SUPPORTED_EXTENSIONS: tuple[str, ...] = ()  # option tags we implement (none yet: no 100rel, timer)
URI_SCHEMES = ("sip", "sips", "tel")
SDP = "application/sdp"


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)


def screen_request(request: Request, allow: tuple[str, ...]) -> Refusal | None:
    """RFC 3261 §8.2 checks before dispatch: the refusal to send, or None to go on."""
    method = request.method
    allow_header = [("Allow", ", ".join(allow))]
    if method not in KNOWN_METHODS:
        return Refusal(501, "Not Implemented", allow_header)
    if method not in allow:
        return Refusal(405, "Method Not Allowed", allow_header)
    if request.uri.split(":", 1)[0].lower() not in URI_SCHEMES:
        return Refusal(416, "Unsupported URI Scheme")
    max_forwards = request.headers.get("Max-Forwards")
    if max_forwards is not None and int(max_forwards) == 0:  # the parser checked it is digits
        return Refusal(483, "Too Many Hops")
    required = [tag for tag in request.headers.get_all("Require") if tag not in SUPPORTED_EXTENSIONS]
    if required and method != "CANCEL":  # §9.2: a CANCEL's Require is not checked
        return Refusal(420, "Bad Extension", [("Unsupported", ", ".join(required))])
    if method == "INVITE" and request.body:
        if request.content_type != SDP:
            return Refusal(415, "Unsupported Media Type", [("Accept", SDP)])
        encoding = (request.headers.get("Content-Encoding") or "identity").lower()
        if encoding != "identity":
            return Refusal(415, "Unsupported Media Type", [("Accept-Encoding", "identity")])
    return None


def stamp_via(request: Request, addr: Addr) -> None:
    """Record where the request really came from in its top Via (RFC 3261 §18.2.1, RFC 3581)."""
    try:
        via = request.top_via
    except SipParseError:
        return
    via.params["received"] = addr[0]
    via.params["rport"] = str(addr[1])
    request.headers.replace_first("Via", str(via))


def user_of(uri: str) -> str:
    try:
        return parse_uri(uri).user or ""
    except SipParseError:
        return ""


def same_session(offer: bytes, previous: bytes | None) -> bool:
    """RFC 3264 §8: an unchanged o= line (same session version) means an unchanged session."""

    def origin(sdp: bytes) -> bytes | None:
        return next((line.strip() for line in sdp.splitlines() if line.startswith(b"o=")), None)

    return previous is not None and origin(offer) is not None and origin(offer) == origin(previous)


def reason_phrase(text: str) -> str:
    return " ".join(text.split())[:120] or "Bad Request"
