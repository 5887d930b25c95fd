"""The UAC: outbound INVITE (Timers A/B/D, auth, CANCEL), REGISTER (refresh, retry), REFER."""

from __future__ import annotations

import random

from mssip.digest import parse_credentials, verify
from mssip.endpoint import SipEndpoint
from mssip.events import (
    ByeReceived,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgress,
    ReferProgress,
    Registered,
    RegistrationFailed,
)
from mssip.message import Request, Response
from mssip.parser import parse_message
from tests.unit.sip.sipkit import drain, sent
from tests.unit.sip.test_endpoint import run_timers

CALLEE = ("198.51.100.20", 5060)
OFFER = b"v=0\r\no=mediaserver 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"


def make() -> SipEndpoint:
    return SipEndpoint("192.0.2.1", 5060, rng=random.Random(11))


def requests(ep: SipEndpoint) -> list[Request]:
    out = []
    for message, addr, _ in sent(ep):
        assert isinstance(message, Request) and addr == CALLEE
        out.append(message)
    return out


def reply(
    request: Request,
    status: int,
    reason: str,
    *,
    to_tag: str | None = "callee1",
    body: bytes = b"",
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in request.headers.get_all("Via")]
    to = (request.headers.get("To") or "") + (f";tag={to_tag}" if to_tag and status > 100 else "")
    lines += [
        f"From: {request.headers.get('From')}",
        f"To: {to}",
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.headers.get('CSeq')}",
        "Contact: <sip:bob@198.51.100.20:5060>",
    ]
    lines += [f"{n}: {v}" for n, v in extra]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def dial(ep: SipEndpoint, **kw: object) -> tuple[str, Request]:
    call_id = ep.invite("sip:bob@198.51.100.20", from_uri="sip:agent@192.0.2.1", sdp=OFFER, addr=CALLEE, now=0.0, **kw)  # type: ignore[arg-type]
    [invite] = requests(ep)
    assert invite.method == "INVITE" and invite.call_id == call_id and invite.body == OFFER
    return call_id, invite


def test_timer_a_doubles_and_timer_b_fails_with_408() -> None:
    ep = make()
    call_id, invite = dial(ep)
    times = [t for t, m in run_timers(ep, 40.0) if isinstance(m, Request) and m.method == "INVITE"]
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # T1, 2T1, 4T1... until Timer B at 64*T1
    assert drain(ep) == [CallFailed(call_id, 408, "Request Timeout"), CallEnded(call_id, "dial failed")]


def test_answered_call_is_acked_and_hangs_up_by_bye() -> None:
    ep = make()
    call_id, invite = dial(ep)
    ep.receive_datagram(reply(invite, 100, "Trying"), CALLEE, 0.1)
    assert run_timers(ep, 5.0) == []  # a provisional stops Timer A
    ep.receive_datagram(reply(invite, 180, "Ringing"), CALLEE, 1.0)
    routes = (("Record-Route", "<sip:p1;lr>"), ("Record-Route", "<sip:p2;lr>"))
    ep.receive_datagram(reply(invite, 200, "OK", body=b"v=0\r\n", extra=routes), CALLEE, 2.0)
    assert drain(ep) == [CallProgress(call_id, 180, "Ringing"), CallAnswered(call_id, b"v=0\r\n")]
    [ack] = requests(ep)
    assert ack.method == "ACK" and ack.cseq.number == 1 and ack.uri == "sip:bob@198.51.100.20:5060"
    assert ack.top_via.branch != invite.top_via.branch  # a 2xx's ACK is a transaction of its own
    assert ack.headers.get_all("Route") == ["<sip:p2;lr>", "<sip:p1;lr>"]  # the UAC reverses Record-Route
    ep.receive_datagram(reply(invite, 200, "OK", body=b"v=0\r\n"), CALLEE, 2.5)  # retransmitted 2xx
    [again] = requests(ep)
    assert again.method == "ACK" and again.top_via.branch == ack.top_via.branch
    ep.hangup(call_id, 3.0)
    [bye] = requests(ep)
    assert bye.method == "BYE" and bye.cseq.number == 2 and bye.to_addr.tag == "callee1"
    ep.receive_datagram(reply(bye, 200, "OK"), CALLEE, 3.1)
    assert drain(ep) == [CallEnded(call_id, "local bye")]


