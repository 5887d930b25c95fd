"""RFC 3261 §17 transactions as state tables, with timers stored as absolute deadlines.

Theory of operation: a transaction pairs one request with its responses and hides UDP loss.
Each machine is ``TRANSITIONS[state][input] -> state``; an input the table lacks raises
``InvalidTransition`` naming both (the endpoint checks ``accepts`` first for inputs that come
from the network, so a peer's stray message is ignored, not raised). Timers are deadlines on the
caller's ``now`` scale in ``deadlines``, armed only through ``_arm``, which reports each one to
the endpoint's timer index (``timers.py``; clearing one needs no report); ``handle_timer(now)``
fires the due ones and returns the bytes to resend. Over reliable transports (TCP) the retransmit
timers (E, G) are never armed and the wait timers (I, J, K) are zero, as RFC 3261 §17 says.

Implemented: the INVITE server transaction (with the RFC 6026 Accepted state: after a 2xx the
core, not the transaction, retransmits; the transaction lingers for Timer L to soak up INVITE
retransmissions), the non-INVITE server transaction, the non-INVITE client transaction (BYE,
CANCEL, REGISTER, REFER we send: Timers E, F, K) and the INVITE client transaction (Timers A, B,
D and RFC 6026's M; it builds the ACK of a non-2xx final response itself, §17.1.1.3, while the
ACK of a 2xx belongs to the dialog).
"""

from __future__ import annotations

from enum import Enum, auto

from mssip.errors import InvalidTransition
from mssip.headers import Headers
from mssip.message import Request, Response
from mssip.timers import Timed

Addr = tuple[str, int]

T1 = 0.5  # RTT estimate, seconds
T2 = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
T4 = 5.0  # maximum duration a message stays in the network
TIMEOUT = 64 * T1  # Timers B, F, H, J, L: 32 s
MAGIC_COOKIE = "z9hG4bK"


class TxState(Enum):
    CALLING = auto()
    TRYING = auto()
    PROCEEDING = auto()
    COMPLETED = auto()
    CONFIRMED = auto()
    ACCEPTED = auto()
    TERMINATED = auto()


class TxInput(Enum):
    REQUEST_AGAIN = auto()  # a retransmission of the request arrived (server)
    SEND_PROVISIONAL = auto()
    SEND_2XX = auto()
    SEND_FINAL = auto()  # a non-2xx final response
    ACK = auto()  # ACK for a non-2xx final response (server, INVITE)
    RECV_PROVISIONAL = auto()  # (client)
    RECV_FINAL = auto()
    RECV_2XX = auto()  # (client, INVITE)
    TIMER_A = auto()
    TIMER_B = auto()
    TIMER_D = auto()
    TIMER_M = auto()
    TIMER_E = auto()
    TIMER_F = auto()
    TIMER_G = auto()
    TIMER_H = auto()
    TIMER_I = auto()
    TIMER_J = auto()
    TIMER_K = auto()
    TIMER_L = auto()


S, I = TxState, TxInput  # noqa: E741  # short names keep the tables readable
Table = dict[TxState, dict[TxInput, TxState]]

INVITE_SERVER: Table = {
    S.PROCEEDING: {
        I.REQUEST_AGAIN: S.PROCEEDING,
        I.SEND_PROVISIONAL: S.PROCEEDING,
        I.SEND_2XX: S.ACCEPTED,
        I.SEND_FINAL: S.COMPLETED,
    },
    S.COMPLETED: {
        I.REQUEST_AGAIN: S.COMPLETED,
        I.ACK: S.CONFIRMED,
        I.TIMER_G: S.COMPLETED,
        I.TIMER_H: S.TERMINATED,
    },
    S.CONFIRMED: {I.REQUEST_AGAIN: S.CONFIRMED, I.ACK: S.CONFIRMED, I.TIMER_I: S.TERMINATED},
    S.ACCEPTED: {I.REQUEST_AGAIN: S.ACCEPTED, I.SEND_2XX: S.ACCEPTED, I.TIMER_L: S.TERMINATED},
    S.TERMINATED: {},
}

