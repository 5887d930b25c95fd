"""SipEndpoint scenarios, driven only through its four I/O methods and commands with a fake now."""

from __future__ import annotations

import random

import pytest

from mssip.endpoint import T1, SipEndpoint
from mssip.errors import InvalidTransition, UnknownCall
from mssip.events import (
    ByeReceived,
    CallAcked,
    CallCancelled,
    CallEnded,
    InviteReceived,
    MessageRejected,
    OfferReceived,
)
from mssip.message import Request, Response
from mssip.screening import HANDLED_METHODS
from tests.unit.sip.sipkit import PEER, Phone, drain, load_sdp, responses, sent, statuses

ANSWER_SDP = b"v=0\r\no=mediaserver 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"


def make_endpoint() -> SipEndpoint:
    return SipEndpoint("192.0.2.1", 5060, rng=random.Random(7))


def invited(transport: str = "udp") -> tuple[SipEndpoint, Phone, InviteReceived, str]:
    """An endpoint that has received one INVITE; returns it, the phone, the event and the INVITE branch."""
    ep, phone = make_endpoint(), Phone(transport=transport.upper())
    branch = phone.new_branch()
    ep.receive_datagram(phone.invite(branch=branch), PEER, 0.0, transport)
    [event] = drain(ep)
    assert isinstance(event, InviteReceived)
    return ep, phone, event, branch


def answered(transport: str = "udp") -> tuple[SipEndpoint, Phone, str]:
    """A call answered and acknowledged at t=0; returns the endpoint, phone and our To tag."""
    ep, phone, event, _ = invited(transport)
    ep.answer(event.call_id, ANSWER_SDP, 0.0)
    [ok] = responses(ep)[-1:]
    tag = ok.to_addr.tag
    assert tag
    ep.receive_datagram(phone.request("ACK", cseq=1, to_tag=tag), PEER, 0.1, transport)
    assert drain(ep) == [CallAcked(event.call_id)]
    return ep, phone, tag


def run_timers(ep: SipEndpoint, until: float) -> list[tuple[float, Request | Response]]:
    """Fire every timer up to ``until``, in order; return what went out and when."""
    out: list[tuple[float, Request | Response]] = []
    while (deadline := ep.get_timer()) is not None and deadline <= until:
        ep.handle_timer(deadline)
        out += [(deadline, message) for message, _, _ in sent(ep)]
    return out


def test_full_call_flow() -> None:
    ep, phone, event, _ = invited()
    assert event.to_user == "agent"
    assert event.from_uri == "sip:alice@example.com"
    assert event.to_uri == "sip:agent@192.0.2.1"
    assert event.remote_addr == PEER and event.transport == "udp"
    assert event.offer == load_sdp("baresip.sdp")
    [(trying, addr, transport)] = sent(ep)
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.to_addr.tag is None and addr == PEER and transport == "udp"
    # Responses go back to the source: rport and received record the NAT mapping.
    assert trying.top_via.received == PEER[0] and trying.top_via.rport == PEER[1]

    ep.send_ringing(event.call_id, 0.2)
    [ringing] = responses(ep)
    assert ringing.status == 180 and ringing.to_addr.tag
    assert ringing.headers.get("Contact") == "<sip:mediaserver@192.0.2.1:5060>"

    ep.answer(event.call_id, ANSWER_SDP, 1.0)
    [ok] = responses(ep)
    assert ok.status == 200 and ok.body == ANSWER_SDP and ok.content_type == "application/sdp"
    assert ok.to_addr.tag == ringing.to_addr.tag
    assert ok.headers.get("Contact") == "<sip:mediaserver@192.0.2.1:5060>"

    ep.receive_datagram(phone.request("ACK", cseq=1, to_tag=ok.to_addr.tag), PEER, 1.05)
    assert drain(ep) == [CallAcked(event.call_id)]
    assert sent(ep) == []

    ep.receive_datagram(phone.request("BYE", cseq=2, to_tag=ok.to_addr.tag), PEER, 5.0)
    [bye_ok] = responses(ep)
    assert bye_ok.status == 200 and bye_ok.cseq.method == "BYE"
    assert drain(ep) == [ByeReceived(event.call_id), CallEnded(event.call_id, "remote bye")]