def test_bye_from_callee_ends_outbound_call() -> None:
    ep = make()
    call_id, invite = dial(ep)
    ep.receive_datagram(reply(invite, 200, "OK", body=b"v=0\r\n"), CALLEE, 1.0)
    requests(ep), drain(ep)
    bye = (
        f"BYE sip:agent@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.20;branch=z9hG4bKbye1\r\n"
        f"From: <sip:bob@198.51.100.20>;tag=callee1\r\nTo: {invite.headers.get('From')}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    ep.receive_datagram(bye, CALLEE, 2.0)
    [ok] = [m for m, _, _ in sent(ep)]
    assert isinstance(ok, Response) and ok.status == 200
    assert drain(ep) == [ByeReceived(call_id), CallEnded(call_id, "remote bye")]


def test_407_is_answered_with_digest_and_a_new_cseq() -> None:
    ep = make()
    call_id, invite = dial(ep, credentials=("agent", "pw"))
    challenge = (
        'Digest realm="pbx", nonce="n1", algorithm=MD5, qop="auth"',
        'Digest realm="pbx", nonce="n2", algorithm=SHA-256, qop="auth"',
    )
    ep.receive_datagram(
        reply(invite, 407, "Proxy Authentication Required", extra=tuple(("Proxy-Authenticate", c) for c in challenge)),
        CALLEE,
        0.2,
    )
    ack, second = requests(ep)
    assert ack.method == "ACK" and ack.top_via.branch == invite.top_via.branch  # non-2xx ACK: same branch
    assert second.method == "INVITE" and second.cseq.number == 2 and second.call_id == call_id
    assert second.from_addr.tag == invite.from_addr.tag
    creds = parse_credentials(second.headers.get("Proxy-Authorization") or "")
    assert creds.algorithm == "SHA-256" and creds.nonce == "n2" and creds.uri == "sip:bob@198.51.100.20"
    assert verify(creds, method="INVITE", password="pw")
    # A second challenge means the password is wrong: the call fails with it.
    ep.receive_datagram(
        reply(second, 407, "Proxy Authentication Required", extra=(("Proxy-Authenticate", challenge[1]),)), CALLEE, 0.3
    )
    third = [r for r in requests(ep) if r.method == "INVITE"]
    assert third and third[0].cseq.number == 3  # MAX_AUTH_TRIES is 2
    ep.receive_datagram(reply(third[0], 403, "Forbidden"), CALLEE, 0.4)
    assert drain(ep) == [CallFailed(call_id, 403, "Forbidden"), CallEnded(call_id, "dial failed")]


def test_cancel_waits_for_a_provisional_then_gets_487() -> None:
    ep = make()
    call_id, invite = dial(ep)
    ep.cancel(call_id, 0.1)
    assert requests(ep) == []  # RFC 3261 §9.1: no CANCEL before a provisional response
    ep.receive_datagram(reply(invite, 180, "Ringing"), CALLEE, 0.2)
    [cancel] = requests(ep)
    assert cancel.method == "CANCEL" and cancel.top_via.branch == invite.top_via.branch
    assert cancel.cseq.number == 1 and cancel.uri == invite.uri and cancel.to_addr.tag is None
    ep.receive_datagram(reply(cancel, 200, "OK"), CALLEE, 0.3)
    ep.receive_datagram(reply(invite, 487, "Request Terminated"), CALLEE, 0.4)
    [ack] = requests(ep)
    assert ack.method == "ACK"
    assert drain(ep) == [
        CallProgress(call_id, 180, "Ringing"),
        CallFailed(call_id, 487, "Request Terminated"),
        CallEnded(call_id, "cancelled"),
    ]
    assert [m.method for _, m in run_timers(ep, 40.0) if isinstance(m, Request)] == []  # Timer D absorbs resends


def test_2xx_racing_cancel_is_acked_then_byed() -> None:
    ep = make()
    call_id, invite = dial(ep)
    ep.receive_datagram(reply(invite, 180, "Ringing"), CALLEE, 0.1)
    ep.cancel(call_id, 0.2)
    ep.receive_datagram(reply(invite, 200, "OK", body=b"v=0\r\n"), CALLEE, 0.3)
    assert [r.method for r in requests(ep)] == ["CANCEL", "ACK", "BYE"]


REGISTRAR = "sip:pbx.example.com"


def register_reply(request: Request, status: int, reason: str, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    return reply(request, status, reason, to_tag="reg", extra=extra)


def test_register_with_digest_refreshes_at_half_life_and_retries_after_failure() -> None:
    ep = make()
    reg_id = ep.register(
        REGISTRAR,
        aor="sip:agent@pbx.example.com",
        addr=CALLEE,
        now=0.0,
        user="agent",
        password="secret",
        expires=600,
        retry_s=20.0,
    )
    [first] = requests(ep)
    assert first.method == "REGISTER" and first.headers.get("Expires") == "600"
    ep.receive_datagram(
        register_reply(
            first,
            401,
            "Unauthorized",
            extra=(("WWW-Authenticate", 'Digest realm="pbx.example.com", nonce="abc", qop="auth"'),),
        ),
        CALLEE,
        0.1,
    )
    [second] = requests(ep)
    assert second.cseq.number == first.cseq.number + 1 and second.call_id == first.call_id
    creds = parse_credentials(second.headers.get("Authorization") or "")
    assert creds.uri == REGISTRAR and verify(creds, method="REGISTER", password="secret")
    contact = second.headers.get("Contact")
    ep.receive_datagram(register_reply(second, 200, "OK", extra=(("Contact", f"{contact};expires=120"),)), CALLEE, 0.2)
    assert drain(ep) == [Registered(reg_id, 120)]
    [(at, refresh)] = run_timers(ep, 60.3)  # refreshed at half the granted lifetime
    assert at == 60.2 and isinstance(refresh, Request)
    assert refresh.method == "REGISTER" and refresh.cseq.number == second.cseq.number + 1
    ep.receive_datagram(register_reply(refresh, 503, "Service Unavailable"), CALLEE, 60.3)
    assert drain(ep) == [RegistrationFailed(reg_id, 503, "Service Unavailable")]
    [(at, retry)] = [(t, m) for t, m in run_timers(ep, 80.4) if isinstance(m, Request)]  # after retry_s
    assert at == 80.3 and isinstance(retry, Request) and retry.method == "REGISTER"
    # No answer at all: Timer E resends, Timer F fails it with 408, and it is retried again.
    resent = [t for t, m in run_timers(ep, 80.3 + 32.0) if isinstance(m, Request) and m.cseq == retry.cseq]
    assert resent[:3] == [80.8, 81.8, 83.8]
    assert drain(ep) == [RegistrationFailed(reg_id, 408, "Request Timeout")]


def test_refer_reports_notify_sipfrag_progress() -> None:
    ep = make()
    call_id, invite = dial(ep)
    ep.receive_datagram(reply(invite, 200, "OK", body=b"v=0\r\n"), CALLEE, 1.0)
    requests(ep), drain(ep)
    ep.refer(call_id, "sip:carol@198.51.100.30", 2.0)
    [refer] = requests(ep)
    assert refer.method == "REFER" and refer.headers.get("Refer-To") == "<sip:carol@198.51.100.30>"
    ep.receive_datagram(reply(refer, 202, "Accepted"), CALLEE, 2.1)
    for cseq, (frag, state) in enumerate([(b"SIP/2.0 100 Trying", "active"), (b"SIP/2.0 200 OK", "terminated")], 10):
        notify = (
            f"NOTIFY sip:agent@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.20;branch=z9hG4bKn{cseq}\r\n"
            f"From: <sip:bob@198.51.100.20>;tag=callee1\r\nTo: {invite.headers.get('From')}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} NOTIFY\r\nEvent: refer\r\nSubscription-State: {state}\r\n"
            f"Content-Type: message/sipfrag\r\nContent-Length: {len(frag)}\r\n\r\n"
        ).encode() + frag
        ep.receive_datagram(notify, CALLEE, 2.2 + cseq / 100)
        [ok] = [parse_message(d) for d, _, _ in ep.datagrams_to_send()]
        assert isinstance(ok, Response) and ok.status == 200
    assert drain(ep) == [
        ReferProgress(call_id, 202, "Accepted", False),
        ReferProgress(call_id, 100, "Trying", False),
        ReferProgress(call_id, 200, "OK", True),
    ]
