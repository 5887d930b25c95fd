"""What the UAS checks before it acts on a request, and small helpers of the endpoint.

Theory of operation: ``screen_request`` first refuses with 400 what parsed but is still
malformed for a UA (a To that is no SIP/SIPS/tel URI, a Date not in GMT: RFC 4475 §3.3.4,
§3.1.2.12), then applies the RFC 3261 §8.2 checks in the RFC's order (method, then headers,
then content) and returns the refusal to send, or None when the request may be dispatched.
It reads only the request and the allowed methods, so the rules can be tested and changed
without touching the endpoint's state. The other helpers are pure functions on
messages: stamping the real source address into the top Via, reading the user part of a URI,
telling a session refresh from a changed offer, and making a safe reason phrase.
"""

from __future__ import annotations

import re
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

# RFC 3261 §20.17, §25.1: SIP-date = rfc1123-date = wkday "," SP 2DIGIT SP month SP 4DIGIT SP
# time SP "GMT". Day and month names are read case-blind; the zone must be GMT (RFC 4475 §3.1.2.12).
_SIP_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3]\d (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"[0-2]\d:[0-5]\d:(?:[0-5]\d|60) GMT",
    re.IGNORECASE,
)
_SCHEME_NAME = re.compile(r"[a-z][a-z0-9+.\-]*")


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)


def screen_request(request: Request, allow: tuple[str, ...]) -> Refusal | None:
    """RFC 3261 §8.2 checks before dispatch: the refusal to send, or None to go on.

    First the faults that make the request malformed for a UA even though it parsed (400,
    like a parse fault, before the method is looked at): a To that is no SIP, SIPS or tel
    address (RFC 4475 §3.3.4: not an address a UAS or registrar can be) and a Date that is not
    a SIP-date in GMT (RFC 4475 §3.1.2.12)."""
    method = request.method
    fault = _malformed(request)
    if fault is not None:
        return Refusal(400, fault)
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


def _malformed(request: Request) -> str | None:
    """The reason phrase of a 400 for a request the parser accepted but a UA cannot act on."""
    try:
        to_uri = request.to_addr.uri
    except SipParseError:
        return "bad To header"  # the parser checked it; only a request built by hand gets here
    scheme = to_uri.split(":", 1)[0].lower() if ":" in to_uri else ""
    if scheme not in URI_SCHEMES:
        shown = scheme[:20] if _SCHEME_NAME.fullmatch(scheme) else "?"  # it goes into our reason phrase
        return f"unsupported URI scheme in To header: {shown}"
    for value in request.headers.get_all("Date"):
        if not _SIP_DATE.fullmatch(value.strip()):
            return "bad Date header: not an RFC 1123 date in GMT"
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
