"""Property test: any interleaving of peer messages, app commands and timers keeps the invariants.

No exception escapes ``receive_datagram``/``handle_timer``; each call yields ``InviteReceived``
first and exactly one ``CallEnded`` last (once it is over); everything is forgotten in the end.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from mssip.endpoint import SipEndpoint
from mssip.errors import LocalProtocolError, SipParseError
from mssip.events import CallEnded, InviteReceived, MessageRejected, SipEvent
from mssip.message import Request
from mssip.parser import parse_message
from tests.unit.sip.sipkit import PEER, Phone

STEPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["invite", "invite-again", "ack", "bye", "cancel", "options", "reinvite"])),
        st.tuples(st.just("mangle"), st.integers(0, 400), st.binary(min_size=1, max_size=4)),
        st.tuples(st.sampled_from(["ring", "answer", "reject", "hangup"])),
        st.tuples(st.just("wait"), st.floats(0.01, 40.0)),
        st.tuples(st.just("reply-bye"), st.sampled_from([200, 408, 481, 500])),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(STEPS, st.integers(0, 3))
def test_any_interleaving_keeps_invariants(steps: list[tuple[object, ...]], call_index: int) -> None:
    ep = SipEndpoint("192.0.2.1", 5060, rng=random.Random(1))
    phone = Phone(call_id=f"prop-{call_index}")
    now, cseq, invite_branch = 0.0, 1, phone.new_branch()
    our_tag: str | None = None
    last_bye: Request | None = None
    events: list[SipEvent] = []

    def pump() -> None:
        nonlocal our_tag, last_bye
        for data, _, _ in ep.datagrams_to_send():
            try:
                message = parse_message(data)
            except SipParseError:
                assert data.startswith(b"SIP/2.0 400 ")  # a 400 echoes the bad headers as received
                continue
            if isinstance(message, Request):
                last_bye = message
            elif message.to_addr.tag and message.cseq.method == "INVITE":
                our_tag = message.to_addr.tag
        while (event := ep.next_event()) is not None:
            events.append(event)

    for step in steps:
        kind = step[0]
        if kind == "wait":
            target = now + float(step[1])  # type: ignore[arg-type]
            while (deadline := ep.get_timer()) is not None and deadline <= target:
                now = max(now, deadline)
                ep.handle_timer(now)
                pump()
            now = target
            continue
        data: bytes | None = None
        if kind in ("invite", "invite-again"):
            data = phone.invite(branch=invite_branch if kind == "invite-again" else None)
        elif kind == "ack":
            data = phone.request("ACK", cseq=1, to_tag=our_tag)
        elif kind in ("bye", "options", "reinvite"):
            cseq += 1
            method = "INVITE" if kind == "reinvite" else kind.upper()
            data = phone.request(method, cseq=cseq, to_tag=our_tag)
        elif kind == "cancel":
            data = phone.request("CANCEL", cseq=1, branch=invite_branch)
        elif kind == "mangle":
            base = phone.invite(branch=invite_branch)
            at, junk = int(step[1]) % len(base), bytes(step[2])  # type: ignore[call-overload]
            data = base[:at] + junk + base[at + len(junk) :]
        elif kind == "reply-bye" and last_bye is not None:
            data = phone.reply(last_bye, int(step[1]), "Whatever")  # type: ignore[call-overload]
        elif kind in ("ring", "answer", "reject", "hangup"):
            try:
                if kind == "ring":
                    ep.send_ringing(phone.call_id, now)
                elif kind == "answer":
                    ep.answer(phone.call_id, b"v=0\r\n", now)
                elif kind == "reject":
                    ep.reject(phone.call_id, 486, "Busy Here", now)
                else:
                    ep.hangup(phone.call_id, now)
            except LocalProtocolError:
                pass
        if data is not None:
            ep.receive_datagram(data, PEER, now)
        pump()

    def hang_up_all() -> None:  # whatever state they are in, end them
        for call_id in {e.call_id for e in events if isinstance(e, InviteReceived)}:
            ep.hangup(call_id, now)
        pump()

    hang_up_all()
    while (deadline := ep.get_timer()) is not None:
        assert deadline < now + 1000, "a timer keeps re-arming"
        now = max(now, deadline)
        ep.handle_timer(now)
        hang_up_all()

    for call_id in {e.call_id for e in events if isinstance(e, InviteReceived)}:
        check_call(call_id, [e for e in events if getattr(e, "call_id", None) == call_id])
    assert ep.get_timer() is None


def check_call(call_id: str, call_events: list[SipEvent]) -> None:
    call_events = [e for e in call_events if not isinstance(e, MessageRejected)]
    # Calls with the same Call-ID can follow one another (a new INVITE after the first ended).
    while call_events:
        assert isinstance(call_events[0], InviteReceived)
        end = next((i for i, e in enumerate(call_events) if isinstance(e, CallEnded)), None)
        assert end is not None, call_events
        assert not any(isinstance(e, InviteReceived) for e in call_events[1:end])
        call_events = call_events[end + 1 :]
