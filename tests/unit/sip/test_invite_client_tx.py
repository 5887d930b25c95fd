"""The INVITE client transaction (RFC 3261 §17.1.1, RFC 6026) on a manual clock: Timers A, B, D, M."""

from __future__ import annotations

from mssip.message import Request, Response
from mssip.parser import parse_message
from mssip.transaction import InviteClientTransaction, TxState

INVITE = (
    b"INVITE sip:bob@198.51.100.20 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKict1\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:a@192.0.2.1>;tag=a1\r\nTo: <sip:bob@198.51.100.20>\r\n"
    b"Call-ID: ict@x\r\nCSeq: 1 INVITE\r\nRoute: <sip:proxy;lr>\r\nContent-Length: 0\r\n\r\n"
)


def tx(transport: str = "udp") -> InviteClientTransaction:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    return InviteClientTransaction(request, ("198.51.100.20", 5060), transport, 0.0, owner="ict@x")


def response(status: int) -> Response:
    data = (
        f"SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKict1\r\n"
        "From: <sip:a@192.0.2.1>;tag=a1\r\nTo: <sip:bob@198.51.100.20>;tag=b1\r\nCall-ID: ict@x\r\n"
        "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    parsed = parse_message(data)
    assert isinstance(parsed, Response)
    return parsed


def fire_all(t: InviteClientTransaction, until: float) -> list[float]:
    sends = []
    while (deadline := t.next_deadline()) is not None and deadline <= until:
        sends += [deadline] * len(t.handle_timer(deadline))
    return sends


def test_timer_a_and_b_over_udp() -> None:
    t = tx()
    assert fire_all(t, 100.0) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert t.state is TxState.TERMINATED and t.timed_out


def test_reliable_transport_has_no_timer_a_and_zero_timer_d() -> None:
    t = tx("tcp")
    assert fire_all(t, 31.9) == []
    t2 = tx("tcp")
    kind, ack = t2.receive_response(response(486), 1.0)
    assert kind == "final" and ack is not None
    assert t2.next_deadline() == 1.0  # Timer D is zero over TCP
    t2.handle_timer(1.0)
    assert t2.state is TxState.TERMINATED


def test_non_2xx_is_acked_with_same_branch_and_timer_d_absorbs_retransmissions() -> None:
    t = tx()
    assert t.receive_response(response(180), 0.2) == ("provisional", None)
    assert fire_all(t, 20.0) == []  # a provisional stopped Timer A (and B)
    kind, ack = t.receive_response(response(486), 20.0)
    assert kind == "final" and ack is not None
    parsed = parse_message(ack)
    assert isinstance(parsed, Request) and parsed.method == "ACK"
    assert parsed.top_via.branch == "z9hG4bKict1" and parsed.cseq.number == 1 and parsed.to_addr.tag == "b1"
    assert parsed.headers.get_all("Route") == ["<sip:proxy;lr>"] and parsed.uri == "sip:bob@198.51.100.20"
    assert t.receive_response(response(486), 25.0) == ("again", ack)  # the same ACK for a resent final
    assert t.next_deadline() == 52.0  # Timer D: 32 s over UDP
    t.handle_timer(52.0)
    assert t.state is TxState.TERMINATED


def test_2xx_goes_to_accepted_and_every_2xx_reaches_the_tu_until_timer_m() -> None:
    t = tx()
    assert t.receive_response(response(200), 1.0) == ("2xx", None)
    assert t.receive_response(response(200), 1.5) == ("2xx", None)  # the TU ACKs each one
    assert t.state is TxState.ACCEPTED and t.next_deadline() == 33.0  # Timer M = 64*T1
    t.handle_timer(33.0)
    assert t.state is TxState.TERMINATED
