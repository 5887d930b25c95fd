"""Mid-call requests as UAS: re-INVITE and UPDATE offers (hold/resume), INFO DTMF."""

from __future__ import annotations

import pytest

from mssip.events import ByeReceived, CallEnded, DtmfReceived, MessageRejected, OfferReceived
from mssip.info import parse_dtmf_info
from mssip.sdp import CodecSpec, negotiate, parse_sdp
from tests.unit.sip.sipkit import PEER, drain, load_sdp, responses, statuses
from tests.unit.sip.test_endpoint import answered, run_timers

SUPPORTED = [CodecSpec("PCMU", 8000)]


def offer(version: int, direction: str = "sendrecv", host: str = "192.168.1.50") -> bytes:
    sdp = load_sdp("baresip.sdp").replace(b"2103640582", str(version).encode()).replace(b"sendrecv", direction.encode())
    return sdp.replace(b"IN IP4 192.168.1.50", f"IN IP4 {host}".encode())


def our_answer(offer_sdp: bytes, version: int) -> tuple[bytes, str]:
    answer = negotiate(parse_sdp(offer_sdp), SUPPORTED, "192.0.2.1", 30000, session_id=1)
    answer.answer.origin.session_version = str(version)
    return answer.answer.serialize(), answer.direction


@pytest.mark.parametrize(
    ("direction", "host", "answered_direction"),
    [
        ("sendonly", "192.168.1.50", "recvonly"),
        ("inactive", "192.168.1.50", "inactive"),
        ("recvonly", "192.168.1.50", "sendonly"),
        ("sendrecv", "0.0.0.0", "recvonly"),
    ],
)
def test_hold_and_resume_by_reinvite(direction: str, host: str, answered_direction: str) -> None:
    ep, phone, tag = answered()
    hold = offer(2103640583, direction, host)
    ep.receive_datagram(phone.request("INVITE", cseq=2, to_tag=tag, body=hold), PEER, 5.0)
    assert statuses(ep) == [100]
    assert drain(ep) == [OfferReceived(phone.call_id, hold, "INVITE")]
    # While the application answers, a second offer is refused with 491 (RFC 3261 §14.2).
    ep.receive_datagram(phone.request("UPDATE", cseq=3, to_tag=tag, body=offer(7)), PEER, 5.01)
    assert statuses(ep) == [491]
    drain(ep)
    sdp, ours = our_answer(hold, 2)
    assert ours == answered_direction
    ep.accept_offer(phone.call_id, sdp, 5.02)
    [ok] = responses(ep)
    assert ok.status == 200 and ok.cseq.number == 2 and ok.body == sdp
    assert f"a={answered_direction}".encode() in ok.body
    assert [t for t, _ in run_timers(ep, 5.6)] == [5.52]  # a re-INVITE's 2xx is resent until ACK
    ep.receive_datagram(phone.request("ACK", cseq=2, to_tag=tag), PEER, 5.7)
    assert run_timers(ep, 10.0) == []
    # Resume: sendrecv again, a new version.
    resume = offer(2103640584)
    ep.receive_datagram(phone.request("INVITE", cseq=4, to_tag=tag, body=resume), PEER, 11.0)
    assert statuses(ep) == [100]
    assert drain(ep) == [OfferReceived(phone.call_id, resume, "INVITE")]
    sdp, ours = our_answer(resume, 3)
    assert ours == "sendrecv"
    ep.accept_offer(phone.call_id, sdp, 11.1)
    assert statuses(ep) == [200]


def test_update_offer_is_answered_in_its_own_transaction() -> None:
    ep, phone, tag = answered()
    new = offer(9, "sendonly")
    ep.receive_datagram(phone.request("UPDATE", cseq=2, to_tag=tag, body=new), PEER, 3.0)
    assert statuses(ep) == []  # no 100 for a non-INVITE: the answer comes at once
    assert drain(ep) == [OfferReceived(phone.call_id, new, "UPDATE")]
    sdp, _ = our_answer(new, 2)
    ep.accept_offer(phone.call_id, sdp, 3.0)
    [ok] = responses(ep)
    assert ok.status == 200 and ok.cseq.method == "UPDATE" and b"a=recvonly" in ok.body
    assert run_timers(ep, 4.0) == []  # nothing to resend: no ACK for UPDATE


def test_rejected_offer_keeps_the_call() -> None:
    ep, phone, tag = answered()
    ep.receive_datagram(phone.request("INVITE", cseq=2, to_tag=tag, body=offer(5)), PEER, 1.0)
    drain(ep), responses(ep)
    ep.reject_offer(phone.call_id, 488, "Not Acceptable Here", 1.1)
    assert statuses(ep) == [488]
    ep.receive_datagram(phone.request("ACK", cseq=2, to_tag=tag), PEER, 1.2)
    ep.receive_datagram(phone.request("BYE", cseq=3, to_tag=tag), PEER, 2.0)
    assert statuses(ep) == [200]
    assert drain(ep) == [ByeReceived(phone.call_id), CallEnded(phone.call_id, "remote bye")]