def test_200_is_retransmitted_until_ack() -> None:
    ep, phone, event, _ = invited()
    sent(ep)
    ep.answer(event.call_id, ANSWER_SDP, 0.0)
    [ok] = responses(ep)
    resent = run_timers(ep, 12.0)
    # T1, then doubling up to T2 = 4 s: 0.5, 1.5, 3.5, 7.5, 11.5
    assert [t for t, _ in resent] == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert all(isinstance(m, Response) and m.status == 200 for _, m in resent)
    ep.receive_datagram(phone.request("ACK", cseq=1, to_tag=ok.to_addr.tag), PEER, 12.0)
    assert drain(ep) == [CallAcked(event.call_id)]
    assert run_timers(ep, 60.0) == []  # no more 200s, and everything is eventually forgotten
    assert ep.get_timer() is None


def test_ack_timeout_sends_bye_and_ends_call() -> None:
    phone = Phone(record_route=["<sip:proxy.example.com;lr>"])
    ep = make_endpoint()
    ep.receive_datagram(phone.invite(), PEER, 0.0)
    [event] = drain(ep)
    ep.answer(event.call_id, ANSWER_SDP, 0.0)
    ok = responses(ep)[-1]
    assert ok.headers.get_all("Record-Route") == ["<sip:proxy.example.com;lr>"]
    run_timers(ep, 64 * T1 - 0.01)
    assert drain(ep) == []
    sent(ep)
    ep.handle_timer(64 * T1)
    assert drain(ep) == [CallEnded(event.call_id, "ack timeout")]
    [(bye, addr, transport)] = sent(ep)
    assert isinstance(bye, Request) and bye.method == "BYE"
    assert addr == PEER and transport == "udp"  # symmetric: where the INVITE came from
    assert bye.uri == "sip:alice@10.0.0.23:5060"  # the remote Contact
    assert bye.headers.get_all("Route") == ["<sip:proxy.example.com;lr>"]
    assert bye.from_addr.tag == ok.to_addr.tag and bye.to_addr.tag == phone.from_tag
    assert bye.cseq.number == 1 and bye.cseq.method == "BYE"
    assert bye.call_id == event.call_id


def test_bye_from_us_is_retransmitted_then_answered() -> None:
    ep, phone, _tag = answered()
    call_id = phone.call_id
    ep.hangup(call_id, 10.0)
    [(bye, addr, _)] = sent(ep)
    assert isinstance(bye, Request) and bye.method == "BYE" and addr == PEER
    assert bye.top_via.branch and bye.top_via.branch.startswith("z9hG4bK")
    assert "rport" in bye.top_via.params
    assert bye.headers.get("User-Agent") == "voice-mediaserver"
    resent = run_timers(ep, 14.0)
    assert [t for t, _ in resent] == [10.5, 11.5, 13.5]  # Timer E: T1, 2T1, 4T1
    assert all(isinstance(m, Request) and m.top_via.branch == bye.top_via.branch for _, m in resent)
    ep.hangup(call_id, 14.0)  # idempotent while the BYE is out
    assert sent(ep) == [] and drain(ep) == []
    ep.receive_datagram(phone.reply(bye, 200, "OK"), PEER, 14.1)
    assert drain(ep) == [CallEnded(call_id, "local bye")]
    ep.receive_datagram(phone.reply(bye, 200, "OK"), PEER, 14.2)  # retransmitted 200: absorbed
    assert drain(ep) == []
    assert run_timers(ep, 100.0) == []
    assert ep.get_timer() is None


def test_bye_timeout_ends_call() -> None:
    ep, phone, _ = answered()
    ep.hangup(phone.call_id, 1.0)
    run_timers(ep, 1.0 + 64 * T1 - 0.01)
    assert drain(ep) == []
    ep.handle_timer(1.0 + 64 * T1)
    assert drain(ep) == [CallEnded(phone.call_id, "bye timeout")]