NON_INVITE_SERVER: Table = {
    S.TRYING: {
        I.REQUEST_AGAIN: S.TRYING,
        I.SEND_PROVISIONAL: S.PROCEEDING,
        I.SEND_2XX: S.COMPLETED,
        I.SEND_FINAL: S.COMPLETED,
    },
    S.PROCEEDING: {
        I.REQUEST_AGAIN: S.PROCEEDING,
        I.SEND_PROVISIONAL: S.PROCEEDING,
        I.SEND_2XX: S.COMPLETED,
        I.SEND_FINAL: S.COMPLETED,
    },
    S.COMPLETED: {I.REQUEST_AGAIN: S.COMPLETED, I.TIMER_J: S.TERMINATED},
    S.TERMINATED: {},
}

NON_INVITE_CLIENT: Table = {
    S.TRYING: {
        I.TIMER_E: S.TRYING,
        I.TIMER_F: S.TERMINATED,
        I.RECV_PROVISIONAL: S.PROCEEDING,
        I.RECV_FINAL: S.COMPLETED,
    },
    S.PROCEEDING: {
        I.TIMER_E: S.PROCEEDING,
        I.TIMER_F: S.TERMINATED,
        I.RECV_PROVISIONAL: S.PROCEEDING,
        I.RECV_FINAL: S.COMPLETED,
    },
    S.COMPLETED: {I.RECV_PROVISIONAL: S.COMPLETED, I.RECV_FINAL: S.COMPLETED, I.TIMER_K: S.TERMINATED},
    S.TERMINATED: {},
}


INVITE_CLIENT: Table = {
    S.CALLING: {
        I.TIMER_A: S.CALLING,
        I.TIMER_B: S.TERMINATED,
        I.RECV_PROVISIONAL: S.PROCEEDING,
        I.RECV_2XX: S.ACCEPTED,
        I.RECV_FINAL: S.COMPLETED,
    },
    S.PROCEEDING: {I.RECV_PROVISIONAL: S.PROCEEDING, I.RECV_2XX: S.ACCEPTED, I.RECV_FINAL: S.COMPLETED},
    S.COMPLETED: {I.RECV_PROVISIONAL: S.COMPLETED, I.RECV_FINAL: S.COMPLETED, I.TIMER_D: S.TERMINATED},
    # RFC 6026: 2xx retransmissions (and forks) go to the TU until Timer M.
    S.ACCEPTED: {I.RECV_PROVISIONAL: S.ACCEPTED, I.RECV_2XX: S.ACCEPTED, I.TIMER_M: S.TERMINATED},
    S.TERMINATED: {},
}


def server_key(request: Request, method: str | None = None) -> str:
    """The key matching retransmissions and ACKs to a server transaction (§17.2.3).

    An ACK maps to its INVITE; pass ``method="INVITE"`` to find the INVITE a CANCEL cancels.
    """
    via = request.top_via
    method = method or ("INVITE" if request.method == "ACK" else request.method)
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        return f"{branch}|{via.sent_by}|{method}"
    # RFC 2543 peers have no unique branch: fall back on the identifiers of the request.
    return f"2543|{request.call_id}|{request.cseq.number}|{request.from_addr.tag}|{via.sent_by}|{method}"


class _Transaction(Timed):
    def __init__(self, table: Table, state: TxState, transport: str) -> None:
        self.table = table
        self.state = state
        self.reliable = transport != "udp"
        self.deadlines: dict[TxInput, float] = {}
        self._interval = T1

    def accepts(self, event: TxInput) -> bool:
        return event in self.table[self.state]

    def _fire(self, event: TxInput, now: float) -> bool:
        """Apply ``event``; return True when the state changed (the caller then arms timers)."""
        try:
            new = self.table[self.state][event]
        except KeyError:
            raise InvalidTransition(f"{event.name} in {type(self).__name__} {self.state.name}") from None
        changed, self.state = new != self.state, new
        if new is S.TERMINATED:
            self.deadlines.clear()
        return changed

    @property
    def terminated(self) -> bool:
        return self.state is S.TERMINATED

    def next_deadline(self) -> float | None:
        return min(self.deadlines.values(), default=None)

    def _arm(self, timer: TxInput, at: float) -> None:
        """Set ``timer`` to fire at ``at``: the only way a deadline is set (see ``Timed``)."""
        self.deadlines[timer] = at
        self._armed(at)

    def _due(self, now: float) -> list[TxInput]:
        return sorted((t for t, at in self.deadlines.items() if at <= now), key=lambda t: self.deadlines[t])


