"""``receive_datagram`` returns False only when the datagram left the timer as it was.

The SIP front end skips ``get_timer()`` after such a datagram (a flood is mostly rate-limited
requests, keep-alives and garbage), so a False after a datagram that did move a deadline would
leave a retransmission or a teardown unarmed. Random sequences of requests, answers, clock steps,
floods and drains check the promise against the endpoint's own scan.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from mssip.endpoint import SipEndpoint
from mssip.errors import LocalProtocolError
from mssip.events import InviteReceived
from mssip.security import RateLimiter
from tests.unit.sip.sipkit import PEER, Phone, drain

CALL_IDS = [f"c{n}@pc33.example.com" for n in range(3)]
SOURCES = [PEER, ("203.0.113.9", 5060)]

KINDS = (
    "keepalive",
    "garbage",
    "bad_request",
    "options",
    "register",
    "invite",
    "ack",
    "bye",
    "again",
    "answer",
    "hangup",
    "tick",
    "drain",
)

step = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, len(CALL_IDS) - 1),
    st.integers(0, len(SOURCES) - 1),
    st.floats(0.0, 40.0),
    st.binary(min_size=1, max_size=60),
)


def _checked(endpoint: SipEndpoint, data: bytes, addr: tuple[str, int], now: float) -> bool:
    before = endpoint.get_timer()
    changed = endpoint.receive_datagram(data, addr, now)
    if not changed:
        assert endpoint.get_timer() == before, data
    drain(endpoint)
    endpoint.datagrams_to_send()
    return changed


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=40))
def test_false_means_the_timer_did_not_move(steps: list[tuple[str, int, int, float, bytes]]) -> None:
    endpoint = SipEndpoint("192.0.2.1", 5060, rng=random.Random(7), rate_limiter=RateLimiter(rate_per_s=1, burst=3))
    phones = {call_id: Phone(call_id=call_id) for call_id in CALL_IDS}
    last: bytes | None = None
    now = 0.0
    for kind, n, s, dt, junk in steps:
        call_id, addr = CALL_IDS[n], SOURCES[s]
        phone = phones[call_id]
        call = endpoint._calls.get(call_id)  # noqa: SLF001  (the test reads the dialog's tag)
        to_tag = call.dialog.local_tag if call is not None else None
        data: bytes | None = None
        if kind == "keepalive":
            data = b"\r\n\r\n"
        elif kind == "garbage":
            data = junk
        elif kind == "bad_request":  # a Via to answer to, no CSeq: a stateless 400
            data = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n\r\n"
        elif kind in ("options", "register"):
            data = phone.request(kind.upper(), cseq=2)
        elif kind == "invite":
            data = phone.invite()
        elif kind in ("ack", "bye") and to_tag is not None:
            data = phone.request(kind.upper(), cseq=1 if kind == "ack" else 3, to_tag=to_tag)
        elif kind == "again":
            data = last
        elif kind in ("answer", "hangup") and call is not None:
            try:
                if kind == "answer":
                    endpoint.answer(call_id, b"", now)
                else:
                    endpoint.hangup(call_id, now)
            except LocalProtocolError:
                pass  # not in a state to answer: the endpoint refuses, as it should
            drain(endpoint)
            endpoint.datagrams_to_send()
        elif kind == "tick":
            now += dt
            timer = endpoint.get_timer()
            if timer is not None and timer <= now:
                endpoint.handle_timer(now)
                drain(endpoint)
                endpoint.datagrams_to_send()
        elif kind == "drain":
            endpoint.unavailable_retry_after_s = None if endpoint.unavailable_retry_after_s else 30
        if data is not None:
            _checked(endpoint, data, addr, now)
            last = data


def test_what_counts_as_stateless() -> None:
    endpoint = SipEndpoint("192.0.2.1", 5060, rng=random.Random(1), rate_limiter=RateLimiter(rate_per_s=1, burst=1))
    phone = Phone()
    assert endpoint.receive_datagram(b"\r\n\r\n", PEER, 0.0) is False  # keep-alive
    assert endpoint.receive_datagram(b"\x00garbage", PEER, 0.0) is False  # parse fault
    assert endpoint.receive_datagram(phone.request("OPTIONS", cseq=1), PEER, 0.0) is True  # a transaction
    assert endpoint.receive_datagram(phone.request("OPTIONS", cseq=2), PEER, 0.0) is False  # rate limited: 503
    assert [e for e in drain(endpoint) if isinstance(e, InviteReceived)] == []
    assert endpoint.get_timer() is not None  # the first OPTIONS' Timer J


def test_in_dialog_requests_are_never_stateless_under_a_flood() -> None:
    endpoint = SipEndpoint("192.0.2.1", 5060, rng=random.Random(1), rate_limiter=RateLimiter(rate_per_s=1, burst=1))
    phone = Phone()
    assert endpoint.receive_datagram(phone.invite(), PEER, 0.0) is True
    drain(endpoint)
    endpoint.answer(phone.call_id, b"", 0.0)
    to_tag = endpoint._calls[phone.call_id].dialog.local_tag  # noqa: SLF001
    assert endpoint.receive_datagram(Phone(call_id="other").request("OPTIONS", cseq=1), PEER, 0.0) is False
    assert endpoint.receive_datagram(phone.request("BYE", cseq=2, to_tag=to_tag), PEER, 0.0) is True
