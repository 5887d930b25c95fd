"""The timer heap (``mssip.timers``) against the linear scans it replaced.

A differential property test drives a ``SipEndpoint`` and a ``ScanEndpoint`` (the same endpoint
with the old ``get_timer``/``handle_timer`` scans, kept here as the reference) through the same
random calls, commands, responses and timer fires, and asserts that they send the same bytes
in the same order, emit the same events, keep the same tables, and that ``get_timer()`` is the
minimum of every object's ``next_deadline()``. A cost test counts ``next_deadline`` calls.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mssip.call import InboundCall
from mssip.endpoint import SipEndpoint
from mssip.errors import LocalProtocolError
from mssip.events import SipEvent
from mssip.message import Request
from mssip.parser import parse_message
from mssip.timers import Timed, TimerIndex
from mssip.transaction import _Transaction
from tests.unit.sip.sipkit import Phone, drain, load_sdp
from tests.unit.sip.test_uac import OFFER, reply

CALLEE = ("198.51.100.20", 5060)
REGISTRAR = ("198.51.100.30", 5060)
PHONES = [("UDP", ("198.51.100.7", 40000)), ("TCP", ("198.51.100.8", 40001)), ("UDP", ("198.51.100.9", 40002))]
PEERS = [addr for _, addr in PHONES] + [CALLEE, REGISTRAR]
NEW_OFFER = load_sdp("baresip.sdp").replace(b"o=", b"o=changed", 1)


class ScanEndpoint(SipEndpoint):
    """The endpoint with the scans ``get_timer``/``handle_timer`` had before the heap."""

    def get_timer(self) -> float | None:
        return scan_min(self)

    def handle_timer(self, now: float) -> None:
        for key, tx in list(self._server_tx.items()):
            for data in tx.handle_timer(now):
                self._send(data, tx.addr, tx.transport)
            if tx.terminated:
                del self._server_tx[key]
        for key, ctx in list(self._client_tx.items()):
            for data in ctx.handle_timer(now):
                self._send(data, ctx.addr, ctx.transport)
            if ctx.terminated:
                del self._client_tx[key]
                if ctx.timed_out:
                    self._client_final(ctx, None, now)
        self._uac_timer(now)
        for call_id, call in list(self._calls.items()):
            pending = call.pending_2xx
            if pending is not None and pending.give_up_at <= now:
                self._ack_timeout(call, now)
            elif pending is not None and pending.next_at <= now:
                self._send(pending.wire, pending.addr, pending.transport)
                pending.backoff(now)
            if call.forget_at is not None and call.forget_at <= now:
                del self._calls[call_id]


def scan_min(ep: SipEndpoint) -> float | None:
    """The brute-force answer: the minimum over every object's ``next_deadline()``."""
    deadlines = [tx.next_deadline() for tx in ep._server_tx.values()]
    deadlines += [tx.next_deadline() for tx in ep._client_tx.values()]
    deadlines += [call.next_deadline() for call in ep._calls.values()]
    deadlines += ep._uac_deadlines()
    return min((d for d in deadlines if d is not None), default=None)


