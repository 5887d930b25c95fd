"""Transaction tables and timers on their own (RFC 3261 §17, RFC 6026)."""

from __future__ import annotations

import pytest

from mssip.errors import InvalidTransition
from mssip.message import Request, make_response
from mssip.parser import parse_message
from mssip.transaction import T1, T4, TIMEOUT, ClientTransaction, ServerTransaction, TxState, server_key
from tests.unit.sip.sipkit import PEER, Phone


def _request(method: str = "INVITE", **kw: object) -> Request:
    message = parse_message(Phone().request(method, cseq=1, **kw))  # type: ignore[arg-type]
    assert isinstance(message, Request)
    return message


def fire_all(tx: ServerTransaction | ClientTransaction, until: float) -> list[float]:
    times = []
    while (deadline := tx.next_deadline()) is not None and deadline <= until:
        if tx.handle_timer(deadline):
            times.append(deadline)
    return times


def test_invite_server_non2xx_over_udp_retransmits_until_timer_h() -> None:
    invite = _request()
    tx = ServerTransaction(server_key(invite), invite, PEER, "udp")
    tx.respond(make_response(invite, 100, "Trying"), 0.0)
    assert tx.state is TxState.PROCEEDING and tx.next_deadline() is None
    tx.respond(make_response(invite, 486, "Busy Here", to_tag="x"), 0.0)
    assert tx.state is TxState.COMPLETED
    assert fire_all(tx, TIMEOUT) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert tx.terminated  # Timer H: no ACK came


def test_invite_server_ack_then_timer_i() -> None:
    invite = _request()
    tx = ServerTransaction(server_key(invite), invite, PEER, "udp")
    tx.respond(make_response(invite, 404, "Not Found", to_tag="x"), 0.0)
    tx.receive_ack(0.2)
    assert tx.state is TxState.CONFIRMED and tx.request_again(0.3) is None  # absorbed
    assert tx.next_deadline() == pytest.approx(0.2 + T4)
    fire_all(tx, 10.0)
    assert tx.terminated


def test_invite_server_2xx_goes_to_accepted_and_lingers_for_timer_l() -> None:
    invite = _request()
    tx = ServerTransaction(server_key(invite), invite, PEER, "tcp")
    ok = tx.respond(make_response(invite, 200, "OK", to_tag="x"), 1.0)
    assert tx.state is TxState.ACCEPTED and tx.request_again(1.5) == ok
    assert tx.next_deadline() == 1.0 + TIMEOUT
    with pytest.raises(InvalidTransition, match="SEND_FINAL in ServerTransaction ACCEPTED"):
        tx.respond(make_response(invite, 500, "Oops"), 2.0)


def test_non_invite_server_over_tcp_terminates_at_once() -> None:
    bye = _request("BYE", to_tag="t")
    tx = ServerTransaction(server_key(bye), bye, PEER, "tcp")
    tx.respond(make_response(bye, 200, "OK"), 5.0)
    assert tx.next_deadline() == 5.0  # Timer J is zero on a reliable transport
    fire_all(tx, 5.0)
    assert tx.terminated


def test_non_invite_client_timers() -> None:
    bye = _request("BYE", to_tag="t")
    tx = ClientTransaction(bye, PEER, "udp", 0.0, owner="c")
    assert fire_all(tx, 4.0) == [0.5, 1.5, 3.5]
    assert not tx.receive_response(make_response(bye, 100, "Trying"), 4.0)
    assert tx.state is TxState.PROCEEDING
    assert fire_all(tx, 16.0) == [7.5, 11.5, 15.5]  # every T2 once a provisional came
    assert tx.receive_response(make_response(bye, 200, "OK"), 16.0)
    assert not tx.receive_response(make_response(bye, 200, "OK"), 16.1)  # retransmission absorbed
    assert tx.next_deadline() == 16.0 + T4
    fire_all(tx, 30.0)
    assert tx.terminated and not tx.timed_out


def test_non_invite_client_timeout() -> None:
    tx = ClientTransaction(_request("BYE", to_tag="t"), PEER, "tcp", 0.0, owner="c")
    assert fire_all(tx, 100.0) == []  # no Timer E over TCP
    assert tx.terminated and tx.timed_out


def test_server_key_matches_ack_and_cancel_to_their_invite() -> None:
    invite = _request(branch="z9hG4bKsame")
    ack = _request("ACK", branch="z9hG4bKsame", cseq_method="ACK")
    cancel = _request("CANCEL", branch="z9hG4bKsame")
    assert server_key(ack) == server_key(invite) == server_key(cancel, "INVITE")
    assert server_key(cancel) != server_key(invite)
    old_style = _request(branch="1234")  # RFC 2543 peer: no magic cookie
    assert server_key(old_style).startswith("2543|")
    assert T1 == 0.5
