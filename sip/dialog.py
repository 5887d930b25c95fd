"""The dialog state of RFC 3261 §12, seen from the UAS side.

Theory of operation: a dialog is created from the INVITE that starts it and is identified by
Call-ID, our tag (the To tag we put in our responses) and the peer's tag (its From tag). It
holds what we need to send requests inside it: the peer's Contact (remote target), the route set
copied from Record-Route, both CSeq counters, and the address and transport the peer's requests
arrive from. Our requests go to that address, not to the Contact host: symmetric signalling keeps
working when the peer is behind NAT and advertises a private address. The From/To values of our
requests are the INVITE's To/From texts with the tags, so display names and parameters survive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mssip.errors import SipParseError
from mssip.headers import Headers
from mssip.message import Request, Response
from mssip.uri import parse_name_addr

Addr = tuple[str, int]


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_party: str  # From value of our requests: the INVITE's To plus our tag
    remote_party: str  # To value of our requests: the INVITE's From (with the peer's tag)
    remote_target: str  # URI of the peer's Contact
    remote_addr: Addr
    transport: str
    remote_cseq: int
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0  # our first request uses 1 (RFC 3261 §12.1.1 leaves the choice to us)

    @classmethod
    def from_invite(cls, invite: Request, local_tag: str, addr: Addr, transport: str) -> Dialog:
        """Build the dialog of ``invite``; raises SipParseError when its Contact is unusable."""
        # RFC 2543 INVITEs may lack Contact (RFC 4475 §3.4.1): the From URI is the target then.
        contact = invite.headers.get("Contact") or invite.headers.get("From")
        if contact is None:
            raise SipParseError("missing Contact header")
        try:
            target = parse_name_addr(contact).uri
        except SipParseError:
            raise SipParseError("bad Contact header") from None
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=invite.from_addr.tag or "",
            local_party=f"{invite.headers.get('To')};tag={local_tag}",
            remote_party=invite.headers.get("From") or "",
            remote_target=target,
            remote_addr=addr,
            transport=transport,
            remote_cseq=invite.cseq.number,
            # RFC 3261 §12.1.1: the UAS keeps the Record-Route values in their order.
            route_set=invite.headers.get_all("Record-Route"),
        )

    @classmethod
    def from_2xx(cls, invite: Request, response: Response, addr: Addr, transport: str) -> Dialog:
        """The UAC's dialog from our INVITE and its 2xx (§12.1.2): route set reversed, target from
        the 2xx Contact (the Request-URI when a sloppy peer sent none). Requests go to ``addr``,
        where the INVITE went (the proxy, when there is one)."""
        try:
            target = parse_name_addr(response.headers.get("Contact") or "").uri
        except SipParseError:
            target = invite.uri
        return cls(
            call_id=invite.call_id,
            local_tag=invite.from_addr.tag or "",
            remote_tag=response.to_addr.tag or "",
            local_party=invite.headers.get("From") or "",
            remote_party=response.headers.get("To") or "",
            remote_target=target,
            remote_addr=addr,
            transport=transport,
            remote_cseq=0,
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            # The 2xx's ACK carries the INVITE's CSeq number: build_request adds one.
            local_cseq=invite.cseq.number - 1,
        )

    def matches(self, request: Request) -> bool:
        """True when ``request`` belongs to this dialog (its To tag is ours, its From tag the peer's)."""
        return (
            request.call_id == self.call_id
            and request.to_addr.tag == self.local_tag
            and (request.from_addr.tag or "") == self.remote_tag
        )

    def accept_remote_cseq(self, number: int) -> bool:
        """RFC 3261 §12.2.2: a request with a lower CSeq than the last one is out of order."""
        if number < self.remote_cseq:
            return False
        self.remote_cseq = number
        return True

    def build_request(self, method: str, via: str, *, max_forwards: int = 70) -> Request:
        """A new request inside the dialog (RFC 3261 §12.2.1.1); increments our CSeq."""
        self.local_cseq += 1
        target, routes = self.remote_target, list(self.route_set)
        if routes and not _is_loose_route(routes[0]):
            # A strict router wants its own URI as Request-URI and the target as the last route.
            target = parse_name_addr(routes[0]).uri
            routes = [*routes[1:], f"<{self.remote_target}>"]
        headers = Headers(
            [
                ("Via", via),
                ("Max-Forwards", str(max_forwards)),
                ("From", self.local_party),
                ("To", self.remote_party),
                ("Call-ID", self.call_id),
                ("CSeq", f"{self.local_cseq} {method}"),
            ]
        )
        for route in routes:
            headers.add("Route", route)
        return Request(method, target, headers)


def _is_loose_route(route: str) -> bool:
    try:
        return "lr" in parse_name_addr(route).sip_uri().params
    except SipParseError:
        return True  # unreadable: do not rewrite the Request-URI on a guess