def test_invite_retransmission_gets_last_response_not_a_new_event() -> None:
    ep, phone, event, branch = invited()
    assert statuses(ep) == [100]
    ep.receive_datagram(phone.invite(branch=branch), PEER, 0.5)
    assert statuses(ep) == [100] and drain(ep) == []
    ep.send_ringing(event.call_id, 0.6)
    assert statuses(ep) == [180]
    ep.receive_datagram(phone.invite(branch=branch), PEER, 1.0)
    assert statuses(ep) == [180] and drain(ep) == []


def test_cancel_before_answer() -> None:
    ep, phone, event, branch = invited()
    ep.send_ringing(event.call_id, 0.1)
    sent(ep)
    ep.receive_datagram(phone.request("CANCEL", cseq=1, branch=branch), PEER, 1.0)
    cancel_ok, terminated = responses(ep)
    assert (cancel_ok.status, cancel_ok.cseq.method) == (200, "CANCEL")
    assert (terminated.status, terminated.cseq.method) == (487, "INVITE")
    assert drain(ep) == [CallCancelled(event.call_id), CallEnded(event.call_id, "cancelled")]
    with pytest.raises(InvalidTransition):
        ep.answer(event.call_id, ANSWER_SDP, 1.1)
    # The 487 is resent (Timer G) until the ACK, which the transaction absorbs.
    [(at, again)] = run_timers(ep, 1.6)
    assert at == 1.5 and isinstance(again, Response) and again.status == 487
    ep.receive_datagram(phone.request("ACK", cseq=1, branch=branch, to_tag=terminated.to_addr.tag), PEER, 1.7)
    assert drain(ep) == [] and sent(ep) == []
    assert run_timers(ep, 100.0) == []
    assert ep.get_timer() is None


def test_cancel_for_unknown_transaction_is_481() -> None:
    ep, phone = make_endpoint(), Phone()
    ep.receive_datagram(phone.request("CANCEL", cseq=1), PEER, 0.0)
    assert statuses(ep) == [481]
    [rejected] = drain(ep)
    assert isinstance(rejected, MessageRejected) and rejected.status == 481


def test_reject_and_ack_absorbed() -> None:
    ep, phone, event, branch = invited()
    sent(ep)
    ep.reject(event.call_id, 486, "Busy Here", 0.5)
    [busy] = responses(ep)
    assert busy.status == 486 and busy.reason == "Busy Here" and busy.to_addr.tag
    assert drain(ep) == [CallEnded(event.call_id, "rejected")]
    ep.receive_datagram(phone.request("ACK", cseq=1, branch=branch, to_tag=busy.to_addr.tag), PEER, 0.6)
    assert sent(ep) == [] and drain(ep) == []
    with pytest.raises(ValueError):
        ep.reject(event.call_id, 200, "OK", 0.7)


def test_hangup_before_answer_rejects_with_480() -> None:
    ep, _phone, event, _ = invited()
    sent(ep)
    ep.hangup(event.call_id, 0.5)
    assert statuses(ep) == [480]
    assert drain(ep) == [CallEnded(event.call_id, "rejected")]


def test_hangup_before_ack_waits_for_the_ack() -> None:
    ep, phone, event, _ = invited()
    ep.answer(event.call_id, ANSWER_SDP, 0.0)
    tag = responses(ep)[-1].to_addr.tag
    ep.hangup(event.call_id, 0.1)
    assert sent(ep) == []  # RFC 3261 §15: no BYE before the ACK
    ep.receive_datagram(phone.request("ACK", cseq=1, to_tag=tag), PEER, 0.2)
    assert drain(ep) == [CallAcked(event.call_id)]
    [(bye, _, _)] = sent(ep)
    assert isinstance(bye, Request) and bye.method == "BYE"