PEER_STEPS = ["invite", "invite-again", "ack", "bye", "cancel", "options", "reinvite", "update", "info"]
APP_STEPS = ["ring", "answer", "reject", "hangup", "accept-offer", "reject-offer", "refer"]
# Weighted so that random runs often get as far as answered, ACKed, re-INVITEd and hung-up calls.
# Shorthands reach deep states in few steps (each part is still compared on its own).
# A call step's phone index is appended to each part.
SHORTHANDS: dict[object, list[tuple[object, ...]]] = {
    "answered": [("invite",), ("answer",), ("ack",)],
    "offered": [("invite",), ("answer",), ("ack",), ("reinvite",)],
    "dial-answered": [("dial",), ("reply", 3, 200)],
}
CALL_STEPS = PEER_STEPS + APP_STEPS + ["answered", "offered", "ack", "bye", "reinvite", "accept-offer", "hangup"]
PHONE = st.sampled_from([0, 0, 0, 1, 1, 2])
CALL_STEP = st.tuples(st.sampled_from(CALL_STEPS), PHONE)
STEPS = st.lists(
    st.one_of(
        CALL_STEP,
        CALL_STEP,
        CALL_STEP,
        st.tuples(st.just("reply"), st.integers(0, len(PEERS) - 1), st.sampled_from([100, 180, 200, 401, 486, 500])),
        st.tuples(st.sampled_from(["dial", "dial-answered", "register", "cancel-dial", "fire", "fire"])),
        st.tuples(st.just("wait"), st.one_of(st.floats(0.0, 2.0), st.floats(0.0, 40.0))),
    ),
    min_size=5,
    max_size=50,
)


class Twins:
    """The same inputs to a heap endpoint and a scan endpoint; every output compared."""

    def __init__(self) -> None:
        self.heap = SipEndpoint("192.0.2.1", 5060, rng=random.Random(7))
        self.scan = ScanEndpoint("192.0.2.1", 5060, rng=random.Random(7))
        self.now = 0.0
        self.last_sent: dict[tuple[str, int], Request] = {}  # the last request each peer got
        self.events: list[SipEvent] = []

    def both(self, action: Callable[[SipEndpoint], object]) -> None:
        outcomes = []
        for ep in (self.heap, self.scan):
            try:
                outcomes.append(repr(action(ep)))
            except LocalProtocolError as err:
                outcomes.append(repr(err))
        assert outcomes[0] == outcomes[1]
        self.check()

    def check(self) -> None:
        out, ref = self.heap.datagrams_to_send(), self.scan.datagrams_to_send()
        assert out == ref
        events = drain(self.heap)
        assert events == drain(self.scan)
        self.events += events
        for data, addr, _ in out:
            message = parse_message(data)
            if isinstance(message, Request) and message.method != "ACK":
                self.last_sent[addr] = message
        for name in ("_server_tx", "_client_tx", "_calls", "_invite_ctx", "_outbound", "_bindings"):
            assert list(getattr(self.heap, name)) == list(getattr(self.scan, name)), name
        assert self.heap.get_timer() == scan_min(self.heap) == self.scan.get_timer()

    def fire(self, now: float) -> None:
        self.now = max(self.now, now)
        self.both(lambda ep: ep.handle_timer(self.now))


