"""The inbound call: one INVITE we answer as a UAS, as an Enum, a table and one raise.

Theory of operation: the endpoint feeds ``CallInput``s to ``InboundCall.apply`` as commands
arrive from the application (RING, ANSWER, REJECT, HANGUP) and messages from the peer (ACK,
CANCEL, BYE) or timers fire. The table says which inputs each state accepts; anything else raises
``InvalidTransition`` with the state and input in the message, which is how ``answer()`` after a
CANCEL is reported to the application. An outbound call (``outbound``: we sent the INVITE) joins
at CONFIRMED once its 2xx is ACKed, so that BYE, re-INVITE, INFO and hangup work the same for
both directions. The call also keeps the 2xx retransmission schedule of RFC 3261 §13.3.1.4 (the
core, not the transaction, resends 200 OK at T1, 2T1... up to T2 until the ACK; with no ACK by
64*T1 the call is torn down) and ``forget_at``, when the endpoint drops it. Setting either reports
the deadline to the endpoint's timer index (``timers.py``); ``Pending2xx.backoff`` runs only in
the endpoint's ``handle_timer``, which re-indexes every call it ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from mssip.dialog import Dialog
from mssip.errors import InvalidTransition
from mssip.message import Request
from mssip.timers import Timed
from mssip.transaction import T1, T2, TIMEOUT, ServerTransaction

Addr = tuple[str, int]


class CallState(Enum):
    PROCEEDING = auto()  # 100 Trying sent, the application decides
    RINGING = auto()  # 180 sent (early dialog)
    ANSWERED = auto()  # 200 OK sent, waiting for the ACK
    CONFIRMED = auto()  # ACK received: the call is up
    TERMINATING = auto()  # our BYE is out, waiting for its response
    ENDED = auto()


class CallInput(Enum):
    RING = auto()
    ANSWER = auto()
    REJECT = auto()
    CANCEL = auto()
    ACK = auto()
    ACK_TIMEOUT = auto()
    HANGUP = auto()
    BYE_RECEIVED = auto()
    BYE_ANSWERED = auto()
    BYE_TIMEOUT = auto()


C, In = CallState, CallInput
TRANSITIONS: dict[CallState, dict[CallInput, CallState]] = {
    C.PROCEEDING: {
        In.RING: C.RINGING,
        In.ANSWER: C.ANSWERED,
        In.REJECT: C.ENDED,
        In.CANCEL: C.ENDED,
        In.BYE_RECEIVED: C.ENDED,
    },
    C.RINGING: {
        In.RING: C.RINGING,
        In.ANSWER: C.ANSWERED,
        In.REJECT: C.ENDED,
        In.CANCEL: C.ENDED,
        In.BYE_RECEIVED: C.ENDED,
    },
    C.ANSWERED: {In.ACK: C.CONFIRMED, In.ACK_TIMEOUT: C.ENDED, In.BYE_RECEIVED: C.ENDED},
    C.CONFIRMED: {In.HANGUP: C.TERMINATING, In.ACK_TIMEOUT: C.ENDED, In.BYE_RECEIVED: C.ENDED},
    C.TERMINATING: {In.BYE_ANSWERED: C.ENDED, In.BYE_TIMEOUT: C.ENDED, In.BYE_RECEIVED: C.ENDED},
    C.ENDED: {},
}


@dataclass(slots=True)
class Pending2xx:
    """A 2xx to an INVITE (initial or re-INVITE) that we resend until its ACK arrives."""

    wire: bytes
    cseq: int
    addr: Addr
    transport: str
    next_at: float
    give_up_at: float
    interval: float = T1

    @classmethod
    def start(cls, wire: bytes, cseq: int, tx: ServerTransaction, now: float) -> Pending2xx:
        return cls(wire, cseq, tx.addr, tx.transport, now + T1, now + TIMEOUT)

    def backoff(self, now: float) -> None:
        self.interval = min(2 * self.interval, T2)
        self.next_at = now + self.interval


class InboundCall(Timed):
    def __init__(self, invite: Request, invite_tx: ServerTransaction | None, dialog: Dialog) -> None:
        self.call_id = invite.call_id
        self.invite = invite
        self.invite_tx = invite_tx
        self.dialog = dialog
        self.state = CallState.PROCEEDING
        self.answer_sdp: bytes | None = None  # the SDP of our 200 OK
        self.remote_sdp: bytes | None = invite.body or None  # the peer's offer (or answer, from the ACK)
        self._pending_2xx: Pending2xx | None = None
        self.offer_tx: ServerTransaction | None = None  # a mid-call offer the application is answering
        self.pending_refer: str | None = None  # refer() before the ACK: the target, sent on ACK
        self.outbound = False  # True for a call we placed (invite_tx is None then)
        self.last_ack: bytes | None = None  # outbound: the ACK of the 2xx, resent if the 2xx is
        self.bye_pending = False  # hangup() came before the ACK: send BYE once it arrives
        self._forget_at: float | None = None

    @property
    def pending_2xx(self) -> Pending2xx | None:
        return self._pending_2xx

    @pending_2xx.setter
    def pending_2xx(self, pending: Pending2xx | None) -> None:
        self._pending_2xx = pending
        if pending is not None:
            self._armed(min(pending.next_at, pending.give_up_at))

    @property
    def forget_at(self) -> float | None:
        return self._forget_at

    @forget_at.setter
    def forget_at(self, at: float | None) -> None:
        self._forget_at = at
        if at is not None:
            self._armed(at)

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    @property
    def answered(self) -> bool:
        return self.answer_sdp is not None

    def can(self, event: CallInput) -> bool:
        return event in TRANSITIONS[self.state]

    def apply(self, event: CallInput) -> None:
        try:
            self.state = TRANSITIONS[self.state][event]
        except KeyError:
            raise InvalidTransition(f"{event.name} in {self.state.name} (call {self.call_id})") from None

    def end(self, event: CallInput, now: float, linger: float = TIMEOUT) -> None:
        """Apply an input that ends the call and schedule forgetting it (Timer J-like)."""
        self.apply(event)
        self.pending_2xx = None
        self.forget_at = now + linger

    def next_deadline(self) -> float | None:
        forget, pending = self._forget_at, self._pending_2xx
        if pending is None:
            return forget
        first = min(pending.next_at, pending.give_up_at)
        return first if forget is None else min(forget, first)