class ServerTransaction(_Transaction):
    """An INVITE or non-INVITE server transaction; the responses it sends go to ``addr``."""

    def __init__(self, key: str, request: Request, addr: Addr, transport: str) -> None:
        self.is_invite = request.method == "INVITE"
        table = INVITE_SERVER if self.is_invite else NON_INVITE_SERVER
        super().__init__(table, S.PROCEEDING if self.is_invite else S.TRYING, transport)
        self.key = key
        self.request = request
        self.addr = addr
        self.transport = transport
        self.last_response: bytes | None = None
        self.final_status: int | None = None

    def respond(self, response: Response, now: float) -> bytes:
        if response.is_provisional:
            event = I.SEND_PROVISIONAL
        else:
            event = I.SEND_2XX if response.is_success else I.SEND_FINAL
        changed = self._fire(event, now)
        data = response.serialize()
        self.last_response = data
        if not response.is_provisional:
            self.final_status = response.status
        if changed:
            self._enter(now)
        return data

    @property
    def accepts_retransmission(self) -> bool:
        return self.accepts(I.REQUEST_AGAIN)

    def request_again(self, now: float) -> bytes | None:
        """A retransmitted request: the last response to send again, or None to absorb it."""
        self._fire(I.REQUEST_AGAIN, now)
        return None if self.state is S.CONFIRMED else self.last_response

    def receive_ack(self, now: float) -> None:
        if self.accepts(I.ACK) and self._fire(I.ACK, now):
            self._enter(now)

    def _enter(self, now: float) -> None:
        self.deadlines.clear()
        if self.state is S.COMPLETED and self.is_invite:
            if not self.reliable:
                self._interval = T1
                self._arm(I.TIMER_G, now + T1)
            self._arm(I.TIMER_H, now + TIMEOUT)
        elif self.state is S.COMPLETED:
            self._arm(I.TIMER_J, now + (0.0 if self.reliable else TIMEOUT))
        elif self.state is S.CONFIRMED:
            self._arm(I.TIMER_I, now + (0.0 if self.reliable else T4))
        elif self.state is S.ACCEPTED:
            self._arm(I.TIMER_L, now + TIMEOUT)

    def handle_timer(self, now: float) -> list[bytes]:
        resend: list[bytes] = []
        for timer in self._due(now):
            if timer not in self.deadlines:
                continue  # cleared by an earlier timer in this round
            del self.deadlines[timer]
            self._fire(timer, now)
            if timer is I.TIMER_G and self.last_response is not None:
                resend.append(self.last_response)
                self._interval = min(2 * self._interval, T2)
                self._arm(I.TIMER_G, now + self._interval)
        return resend


def client_key(branch: str, method: str) -> str:
    return f"{branch}|{method}"


class ClientTransaction(_Transaction):
    """A non-INVITE client transaction: sends ``request`` to ``addr`` until a final response."""

    def __init__(self, request: Request, addr: Addr, transport: str, now: float, owner: str) -> None:
        super().__init__(NON_INVITE_CLIENT, S.TRYING, transport)
        self.key = client_key(request.top_via.branch or "", request.method)
        self.request = request
        self.wire = request.serialize()
        self.addr = addr
        self.transport = transport
        self.owner = owner  # the Call-ID this request belongs to
        self.timed_out = False
        self.final_response: Response | None = None
        if not self.reliable:
            self._arm(I.TIMER_E, now + T1)
        self._arm(I.TIMER_F, now + TIMEOUT)

    def receive_response(self, response: Response, now: float) -> bool:
        """Feed a response; True when it is the first final one (the TU should act on it)."""
        event = I.RECV_PROVISIONAL if response.is_provisional else I.RECV_FINAL
        first_final = event is I.RECV_FINAL and self.state in (S.TRYING, S.PROCEEDING)
        if not self.accepts(event):
            return False
        self._fire(event, now)
        if first_final:
            self.final_response = response
            self.deadlines.clear()
            # Timer K soaks up retransmitted responses; none arrive over a reliable transport.
            self._arm(I.TIMER_K, now + (0.0 if self.reliable else T4))
        return first_final

    def handle_timer(self, now: float) -> list[bytes]:
        resend: list[bytes] = []
        for timer in self._due(now):
            if timer not in self.deadlines:
                continue
            del self.deadlines[timer]
            self._fire(timer, now)
            if timer is I.TIMER_F:
                self.timed_out = True
            elif timer is I.TIMER_E:
                resend.append(self.wire)
                # §17.1.2.2: double up to T2 while Trying; once a provisional came, every T2.
                self._interval = T2 if self.state is S.PROCEEDING else min(2 * self._interval, T2)
                self._arm(I.TIMER_E, now + self._interval)
        return resend