def test_options_out_of_dialog() -> None:
    ep, phone = make_endpoint(), Phone()
    ep.receive_datagram(phone.request("OPTIONS", cseq=5), PEER, 0.0)
    [ok] = responses(ep)
    assert ok.status == 200 and ok.to_addr.tag
    assert ok.headers.get_all("Allow") == list(HANDLED_METHODS)
    assert ok.headers.get("Accept") == "application/sdp"
    assert ok.headers.get("Supported") == "timer"
    assert ok.headers.get("Server") == "voice-mediaserver"
    assert drain(ep) == []


@pytest.mark.parametrize(("method", "status"), [("FOO", 501), ("SUBSCRIBE", 405), ("REGISTER", 405), ("PUBLISH", 405)])
def test_unknown_and_unsupported_methods(method: str, status: int) -> None:
    ep, phone = make_endpoint(), Phone()
    branch = phone.new_branch()
    ep.receive_datagram(phone.request(method, cseq=1, branch=branch), PEER, 0.0)
    [response] = responses(ep)
    assert response.status == status
    assert response.headers.get_all("Allow") == list(HANDLED_METHODS)
    [rejected] = drain(ep)
    assert rejected == MessageRejected(status, response.reason, PEER, method, phone.call_id)
    ep.receive_datagram(phone.request(method, cseq=1, branch=branch), PEER, 0.5)  # retransmission
    assert statuses(ep) == [status] and drain(ep) == []


def test_malformed_invite_gets_400_with_reason() -> None:
    ep, phone = make_endpoint(), Phone()
    data = phone.invite().replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE")
    ep.receive_datagram(data, PEER, 0.0)
    [(wire, addr, _)] = ep.datagrams_to_send()
    assert addr == PEER
    assert wire.startswith(b"SIP/2.0 400 bad CSeq\r\n")
    assert b"\r\nCSeq: one INVITE\r\n" in wire  # echoed as sent, so the sender can match it
    assert b";rport=40123;received=198.51.100.7" in wire
    [rejected] = drain(ep)
    assert rejected == MessageRejected(400, "bad CSeq", PEER, "INVITE", phone.call_id)


def test_unaddressable_garbage_is_dropped() -> None:
    ep = make_endpoint()
    ep.receive_datagram(b"\x16\x03\x01 this is not sip\r\n\r\n", PEER, 0.0)
    assert sent(ep) == []
    [rejected] = drain(ep)
    assert isinstance(rejected, MessageRejected) and not rejected.responded
    ep.receive_datagram(b"\r\n\r\n", PEER, 0.1)  # keep-alive: silently ignored
    assert sent(ep) == [] and drain(ep) == []


def test_bye_for_unknown_dialog_is_481() -> None:
    ep, phone = make_endpoint(), Phone()
    ep.receive_datagram(phone.request("BYE", cseq=2, to_tag="nosuchtag"), PEER, 0.0)
    assert statuses(ep) == [481]
    [rejected] = drain(ep)
    assert isinstance(rejected, MessageRejected) and rejected.status == 481


def test_bye_retransmission_gets_200_again() -> None:
    ep, phone, tag = answered()
    branch = phone.new_branch()
    ep.receive_datagram(phone.request("BYE", cseq=2, branch=branch, to_tag=tag), PEER, 1.0)
    assert statuses(ep) == [200]
    assert len(drain(ep)) == 2
    ep.receive_datagram(phone.request("BYE", cseq=2, branch=branch, to_tag=tag), PEER, 1.5)
    assert statuses(ep) == [200] and drain(ep) == []


def test_tcp_transport_is_echoed() -> None:
    ep, phone, event, _ = invited("tcp")
    assert event.transport == "tcp"
    [(trying, _, transport)] = sent(ep)
    assert transport == "tcp"
    ep.answer(event.call_id, ANSWER_SDP, 0.0)
    [(ok, addr, transport)] = sent(ep)
    assert isinstance(ok, Response) and (addr, transport) == (PEER, "tcp")
    assert ok.headers.get("Contact") == "<sip:mediaserver@192.0.2.1:5060;transport=tcp>"
    ep.receive_datagram(phone.request("ACK", cseq=1, to_tag=ok.to_addr.tag), PEER, 0.1, "tcp")
    ep.hangup(event.call_id, 1.0)
    [(bye, _, transport)] = sent(ep)
    assert isinstance(bye, Request) and transport == "tcp"
    assert bye.top_via.transport == "TCP"
    assert run_timers(ep, 5.0) == []  # no Timer E over a reliable transport