def app_command(ep: SipEndpoint, *, kind: object, call_id: str, now: float) -> None:
    if kind == "ring":
        ep.send_ringing(call_id, now)
    elif kind == "answer":
        ep.answer(call_id, b"v=0\r\n", now)
    elif kind == "reject":
        ep.reject(call_id, 486, "Busy Here", now)
    elif kind == "hangup":
        ep.hangup(call_id, now)
    elif kind == "accept-offer":
        ep.accept_offer(call_id, b"v=0\r\n", now)
    elif kind == "reject-offer":
        ep.reject_offer(call_id, 488, "Not Here", now)
    else:
        ep.refer(call_id, "sip:carol@example.com", now)


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_heap_matches_the_scan(steps: list[tuple[object, ...]]) -> None:
    twins = Twins()
    phones = [
        Phone(call_id=f"heap-{i}", from_tag=f"tag{i}", host=a[0], port=a[1], transport=t)
        for i, (t, a) in enumerate(PHONES)
    ]
    branches = [p.new_branch() for p in phones]
    cseqs, invite_cseqs = [1] * len(phones), [1] * len(phones)
    tags: list[str | None] = [None] * len(phones)

    def feed(data: bytes, addr: tuple[str, int], transport: str = "udp") -> None:
        twins.both(lambda ep: ep.receive_datagram(data, addr, twins.now, transport))

    for step in [part + whole[1:] for whole in steps for part in SHORTHANDS.get(whole[0], [whole[:1]])]:
        kind = step[0]
        if kind == "wait":
            twins.fire(twins.now + float(step[1]))  # late: everything due by then runs at once
        elif kind == "fire":
            deadline = twins.heap.get_timer()
            if deadline is not None:
                twins.fire(deadline)
        elif kind == "dial":
            twins.both(
                lambda ep: ep.invite(
                    "sip:bob@198.51.100.20", from_uri="sip:agent@192.0.2.1", sdp=OFFER, addr=CALLEE, now=twins.now
                )
            )
        elif kind == "cancel-dial":
            for call_id in list(twins.heap._outbound):
                twins.both(lambda ep, c=call_id: ep.cancel(c, twins.now))  # type: ignore[misc]
        elif kind == "register":
            twins.both(
                lambda ep: ep.register("sip:example.com", aor="sip:agent@example.com", addr=REGISTRAR, now=twins.now)
            )
        elif kind == "reply":
            addr = PEERS[int(step[1])]  # type: ignore[call-overload]
            request = twins.last_sent.get(addr)
            if request is not None:
                tagged = request.to_addr.tag is not None
                data = reply(request, int(step[2]), "Whatever", to_tag=None if tagged else "peer")  # type: ignore[call-overload]
                feed(data, addr, "tcp" if addr == PHONES[1][1] else "udp")
        else:
            i = int(step[1])  # type: ignore[call-overload]
            phone, call_id, addr = phones[i], phones[i].call_id, PHONES[i][1]
            transport = PHONES[i][0].lower()
            if kind in APP_STEPS:
                twins.both(partial(app_command, kind=kind, call_id=call_id, now=twins.now))
                continue
            if kind == "invite":
                branches[i], invite_cseqs[i] = phone.new_branch(), 1
                data = phone.invite(branch=branches[i])
            elif kind == "invite-again":
                data = phone.invite(branch=branches[i])
            elif kind == "ack":
                data = phone.request("ACK", cseq=invite_cseqs[i], branch=branches[i], to_tag=tags[i])
            elif kind == "cancel":
                data = phone.request("CANCEL", cseq=1, branch=branches[i])
            else:
                cseqs[i] = max(cseqs[i], invite_cseqs[i]) + 1
                method = {"reinvite": "INVITE"}.get(kind, kind.upper())
                body = NEW_OFFER if kind == "reinvite" else b""
                if kind == "reinvite":
                    branches[i], invite_cseqs[i] = phone.new_branch(), cseqs[i]
                data = phone.request(
                    method, cseq=cseqs[i], to_tag=tags[i], body=body, branch=branches[i] if kind == "reinvite" else None
                )
            feed(data, addr, transport)
            if (call := twins.heap._calls.get(call_id)) is not None:
                tags[i] = call.dialog.local_tag  # our To tag, for the phone's in-dialog requests
    # End every call and run every timer out: both forget the same things in the same steps.
    for _ in range(500):
        for call_id in [*twins.heap._calls, *twins.heap._outbound]:
            twins.both(partial(end_call, call_id=call_id, now=twins.now))
        for reg_id, binding in list(twins.heap._bindings.items()):
            if not binding.closing:
                twins.both(lambda ep, reg_id=reg_id: ep.unregister(reg_id, twins.now))  # type: ignore[misc]
        deadline = twins.heap.get_timer()
        if deadline is None:
            break
        twins.fire(deadline)
    assert twins.heap.get_timer() is None
    assert not twins.heap._calls and not twins.heap._server_tx and not twins.heap._client_tx


def end_call(ep: SipEndpoint, *, call_id: str, now: float) -> None:
    ep.hangup(call_id, now)
    ep.cancel(call_id, now)


class Owner(Timed):
    """A bare ``Timed``: its deadline is set by the test, reported or not."""

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline

    def next_deadline(self) -> float | None:
        return self.deadline

    def set(self, at: float) -> None:
        self.deadline = at
        self._armed(at)