def test_bye_while_offer_pending_terminates_the_reinvite() -> None:
    ep, phone, tag = answered()
    ep.receive_datagram(phone.request("INVITE", cseq=2, to_tag=tag, body=offer(5)), PEER, 1.0)
    drain(ep), responses(ep)
    ep.receive_datagram(phone.request("BYE", cseq=3, to_tag=tag), PEER, 1.5)
    assert sorted(statuses(ep)) == [200, 487]


def info(phone_request: bytes, content_type: str) -> bytes:
    return phone_request.replace(b"Content-Type: application/sdp", f"Content-Type: {content_type}".encode())


@pytest.mark.parametrize(
    ("content_type", "body", "digit", "duration"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5", 160),
        ("application/dtmf-relay", b"signal= #\r\n", "#", 100),
        ("application/dtmf-relay", b"Signal=10\r\nDuration=250\r\n", "*", 250),
        ("application/dtmf", b"7", "7", 100),
        ("Application/DTMF-Relay; charset=us-ascii", b"Signal=A\nDuration=80", "A", 80),
    ],
)
def test_info_dtmf(content_type: str, body: bytes, digit: str, duration: int) -> None:
    ep, phone, tag = answered()
    ep.receive_datagram(info(phone.request("INFO", cseq=2, to_tag=tag, body=body), content_type), PEER, 2.0)
    assert statuses(ep) == [200]
    assert drain(ep) == [DtmfReceived(phone.call_id, digit, duration)]


def test_info_refusals() -> None:
    ep, phone, tag = answered()
    ep.receive_datagram(info(phone.request("INFO", cseq=2, to_tag=tag, body=b"x"), "text/plain"), PEER, 2.0)
    [refused] = responses(ep)
    assert refused.status == 415 and refused.headers.get_all("Accept") == ["application/dtmf-relay", "application/dtmf"]
    bad = info(phone.request("INFO", cseq=3, to_tag=tag, body=b"Signal=Z\r\n"), "application/dtmf-relay")
    ep.receive_datagram(bad, PEER, 2.1)
    [refused] = responses(ep)
    assert refused.status == 400 and "DTMF" in refused.reason
    ep.receive_datagram(phone.request("INFO", cseq=4, to_tag=tag), PEER, 2.2)  # empty: a keep-alive
    assert statuses(ep) == [200]
    ep.receive_datagram(phone.request("INFO", cseq=5, to_tag="nope"), PEER, 2.3)
    assert statuses(ep) == [481]
    assert [type(e) for e in drain(ep)] == [MessageRejected, MessageRejected, MessageRejected]


def test_parse_dtmf_info_errors_name_the_fault() -> None:
    with pytest.raises(ValueError, match="Signal"):
        parse_dtmf_info("application/dtmf-relay", b"Duration=100")
    with pytest.raises(ValueError, match="ASCII"):
        parse_dtmf_info("application/dtmf", "é".encode())


def test_session_timer_is_echoed_minimally_and_too_small_is_422() -> None:
    from tests.unit.sip.sipkit import Phone
    from tests.unit.sip.test_endpoint import make_endpoint

    ep, phone = make_endpoint(), Phone()
    ep.receive_datagram(phone.invite(extra=(("Session-Expires", "60"),)), PEER, 0.0)
    [too_small] = responses(ep)
    assert too_small.status == 422 and too_small.headers.get("Min-SE") == "90"
    drain(ep)
    phone2 = Phone(call_id="st2@x", from_tag="st2")
    ep.receive_datagram(phone2.invite(extra=(("Session-Expires", "1800"), ("Supported", "timer"))), PEER, 1.0)
    [invite] = drain(ep)
    ep.answer(invite.call_id, b"v=0\r\n", 1.0)  # type: ignore[attr-defined]
    ok = responses(ep)[-1]
    assert ok.headers.get("Session-Expires") == "1800;refresher=uac" and ok.headers.get("Require") == "timer"


def test_early_media_183_then_answer() -> None:
    from tests.unit.sip.test_endpoint import ANSWER_SDP, invited

    ep, phone, event, _ = invited()
    ep.send_progress(event.call_id, ANSWER_SDP, 0.1)
    trying, progress = responses(ep)
    assert trying.status == 100
    assert progress.status == 183 and progress.body == ANSWER_SDP and progress.to_addr.tag
    assert progress.headers.get("Content-Type") == "application/sdp" and progress.headers.get("Contact")
    ep.answer(event.call_id, ANSWER_SDP, 1.0)
    [ok] = responses(ep)
    assert ok.status == 200 and ok.to_addr.tag == progress.to_addr.tag


def test_refer_before_the_ack_waits_for_it() -> None:
    from tests.unit.sip.sipkit import sent
    from tests.unit.sip.test_endpoint import ANSWER_SDP, invited

    ep, phone, event, _ = invited()
    ep.answer(event.call_id, ANSWER_SDP, 0.1)
    tag = responses(ep)[-1].to_addr.tag
    ep.refer(event.call_id, "sip:carol@example.com", 0.2)
    assert sent(ep) == []
    ep.receive_datagram(phone.request("ACK", cseq=1, to_tag=tag), PEER, 0.3)
    [(refer, _, _)] = sent(ep)
    assert refer.method == "REFER" and refer.headers.get("Refer-To") == "<sip:carol@example.com>"  # type: ignore[union-attr]
