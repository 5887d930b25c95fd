"""The four RFC 4475 cases the server used to get wrong, each through the real UAS (``SipEndpoint``)
with the exact response code the RFC asks for: §3.3.1 insuf (400 although From, To and Call-ID
are missing), §3.3.4 unksm2 (400 for a To that is no SIP URI, not the method's 405), §3.3.3
novelsc (416, answered over the transport it came on although its Via says TCP) and §3.1.2.12
baddate (400 for a Date that is not GMT). test_rfc4475.py runs every fixture; these look closer."""

from __future__ import annotations

from mssip.endpoint import SipEndpoint
from mssip.errors import SipParseError
from mssip.events import InviteReceived, MessageRejected
from mssip.message import Response
from mssip.parser import parse_message
from tests.unit.sip.sipkit import PEER, drain
from tests.unit.sip.test_rfc4475 import load


def exchange(data: bytes, transport: str = "udp") -> tuple[list[tuple[Response, tuple[str, int], str]], list[object]]:
    """Feed one message to a fresh endpoint: what it sent (read loosely, as a 400 may echo a
    faulty request) and the events it reported."""
    ep = SipEndpoint("192.0.2.1", 5060)
    ep.receive_datagram(data, PEER, 0.0, transport)
    sent = []
    for wire, addr, how in ep.datagrams_to_send():
        try:
            message = parse_message(wire)
        except SipParseError as err:
            message = err.partial  # type: ignore[assignment]
        assert isinstance(message, Response)
        sent.append((message, addr, how))
    return sent, list(drain(ep))


def test_insuf_missing_from_to_call_id_is_answered_400_by_its_via() -> None:
    """§3.3.1: "Ideally, it will respond with a 400 Bad Request error"; the answer goes where
    the Via says and carries what the sender matches on (branch, CSeq)."""
    [(response, addr, transport)], events = exchange(load("insuf"))
    assert response.status == 400
    assert response.reason == "missing From, To and Call-ID headers"
    assert (addr, transport) == (PEER, "udp")
    assert response.top_via.branch == "z9hG4bKkdj.insuf"
    assert response.top_via.params["received"] == PEER[0] and response.top_via.params["rport"] == str(PEER[1])
    assert response.headers.get("CSeq") == "193942 INVITE"
    assert [response.headers.get(n) for n in ("From", "To", "Call-ID")] == [None, None, None]  # none to copy
    [rejected] = events
    assert rejected == MessageRejected(400, response.reason, PEER, "INVITE", None)
    assert rejected.responded


def test_insuf_over_tcp_is_answered_on_the_connection() -> None:
    [(response, addr, transport)], _ = exchange(load("insuf"), "tcp")
    assert (response.status, addr, transport) == (400, PEER, "tcp")


def test_a_bad_request_line_without_mandatory_headers_is_still_dropped() -> None:
    """Noise is not answered: a 400 needs a request line that parsed (insuf's did) or, for a
    bad one, every mandatory header."""
    noise = b"INVITE  sip:user@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKx\r\n\r\n"
    sent, [rejected] = exchange(noise)
    assert sent == []
    assert isinstance(rejected, MessageRejected) and not rejected.responded


def test_unksm2_to_with_an_unknown_scheme_is_400_not_405() -> None:
    """§3.3.4: a To that is no SIP or SIPS URI gets 400 (a registrar's answer; as a UAS the
    To must name a SIP, SIPS or tel address), checked before the method's 405."""
    [(response, addr, _)], events = exchange(load("unksm2"))
    assert response.status == 400
    assert response.reason == "unsupported URI scheme in To header: isbn"
    assert addr == PEER
    assert response.headers.get("Allow") is None  # not the 405's
    [rejected] = events
    assert isinstance(rejected, MessageRejected) and rejected.status == 400 and rejected.method == "REGISTER"


def test_a_to_with_a_sip_sips_or_tel_uri_is_taken() -> None:
    invite = load("esc01")
    original = parse_message(invite)
    to = original.headers.get("To") or ""
    for uri in ("<tel:+15550100>", "<sips:user@example.com>"):
        data = invite.replace(f"To: {to}".encode(), f"To: {uri}".encode())
        sent, events = exchange(data)
        assert [r.status for r, _, _ in sent] == [100], uri
        assert any(isinstance(e, InviteReceived) for e in events)
    data = invite.replace(f"To: {to}".encode(), b"To: <mailto:user@example.com>")
    sent, _ = exchange(data)
    assert [(r.status, r.reason) for r, _, _ in sent] == [(400, "unsupported URI scheme in To header: mailto")]


def test_novelsc_unknown_request_uri_scheme_is_416_over_the_transport_it_came_on() -> None:
    """§3.3.3: "respond with a 416"; the Via says TCP, but over UDP the answer goes back by UDP
    to the source (RFC 3581, as every response of ours)."""
    [(response, addr, transport)], events = exchange(load("novelsc"))
    assert (response.status, response.reason) == (416, "Unsupported URI Scheme")
    assert (addr, transport) == (PEER, "udp")
    assert response.call_id == "novelsc.asdfasser0q239nwsdfasdkl34"
    assert response.to_addr.tag  # a final response to an out-of-dialog request gets our To tag
    [rejected] = events
    assert isinstance(rejected, MessageRejected) and rejected.status == 416 and rejected.responded


def test_baddate_a_date_that_is_not_gmt_is_400_and_starts_no_call() -> None:
    """§3.1.2.12: the Date's zone is EST; SIP-date is an RFC 1123 date in GMT only."""
    [(response, addr, _)], events = exchange(load("baddate"))
    assert (response.status, response.reason) == (400, "bad Date header: not an RFC 1123 date in GMT")
    assert addr == PEER
    assert not any(isinstance(e, InviteReceived) for e in events)
    [rejected] = events
    assert isinstance(rejected, MessageRejected) and rejected.status == 400 and rejected.method == "INVITE"


def test_baddate_with_a_gmt_date_starts_the_call() -> None:
    gmt = load("baddate").replace(b"Date: Fri, 01 Jan 2010 16:00:00 EST", b"Date: Fri, 01 Jan 2010 21:00:00 GMT")
    sent, events = exchange(gmt)
    assert [r.status for r, _, _ in sent] == [100]
    assert any(isinstance(e, InviteReceived) for e in events)
    for bad in (b"Date: 2010-01-01T21:00:00Z", b"Date: Fri, 01 Jan 2010 21:00:00 +0000", b"Date: yesterday"):
        sent, _ = exchange(gmt.replace(b"Date: Fri, 01 Jan 2010 21:00:00 GMT", bad))
        assert [r.status for r, _, _ in sent] == [400], bad