def test_index_follows_deadlines_moved_later_or_dropped_without_a_report() -> None:
    index = TimerIndex()
    table = index.table()
    a, b = Owner(1.0), Owner(2.0)
    table["a"], table["b"] = a, b  # entering a table indexes the current deadline
    assert index.peek() == 1.0
    a.deadline = 5.0  # moved later, unreported: the entry at 1.0 is re-filed at 5.0
    assert index.peek() == 2.0
    b.deadline = None
    assert index.peek() == 5.0
    a.set(0.5)  # earlier: reported
    assert index.peek() == 0.5
    del table["a"]
    a.set(0.1)  # no longer in a table: not indexed
    assert index.peek() is None
    table["a"] = a
    assert index.peek() == 0.1


def test_due_owners_come_in_table_then_insertion_order() -> None:
    index = TimerIndex()
    first, second = index.table(), index.table()
    owners = {name: Owner() for name in ("x", "y", "z", "w")}
    second["w"] = owners["w"]
    first["x"], first["y"] = owners["x"], owners["y"]
    for name, at in (("w", 1.0), ("x", 3.0), ("y", 2.0)):
        owners[name].set(at)
    assert index.pop_due(3.0) == [owners["x"], owners["y"], owners["w"]]
    # A replaced key keeps its place, as in a dict: z takes x's turn, before y.
    first["x"] = owners["z"]
    for name in ("y", "z"):
        owners[name].set(4.0)
    owners["x"].set(4.0)  # x left the table: its report is ignored
    assert index.pop_due(4.0) == [owners["z"], owners["y"]]
    assert index.peek() is None


@pytest.fixture
def count_next_deadline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts every ``next_deadline`` call on a transaction or a call."""
    calls = [0]
    for cls in (_Transaction, InboundCall):
        original = cls.next_deadline

        def counted(self: object, original: Callable[[object], float | None] = original) -> float | None:  # type: ignore[assignment]
            calls[0] += 1
            return original(self)

        monkeypatch.setattr(cls, "next_deadline", counted)
    yield calls


def live_calls(ep: SipEndpoint, n: int) -> None:
    """``n`` INVITEs answered and ACKed, as the glue drives them (a get_timer per event)."""
    for i in range(n):
        phone = Phone(call_id=f"load-{i}", from_tag=f"t{i}")
        now = i * 0.01
        ep.receive_datagram(phone.invite(), ("198.51.100.7", 40000), now)
        ep.get_timer()
        ep.answer(phone.call_id, b"v=0\r\n", now)
        ep.get_timer()
        tag = ep._calls[phone.call_id].dialog.local_tag
        ep.receive_datagram(phone.request("ACK", cseq=1, to_tag=tag), ("198.51.100.7", 40000), now + 0.6)
        ep.get_timer()
    ep.datagrams_to_send()
    drain(ep)


@pytest.mark.parametrize("kind", [SipEndpoint, ScanEndpoint])
def test_get_timer_cost_does_not_grow_with_transactions(
    kind: type[SipEndpoint], count_next_deadline: list[int]
) -> None:
    n = 2000
    ep = kind("192.0.2.1", 5060, rng=random.Random(3))
    live_calls(ep, n)
    assert len(ep._server_tx) == n and len(ep._calls) == n  # INVITE transactions linger for Timer L
    count_next_deadline[0] = 0
    deadline = ep.get_timer()
    looked = count_next_deadline[0]
    assert deadline == pytest.approx(32.0)  # the first Timer L
    if kind is ScanEndpoint:
        assert looked > n  # the old scan: every transaction and call, every time
    else:
        assert looked < 20
        # Firing it runs the one due transaction, not all of them.
        count_next_deadline[0] = 0
        ep.handle_timer(deadline)
        ep.get_timer()
        assert count_next_deadline[0] < 20 and len(ep._server_tx) == n - 1
