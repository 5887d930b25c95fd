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
    [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
        "MESSAGE",
        "INFO",
        "UPDATE",
        "PRACK",
        "PUBLISH",
    ]
)
HANDLED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO", "NOTIFY")
REQUIRED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL")  # a UAS that takes calls must handle these
SUPPORTED_EXTENSIONS: tuple[str, ...] = ("timer",)  # RFC 4028, minimally (see session_timer)
MIN_SE_S = 90  # RFC 4028 §4: the smallest session interval we accept
URI_SCHEMES = ("sip", "sips", "tel")
OFFER_METHODS = ("INVITE", "UPDATE")  # requests whose body is an SDP offer
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
    # Max-Forwards 0 is a proxy's business (483); a UAS processes the request (RFC 4475 §3.3.11).
    required = [tag for tag in request.headers.get_all("Require") if tag not in SUPPORTED_EXTENSIONS]
    if required and method != "CANCEL":  # §9.2: a CANCEL's Require is not checked
        return Refusal(420, "Bad Extension", [("Unsupported", ", ".join(required))])
    expires = request.headers.get("Session-Expires")
    if method in OFFER_METHODS and expires is not None:
        seconds = expires.split(";")[0].strip()
        if seconds.isdigit() and int(seconds) < MIN_SE_S:
            return Refusal(422, "Session Interval Too Small", [("Min-SE", str(MIN_SE_S))])
    if method in OFFER_METHODS and not _accepts_sdp(request.headers.get_all("Accept")):
        return Refusal(406, "Not Acceptable", [("Accept", SDP)])  # RFC 4475 §3.3.15
    if method in OFFER_METHODS and request.body:
        if request.content_type != SDP:
            return Refusal(415, "Unsupported Media Type", [("Accept", SDP)])
        encoding = (request.headers.get("Content-Encoding") or "identity").lower()
        if encoding != "identity":
            return Refusal(415, "Unsupported Media Type", [("Accept-Encoding", "identity")])
    return None


def _accepts_sdp(accept: list[str]) -> bool:
    """True without Accept (SDP is the default, §20.1) or when one of its ranges covers SDP."""
    if not accept:
        return True
    ranges = {value.split(";")[0].strip().lower() for value in accept}
    return bool(ranges & {SDP, "application/*", "*/*"}) or ranges == {""}


def session_timer(request: Request) -> str | None:
    """The Session-Expires for our 2xx to ``request`` (RFC 4028, minimally), or None.

    We echo the caller's interval and let the caller refresh (``refresher=uac``) unless it
    asked us to; we never send refreshes ourselves and never tear a call down on expiry, which
    RFC 4028 allows of the side that is not the refresher."""
    value = request.headers.get("Session-Expires")
    if value is None:
        return None
    seconds, _, params = value.partition(";")
    if not seconds.strip().isdigit():
        return None
    refresher = "uas" if "refresher=uas" in params.replace(" ", "").lower() else "uac"
    return f"{seconds.strip()};refresher={refresher}"


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