@pytest.mark.parametrize(
    ("extra", "body_type", "status", "header"),
    [
        ((("Accept", "text/plain"),), None, 406, ("Accept", "application/sdp")),
        ((("Require", "100rel"),), None, 420, ("Unsupported", "100rel")),
        ((), "text/plain", 415, ("Accept", "application/sdp")),
    ],
)
def test_screening(
    extra: tuple[tuple[str, str], ...], body_type: str | None, status: int, header: tuple[str, str] | None
) -> None:
    ep, phone = make_endpoint(), Phone()
    data = phone.invite()
    if body_type:
        data = data.replace(b"Content-Type: application/sdp", f"Content-Type: {body_type}".encode())
    for name, value in extra:
        data = data.replace(b"Max-Forwards: 70\r\n", b"") if name == "Max-Forwards" else data
        data = data.replace(b"\r\n\r\n", f"\r\n{name}: {value}\r\n\r\n".encode(), 1)
    ep.receive_datagram(data, PEER, 0.0)
    [response] = responses(ep)
    assert response.status == status
    if header:
        assert response.headers.get(header[0]) == header[1]
    [rejected] = drain(ep)
    assert isinstance(rejected, MessageRejected) and rejected.status == status


def test_max_forwards_zero_is_processed_by_a_uas() -> None:
    # RFC 4475 §3.3.11: 483 is a proxy's answer; the UAS that the request is for processes it.
    ep, phone = make_endpoint(), Phone()
    ep.receive_datagram(phone.invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 0"), PEER, 0.0)
    assert statuses(ep) == [100]


def test_reinvite_unchanged_sdp_is_answered_with_same_sdp_changed_is_an_offer() -> None:
    ep, phone, tag = answered()
    ep.receive_datagram(phone.request("INVITE", cseq=2, to_tag=tag, body=load_sdp("baresip.sdp")), PEER, 5.0)
    trying, ok = responses(ep)
    assert trying.status == 100 and ok.status == 200 and ok.body == ANSWER_SDP
    ep.receive_datagram(phone.request("ACK", cseq=2, to_tag=tag), PEER, 5.1)
    assert drain(ep) == [] and run_timers(ep, 6.0) == []  # the 200 is not resent after its ACK
    changed = load_sdp("baresip.sdp").replace(b"2103640582", b"2103640583").replace(b"sendrecv", b"sendonly")
    ep.receive_datagram(phone.request("INVITE", cseq=3, to_tag=tag, body=changed), PEER, 7.0)
    assert statuses(ep) == [100]
    [offer] = drain(ep)
    assert offer == OfferReceived(phone.call_id, changed, "INVITE")


def test_commands_on_unknown_calls() -> None:
    ep = make_endpoint()
    with pytest.raises(UnknownCall):
        ep.answer("nope", ANSWER_SDP, 0.0)
    with pytest.raises(UnknownCall):
        ep.send_ringing("nope", 0.0)
    ep.hangup("nope", 0.0)  # idempotent
    with pytest.raises(ValueError):
        SipEndpoint("h", 1, allow=("INVITE", "ACK", "BYE"))


def test_memory_is_released_after_many_calls() -> None:
    ep = make_endpoint()
    for n in range(50):
        phone = Phone(call_id=f"call-{n}", from_tag=f"t{n}")
        ep.receive_datagram(phone.invite(), PEER, float(n))
        [event] = drain(ep)
        assert isinstance(event, InviteReceived)
        ep.answer(event.call_id, ANSWER_SDP, float(n))
        tag = responses(ep)[-1].to_addr.tag
        ep.receive_datagram(phone.request("ACK", cseq=1, to_tag=tag), PEER, n + 0.1)
        ep.receive_datagram(phone.request("BYE", cseq=2, to_tag=tag), PEER, n + 0.5)
        ep.receive_datagram(phone.request("OPTIONS", cseq=3), PEER, n + 0.6)
        drain(ep)
        ep.handle_timer(n + 0.7)
        sent(ep)
    run_timers(ep, 200.0)
    assert ep.get_timer() is None


def test_bye_on_early_dialog_ends_the_invite_with_487() -> None:
    ep, phone, event, _ = invited()
    ep.send_ringing(event.call_id, 0.1)
    tag = responses(ep)[-1].to_addr.tag
    ep.receive_datagram(phone.request("BYE", cseq=2, to_tag=tag), PEER, 0.5)
    bye_ok, terminated = responses(ep)
    assert (bye_ok.status, bye_ok.cseq.method) == (200, "BYE")
    assert (terminated.status, terminated.cseq.method) == (487, "INVITE")
    assert drain(ep) == [ByeReceived(event.call_id), CallEnded(event.call_id, "remote bye")]


def test_delayed_offer_gets_the_answer_from_the_ack() -> None:
    ep, phone = make_endpoint(), Phone()
    ep.receive_datagram(phone.invite(body=b""), PEER, 0.0)
    [event] = drain(ep)
    assert isinstance(event, InviteReceived) and event.offer is None
    ep.answer(event.call_id, ANSWER_SDP, 0.1)  # our 200 carries the offer
    tag = responses(ep)[-1].to_addr.tag
    answer = load_sdp("asterisk.sdp")
    ep.receive_datagram(phone.request("ACK", cseq=1, to_tag=tag, body=answer), PEER, 0.2)
    assert drain(ep) == [CallAcked(event.call_id, answer)]


def test_reinvite_without_sdp_refreshes_with_our_sdp() -> None:
    ep, phone, tag = answered()
    ep.receive_datagram(phone.request("INVITE", cseq=2, to_tag=tag), PEER, 5.0)
    trying, ok = responses(ep)
    assert trying.status == 100
    assert ok.status == 200 and ok.body == ANSWER_SDP and ok.cseq.number == 2
    assert [t for t, _ in run_timers(ep, 5.6)] == [5.5]  # resent until its own ACK
    ep.receive_datagram(phone.request("ACK", cseq=2, to_tag=tag), PEER, 5.7)
    assert run_timers(ep, 10.0) == [] and drain(ep) == []


def test_in_dialog_options_for_unknown_dialog_is_481_and_known_is_200() -> None:
    ep, phone, tag = answered()
    ep.receive_datagram(phone.request("OPTIONS", cseq=2, to_tag=tag), PEER, 1.0)
    assert statuses(ep) == [200]
    ep.receive_datagram(phone.request("OPTIONS", cseq=3, to_tag="other"), PEER, 1.1)
    assert statuses(ep) == [481]


def test_in_dialog_request_with_old_cseq_is_500() -> None:
    ep, phone, tag = answered()
    ep.receive_datagram(phone.request("BYE", cseq=0, to_tag=tag), PEER, 1.0)
    [response] = responses(ep)
    assert (response.status, response.reason) == (500, "CSeq Out of Order")
    assert [type(e) for e in drain(ep)] == [MessageRejected]


def test_ipv6_peer_gets_bracketed_contact_and_received() -> None:
    ep, phone = SipEndpoint("2001:db8::1", 5060, rng=random.Random(3)), Phone(host="[2001:db8::9]")
    peer6 = ("2001:db8::9", 5062)
    ep.receive_datagram(phone.invite(), peer6, 0.0)
    [event] = drain(ep)
    assert isinstance(event, InviteReceived) and event.remote_addr == peer6
    ep.answer(event.call_id, ANSWER_SDP, 0.0)
    trying, ok = responses(ep)
    assert ok.headers.get("Contact") == "<sip:mediaserver@[2001:db8::1]:5060>"
    assert (ok.top_via.received, ok.top_via.rport) == ("2001:db8::9", 5062)
