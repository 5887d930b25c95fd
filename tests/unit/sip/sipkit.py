"""Test helpers for the SIP unit tests: fixture loading and a scripted softphone peer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mssip.endpoint import SipEndpoint
from mssip.events import SipEvent
from mssip.message import Request, Response
from mssip.parser import parse_message

FIXTURES = Path(__file__).parent / "fixtures"
PEER = ("198.51.100.7", 40123)
SERVER = ("192.0.2.1", 5060)


def load_sip(name: str) -> bytes:
    """A .sip fixture with CRLF line ends; ``Content-Length: auto`` becomes the body's length."""
    text = (FIXTURES / name).read_text().replace("\r\n", "\n").replace("\n", "\r\n")
    head, _, body = text.partition("\r\n\r\n")
    head = re.sub(r"(?im)^(content-length|l)(\s*:\s*)auto(?=\r?$)", lambda m: f"{m[1]}{m[2]}{len(body.encode())}", head)
    return (head + "\r\n\r\n" + body).encode()


def load_sdp(name: str) -> bytes:
    return (FIXTURES / name).read_text().replace("\r\n", "\n").replace("\n", "\r\n").encode()


def drain(endpoint: SipEndpoint) -> list[SipEvent]:
    events = []
    while (event := endpoint.next_event()) is not None:
        events.append(event)
    return events


def sent(endpoint: SipEndpoint) -> list[tuple[Request | Response, tuple[str, int], str]]:
    return [(parse_message(data), addr, transport) for data, addr, transport in endpoint.datagrams_to_send()]


def responses(endpoint: SipEndpoint) -> list[Response]:
    out = []
    for message, _, _ in sent(endpoint):
        assert isinstance(message, Response), message
        out.append(message)
    return out


def statuses(endpoint: SipEndpoint) -> list[int]:
    return [r.status for r in responses(endpoint)]


@dataclass
class Phone:
    """A softphone that builds its side of a call as text; every request gets a fresh branch."""

    call_id: str = "a84b4c76e66710@pc33.example.com"
    from_tag: str = "1928301774"
    host: str = "10.0.0.23"  # what it writes in Via/Contact (private, as behind NAT)
    port: int = 5060
    transport: str = "UDP"
    record_route: list[str] = field(default_factory=list)
    _branches: int = 0

    def new_branch(self) -> str:
        self._branches += 1
        return f"z9hG4bK{self.from_tag}.{self._branches}"

    def request(
        self,
        method: str,
        *,
        cseq: int,
        branch: str | None = None,
        to_tag: str | None = None,
        body: bytes = b"",
        extra: tuple[tuple[str, str], ...] = (),
        cseq_method: str | None = None,
        uri: str = "sip:agent@192.0.2.1",
    ) -> bytes:
        branch = branch or self.new_branch()
        to = "<sip:agent@192.0.2.1>" + (f";tag={to_tag}" if to_tag else "")
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/{self.transport} {self.host}:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"To: {to}",
            f'From: "Alice" <sip:alice@example.com>;tag={self.from_tag}',
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {cseq_method or method}",
            f"Contact: <sip:alice@{self.host}:{self.port}>",
        ]
        lines += [f"Record-Route: {route}" for route in self.record_route]
        lines += [f"{name}: {value}" for name, value in extra]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def invite(self, body: bytes | None = None, **kw: object) -> bytes:
        return self.request("INVITE", cseq=1, body=load_sdp("baresip.sdp") if body is None else body, **kw)  # type: ignore[arg-type]

    def reply(self, request: Request, status: int, reason: str) -> bytes:
        """A response to a request the endpoint sent (our BYE)."""
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {via}" for via in request.headers.get_all("Via")]
        for name in ("From", "To", "Call-ID", "CSeq"):
            lines.append(f"{name}: {request.headers.get(name)}")
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()