class InviteClientTransaction(_Transaction):
    """An INVITE we send: resent at Timer A until a response, given up at Timer B (64*T1)."""

    def __init__(self, request: Request, addr: Addr, transport: str, now: float, owner: str) -> None:
        super().__init__(INVITE_CLIENT, S.CALLING, transport)
        self.key = client_key(request.top_via.branch or "", "INVITE")
        self.request = request
        self.wire = request.serialize()
        self.addr = addr
        self.transport = transport
        self.owner = owner
        self.timed_out = False
        self.ack: bytes | None = None  # the ACK of our non-2xx final, resent on its retransmissions
        if not self.reliable:
            self._arm(I.TIMER_A, now + T1)
        self._arm(I.TIMER_B, now + TIMEOUT)

    def receive_response(self, response: Response, now: float) -> tuple[str, bytes | None]:
        """Feed a response: ("provisional" | "2xx" | "final" | "again" | "ignored", bytes to send).

        "final" is the first non-2xx final response (its ACK is returned to send); "again" is a
        retransmission of it (the same ACK again); "2xx" comes for every 2xx, retransmissions
        included, since the TU must ACK each one (RFC 6026)."""
        if response.is_provisional:
            event = I.RECV_PROVISIONAL
        else:
            event = I.RECV_2XX if response.is_success else I.RECV_FINAL
        if not self.accepts(event):
            return "ignored", None
        before = self.state
        self._fire(event, now)
        if event is I.RECV_PROVISIONAL:
            self.deadlines.pop(I.TIMER_A, None)
            self.deadlines.pop(I.TIMER_B, None)
            return ("provisional", None) if before is not S.COMPLETED else ("ignored", None)
        if event is I.RECV_2XX:
            if before is not S.ACCEPTED:
                self.deadlines.clear()
                self._arm(I.TIMER_M, now + TIMEOUT)
            return "2xx", None
        if before is S.COMPLETED:
            return "again", self.ack
        self.deadlines.clear()
        self._arm(I.TIMER_D, now + (0.0 if self.reliable else 32.0))
        self.ack = self._ack_for(response).serialize()
        return "final", self.ack

    def _ack_for(self, response: Response) -> Request:
        """§17.1.1.3: same Request-URI, Call-ID, From, top Via and Route; To from the response."""
        original = self.request.headers
        headers = Headers([("Via", original.get("Via") or ""), ("Max-Forwards", "70")])
        for name in ("From", "Call-ID"):
            headers.add(name, original.get(name) or "")
        headers.add("To", response.headers.get("To") or original.get("To") or "")
        headers.add("CSeq", f"{self.request.cseq.number} ACK")
        for route in original.get_all("Route"):
            headers.add("Route", route)
        return Request("ACK", self.request.uri, headers)

    def handle_timer(self, now: float) -> list[bytes]:
        resend: list[bytes] = []
        for timer in self._due(now):
            if timer not in self.deadlines:
                continue
            del self.deadlines[timer]
            self._fire(timer, now)
            if timer is I.TIMER_B:
                self.timed_out = True
            elif timer is I.TIMER_A:
                resend.append(self.wire)
                self._interval *= 2  # §17.1.1.2: doubles without a cap, until Timer B
                self._arm(I.TIMER_A, now + self._interval)
        return resend
