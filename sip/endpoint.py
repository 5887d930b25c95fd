"""``SipEndpoint``: a sans-I/O SIP user agent (UAS, and UAC through ``uac.UacMixin``), like aioquic/h11.

Theory of operation: the glue feeds what arrives, ``receive_datagram(data, addr, now, transport)``
(for TCP/TLS, one message at a time, cut by ``StreamFramer``), calls ``handle_timer(now)`` at
``get_timer()``, and after every call drains ``datagrams_to_send()`` (``(bytes, addr, transport)``)
and ``next_event()``; after a ``receive_datagram`` that returns False (handled statelessly) the
timer is unchanged and need not be asked again. Time is the caller's monotonic ``now`` in seconds;
nothing here reads a clock, opens a socket or sleeps. The application answers ``InviteReceived``
with commands keyed by Call-ID (``send_ringing``, ``answer``, ``reject``, ``hangup``), mid-call
offers (``OfferReceived``) with ``accept_offer``/``reject_offer``; UAC commands (``invite``,
``cancel``, ``register``, ``refer``) live in ``uac.py``.

Inside: a table of server transactions (``transaction.py``) absorbs retransmissions, tables of
client transactions carry what we send, and one ``InboundCall`` per Call-ID (``call.py``) holds the
dialog and the 2xx retransmission (an answered outbound call joins the same table). Rules:
- Responses go to the source address and transport of the request; the top Via gets ``received``
  and ``rport`` as if the peer had asked for RFC 3581 (NAT-safe). Our in-dialog requests go to
  the address the dialog's requests last came from, not to the Contact host.
- With a ``RateLimiter``, new out-of-dialog requests beyond a source's rate get a stateless 503 +
  Retry-After before they are even parsed (``_over_rate``); in-dialog requests always pass.
- Requests are screened before dispatch (RFC 3261 §8.2, ``screening.py``): a To that is no
  SIP/SIPS/tel URI or a Date not in GMT 400, unknown method 501, known but not allowed 405,
  unsupported URI scheme 416, Require with an option tag we lack 420, an INVITE/UPDATE whose
  Accept excludes SDP 406, a body other than identity-encoded SDP 415; parse faults get 400
  (505 for the version, 413 for an oversized body), even when From, To or Call-ID are missing
  as long as a Via says where the answer goes (RFC 4475 §3.3.1). Then a new INVITE must
  pass the ``AccessPolicy`` (trunk allow-list, digest 401/407, 403). Every refusal is reported as
  ``MessageRejected``.
- A re-INVITE or UPDATE in a confirmed dialog with an unchanged offer (same ``o=`` line) or none
  is a session refresh answered with our SDP; a new offer becomes ``OfferReceived``; a second
  offer while one is pending gets 491. INFO with DTMF becomes ``DtmfReceived``.
- ``hangup`` before the answer is ``reject(480)``; between answer and ACK the BYE (and a REFER)
  waits for the ACK (RFC 3261 §15), or for the ACK timeout, which sends it anyway; after a BYE
  it is a no-op.
- Ended calls and finished transactions are forgotten after 64*T1, so long runs do not grow.
- Their deadlines are kept in a heap (``timers.py``): ``get_timer`` peeks it and ``handle_timer``
  runs only the due objects, in the order a scan of the tables would (server transactions,
  client transactions, then calls, each in insertion order), so the cost does not grow with the
  thousands of objects that 100 calls/s keep alive. Outbound INVITE transactions, outbound
  attempts and registrations (``uac.py``) are few and are still scanned.
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Sequence

from mssip import events as ev
from mssip.call import CallInput, CallState, InboundCall, Pending2xx
from mssip.dialog import Dialog
from mssip.errors import InvalidTransition, SipParseError, UnknownCall
from mssip.events import Addr, SipEvent
from mssip.message import Request, Response, make_response
from mssip.midcall import MidCallMixin
from mssip.parser import MANDATORY_HEADERS, MAX_BODY_BYTES, parse_message
from mssip.screening import (
    HANDLED_METHODS,
    REQUIRED_METHODS,
    SDP,
    SUPPORTED_EXTENSIONS,
    reason_phrase,
    screen_request,
    session_timer,
    stamp_via,
    user_of,
)
from mssip.security import AccessPolicy, RateLimiter
from mssip.timers import TimerIndex, TimerTable
from mssip.transaction import (
    T1,
    ClientTransaction,
    InviteClientTransaction,
    ServerTransaction,
    TxState,
    client_key,
    server_key,
)
from mssip.uac import Binding, OutboundInvite, UacMixin
from mssip.uri import format_host

__all__ = ["T1", "Addr", "SipEndpoint"]

# Raw-bytes views used by the pre-parse rate limit (``_over_rate``).
_FIRST_TOKEN = re.compile(rb"\A[\r\n]*([A-Za-z0-9.!%*_+`'~-]+)[ /]")
_TO_TAG = re.compile(rb"^(?:to|t)[ \t]*:[^\r\n]*;[ \t]*tag[ \t]*=", re.IGNORECASE | re.MULTILINE)
_RAW_HEADER = re.compile(rb"^(via|v|from|f|to|t|call-id|i|cseq)[ \t]*:([^\r\n]*)\r?$", re.IGNORECASE | re.MULTILINE)
_RAW_NAMES_ORDER = (b"Via", b"From", b"To", b"Call-ID", b"CSeq")
_RAW_NAMES = {
    b"via": b"Via",
    b"v": b"Via",
    b"from": b"From",
    b"f": b"From",
    b"to": b"To",
    b"t": b"To",
    b"call-id": b"Call-ID",
    b"i": b"Call-ID",
    b"cseq": b"CSeq",
}


class SipEndpoint(MidCallMixin, UacMixin):
    def __init__(
        self,
        local_host: str,
        local_port: int,
        *,
        user_agent: str = "voice-mediaserver",
        rng: random.Random | None = None,
        allow: tuple[str, ...] = HANDLED_METHODS,
        policy: AccessPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if unknown := [m for m in allow if m not in HANDLED_METHODS]:
            raise ValueError(f"allow lists methods this endpoint does not handle: {unknown}")
        if missing := [m for m in REQUIRED_METHODS if m not in allow]:
            raise ValueError(f"allow must include {missing}")
        self.local_host = local_host
        self.local_port = local_port
        self.user_agent = user_agent
        self._rng = rng or random.Random()
        self._allow = tuple(allow)
        self.policy = policy or AccessPolicy()
        self.rate_limiter = rate_limiter
        # Set while the server drains (SIGTERM): every new out-of-dialog request, health probes
        # included, gets a stateless 503 with this Retry-After; dialogs in progress carry on.
        self.unavailable_retry_after_s: int | None = None
        self.max_body_bytes = max_body_bytes
        self.tls_port = 0  # where our TLS listener is (for Contact over TLS); 0: none
        # Made in the order handle_timer runs them (see _run_timers).
        self._timers = TimerIndex()
        self._server_tx: TimerTable[ServerTransaction] = self._timers.table()
        self._client_tx: TimerTable[ClientTransaction] = self._timers.table()
        self._calls: TimerTable[InboundCall] = self._timers.table()
        self._invite_ctx: dict[str, InviteClientTransaction] = {}
        self._outbound: dict[str, OutboundInvite] = {}
        self._bindings: dict[str, Binding] = {}
        self._events: deque[SipEvent] = deque()
        self._outbox: list[tuple[bytes, Addr, str]] = []

    # ----------------------------------------------------------------- the four I/O methods
    def receive_datagram(self, data: bytes, addr: Addr, now: float, transport: str = "udp") -> bool:
        """Take one datagram (or framed stream message). Returns False when it was handled
        statelessly (a keep-alive, a 503 from the rate limiter or the drain, a parse fault), so
        ``get_timer()`` is what it was before; True when it may have changed. A flood is mostly
        the stateless kind, and the glue skips asking for the timer then (issue 17: when it was
        a linear scan, asking once per datagram saturated the loop)."""
        transport = transport.lower()
        if not data.strip(b"\r\n\t "):
            return False  # CRLF keep-alive (RFC 5626): nothing to parse, nothing to answer
        if (self.rate_limiter is not None or self.unavailable_retry_after_s is not None) and self._over_rate(
            data, addr, now, transport
        ):
            return False
        try:
            message = parse_message(data, max_body_bytes=self.max_body_bytes)
        except SipParseError as err:
            self._on_parse_error(err, addr, transport)
            return False
        self._dispatch(message, addr, now, transport)
        return True

    def _dispatch(self, message: Request | Response, addr: Addr, now: float, transport: str) -> None:
        if isinstance(message, Response):
            self._on_response(message, now)
            return
        stamp_via(message, addr)
        if message.method == "ACK":
            self._on_ack(message, addr, now)
            return
        key = server_key(message)
        tx = self._server_tx.get(key)
        if tx is not None:
            data_again = tx.request_again(now) if tx.accepts_retransmission else None
            if data_again is not None:
                self._send(data_again, tx.addr, tx.transport)
            return
        tx = ServerTransaction(key, message, addr, transport)
        self._server_tx[key] = tx
        refusal = screen_request(message, self._allow)
        if refusal is not None:
            self._refuse(tx, refusal.status, refusal.reason, refusal.headers, now=now)
        elif message.method == "INVITE":
            self._on_invite(message, tx, now)
        elif message.method == "BYE":
            self._on_bye(message, tx, now)
        elif message.method == "CANCEL":
            self._on_cancel(message, tx, now)
        elif message.method == "UPDATE":
            self._on_update(message, tx, now)
        elif message.method == "INFO":
            self._on_info(message, tx, now)
        elif message.method == "NOTIFY":
            self._on_notify(message, tx, now)
        else:
            self._on_options(message, tx, now)

    def datagrams_to_send(self) -> list[tuple[bytes, Addr, str]]:
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> SipEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        # The top of the timer heap (amortised O(log n)), and a scan of the few UAC deadlines.
        deadlines = [d for d in (self._timers.peek(), *self._uac_deadlines()) if d is not None]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        # Only the objects due at the start run, in the order the scan of every table ran them
        # (what one runs never makes another due at ``now`` in its table or a later one, so
        # the scan ran exactly these). One that is no longer due when its turn comes, because
        # an earlier one ended its call, finds nothing to do, as the scan did.
        due = self._timers.pop_due(now)
        for owner in due:
            if isinstance(owner, ServerTransaction):
                for data in owner.handle_timer(now):
                    self._send(data, owner.addr, owner.transport)
                if owner.terminated:
                    del self._server_tx[owner.key]
                self._timers.arm(owner)  # pop_due took its entries: file its next deadline again
            elif isinstance(owner, ClientTransaction):
                for data in owner.handle_timer(now):
                    self._send(data, owner.addr, owner.transport)
                if owner.terminated:
                    del self._client_tx[owner.key]
                    if owner.timed_out:
                        self._client_final(owner, None, now)
                self._timers.arm(owner)
        self._uac_timer(now)
        for call in due:
            if not isinstance(call, InboundCall):
                continue
            pending = call.pending_2xx
            if pending is not None and pending.give_up_at <= now:
                self._ack_timeout(call, now)
            elif pending is not None and pending.next_at <= now:
                self._send(pending.wire, pending.addr, pending.transport)
                pending.backoff(now)
            if call.forget_at is not None and call.forget_at <= now:
                del self._calls[call.call_id]
            self._timers.arm(call)  # the same, and backoff() moves next_at without reporting it

    # ----------------------------------------------------------------- commands
    def send_ringing(self, call_id: str, now: float) -> None:
        """Send 180 Ringing (with our To tag and Contact: an early dialog)."""
        call = self._call(call_id)
        call.apply(CallInput.RING)
        assert call.invite_tx is not None  # only inbound calls ring, and the table let it through
        self._respond(call.invite_tx, self._invite_response(call, 180, "Ringing"), now)

    def send_progress(self, call_id: str, sdp: bytes, now: float) -> None:
        """Send 183 Session Progress with our SDP answer: early media before the 200 OK.

        The same SDP must then go in ``answer`` (RFC 3264: one answer per offer); without 100rel
        the 183 is unreliable, so a lost one only costs the early audio."""
        call = self._call(call_id)
        call.apply(CallInput.RING)
        assert call.invite_tx is not None
        response = self._invite_response(call, 183, "Session Progress")
        self._describe(response, sdp)
        self._respond(call.invite_tx, response, now)

    def answer(self, call_id: str, sdp: bytes, now: float) -> None:
        """Send 200 OK with ``sdp``; it is resent until the ACK, or the call ends after 64*T1."""
        call = self._call(call_id)
        call.apply(CallInput.ANSWER)
        assert call.invite_tx is not None
        response = self._invite_response(call, 200, "OK")
        timer = session_timer(call.invite)
        if timer is not None:
            response.headers.add("Session-Expires", timer)
            response.headers.add("Require", "timer")
        self._describe(response, sdp)
        call.answer_sdp = sdp
        data = self._respond(call.invite_tx, response, now)
        call.pending_2xx = Pending2xx.start(data, call.invite.cseq.number, call.invite_tx, now)

    def reject(
        self, call_id: str, status: int, reason: str, now: float, *, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Send a final non-2xx response; the server transaction absorbs the ACK. `headers` are
        added as given (a 503 over capacity carries Retry-After, RFC 3261 §21.5.4)."""
        if not 300 <= status <= 699 or "\r" in reason or "\n" in reason:
            raise ValueError(f"reject needs a 3xx-6xx status and a one-line reason, got {status} {reason!r}")
        call = self._call(call_id)
        if not call.can(CallInput.REJECT):
            raise InvalidTransition(f"REJECT in {call.state.name} (call {call_id})")
        assert call.invite_tx is not None
        response = self._invite_response(call, status, reason)
        for name, value in headers:
            response.headers.add(name, value)
        self._respond(call.invite_tx, response, now)
        self._end(call, CallInput.REJECT, ev.REASON_REJECTED, now)

    def hangup(self, call_id: str, now: float) -> None:
        """End the call from our side; idempotent (a no-op on an ended or unknown call)."""
        call = self._calls.get(call_id)
        if call is None or call.state in (CallState.ENDED, CallState.TERMINATING):
            return
        if call.state in (CallState.PROCEEDING, CallState.RINGING):
            self.reject(call_id, 480, "Temporarily Unavailable", now)
        elif call.state is CallState.ANSWERED:
            call.bye_pending = True  # RFC 3261 §15: no BYE before the ACK (or its timeout)
        else:
            call.apply(CallInput.HANGUP)
            call.pending_2xx = None
            self._send_bye(call, now)

    # ----------------------------------------------------------------- requests
    def _on_invite(self, request: Request, tx: ServerTransaction, now: float) -> None:
        if request.to_addr.tag is not None:
            self._on_reinvite(request, tx, now)
            return
        admission = self.policy.admit(request, tx.addr[0], now)
        if not admission.admitted:
            self._refuse(tx, admission.status, admission.reason, admission.headers, now=now)
            return
        existing = self._calls.get(request.call_id)
        if existing is not None and not existing.ended:
            # Same Call-ID, new branch, no To tag: a forked copy looping back to us (§8.2.2.2).
            self._refuse(tx, 482, "Loop Detected", now=now)
            return
        try:
            dialog = Dialog.from_invite(request, self._new_tag(), tx.addr, tx.transport)
        except SipParseError as err:
            self._refuse(tx, 400, err.reason, now=now)
            return
        call = InboundCall(request, tx, dialog)
        self._calls[call.call_id] = call
        self._respond(tx, make_response(request, 100, "Trying"), now)
        to = request.to_addr
        self._events.append(
            ev.InviteReceived(
                call_id=call.call_id,
                request=request,
                offer=request.body or None,
                from_uri=request.from_addr.uri,
                to_uri=to.uri,
                to_user=user_of(to.uri),
                remote_addr=tx.addr,
                transport=tx.transport,
                identity=admission.identity,
            )
        )

    def _on_ack(self, request: Request, addr: Addr, now: float) -> None:
        tx = self._server_tx.get(server_key(request))
        if tx is not None and tx.state in (TxState.COMPLETED, TxState.CONFIRMED):
            tx.receive_ack(now)  # the ACK of a non-2xx final response ends at its transaction
            return
        call = self._dialog_call(request)
        pending = call.pending_2xx if call is not None else None
        if call is None or pending is None or pending.cseq != request.cseq.number:
            return  # a retransmitted or stray ACK: never answered
        call.pending_2xx = None
        call.dialog.remote_addr = addr
        if call.state is CallState.ANSWERED:
            call.apply(CallInput.ACK)
            call.remote_sdp = call.remote_sdp or request.body or None
            self._events.append(ev.CallAcked(call.call_id, request.body or None))
            if call.bye_pending:
                self.hangup(call.call_id, now)
            elif call.pending_refer is not None:
                target, call.pending_refer = call.pending_refer, None
                self.refer(call.call_id, target, now)

    def _on_bye(self, request: Request, tx: ServerTransaction, now: float) -> None:
        call = self._dialog_call(request)
        if call is None or (call.ended and not call.answered):
            self._refuse(tx, 481, "Call/Transaction Does Not Exist", now=now)
            return
        if not call.dialog.accept_remote_cseq(request.cseq.number):
            self._refuse(tx, 500, "CSeq Out of Order", now=now)
            return
        call.dialog.remote_addr = tx.addr
        self._respond(tx, make_response(request, 200, "OK"), now)
        if call.ended:
            return  # both sides hung up at once; ours already ended the call
        if call.state in (CallState.PROCEEDING, CallState.RINGING) and call.invite_tx is not None:
            # A BYE on the early dialog: the INVITE still needs its final response.
            self._respond(call.invite_tx, self._invite_response(call, 487, "Request Terminated"), now)
        self._events.append(ev.ByeReceived(call.call_id))
        self._end(call, CallInput.BYE_RECEIVED, ev.REASON_REMOTE_BYE, now)

    def _on_cancel(self, request: Request, tx: ServerTransaction, now: float) -> None:
        invite_tx = self._server_tx.get(server_key(request, "INVITE"))
        if invite_tx is None:
            self._refuse(tx, 481, "Call/Transaction Does Not Exist", now=now)
            return
        call = self._calls.get(request.call_id)
        if call is not None and call.invite_tx is not invite_tx:
            call = None
        to_tag = call.dialog.local_tag if call is not None else self._new_tag()
        self._respond(tx, make_response(request, 200, "OK", to_tag=to_tag), now)
        if call is not None and invite_tx.final_status is None and call.can(CallInput.CANCEL):
            self._respond(invite_tx, self._invite_response(call, 487, "Request Terminated"), now)
            self._events.append(ev.CallCancelled(call.call_id))
            self._end(call, CallInput.CANCEL, ev.REASON_CANCELLED, now)

    def _on_options(self, request: Request, tx: ServerTransaction, now: float) -> None:
        if request.to_addr.tag is not None and self._dialog_call(request) is None:
            self._refuse(tx, 481, "Call/Transaction Does Not Exist", now=now)
            return
        response = make_response(request, 200, "OK", to_tag=self._new_tag())
        response.headers.add("Allow", ", ".join(self._allow))
        response.headers.add("Accept", SDP)
        response.headers.add("Supported", ", ".join(SUPPORTED_EXTENSIONS))
        self._respond(tx, response, now)

    def _over_rate(self, data: bytes, addr: Addr, now: float, transport: str) -> bool:
        """Rate-limit new out-of-dialog requests before parsing them (True: refused with 503);
        while draining, refuse every one of them the same way.

        A flood must cost less than a parse per datagram, or it starves the live calls' media:
        the request is classified and answered from its raw header lines (RFC 3261 §8.2.6 only
        asks to copy Via, From, To, Call-ID and CSeq), and no transaction is created, so a
        resent request is simply refused again. In-dialog requests (a To tag), ACK and CANCEL
        always pass: a flood must not stop a live call from hanging up."""
        first = _FIRST_TOKEN.match(data)
        if first is None or first.group(1) in (b"ACK", b"CANCEL", b"SIP") or _TO_TAG.search(data):
            return False
        draining = self.unavailable_retry_after_s is not None
        if not draining and (
            self.rate_limiter is None or self.policy.trusts(addr[0]) or self.rate_limiter.allow(addr[0], now)
        ):
            return False
        copied: dict[bytes, list[bytes]] = {}
        for name, value in _RAW_HEADER.findall(data.split(b"\r\n\r\n", 1)[0]):
            copied.setdefault(_RAW_NAMES[name.lower()], []).append(value.strip())
        method = first.group(1).decode("ascii", "replace")
        if len(copied) < len(_RAW_NAMES_ORDER) or method == "ACK":
            self._events.append(ev.MessageRejected(503, "rate limited", addr, method, None, responded=False))
            return True
        if self.unavailable_retry_after_s is not None:
            retry = self.unavailable_retry_after_s
        else:
            assert self.rate_limiter is not None
            retry = self.rate_limiter.retry_after_s(addr[0], now)
        lines = [b"SIP/2.0 503 Service Unavailable"]
        for name in _RAW_NAMES_ORDER:
            for value in copied[name]:
                if name == b"To":
                    value += b";tag=" + self._new_tag().encode()
                lines.append(name + b": " + value)
        lines += [f"Retry-After: {retry}".encode(), f"Server: {self.user_agent}".encode(), b"Content-Length: 0"]
        self._send(b"\r\n".join(lines) + b"\r\n\r\n", addr, transport)
        call_id = copied[b"Call-ID"][0].decode("utf-8", "replace")
        self._events.append(ev.MessageRejected(503, "Service Unavailable", addr, method, call_id))
        return True

    def _on_parse_error(self, err: SipParseError, addr: Addr, transport: str) -> None:
        partial, reason = err.partial, reason_phrase(err.reason)
        method = partial.method if isinstance(partial, Request) else None
        if (
            isinstance(partial, Request)
            and partial.method != "ACK"  # an ACK is never answered
            and (partial.uri or all(partial.headers.get(name) for name in MANDATORY_HEADERS))
            and partial.headers.get("Via")
        ):
            # A request line that parsed and a Via: enough to address a 400, which copies what
            # there is of From, To, Call-ID and CSeq (RFC 4475 §3.3.1 asks for it even when
            # mandatory headers are missing: the sender matches it by branch). A bad request
            # line still needs every mandatory header, to tell a request from noise.
            stamp_via(partial, addr)
            response = make_response(partial, err.status, reason, to_tag=self._new_tag())
            response.headers.add("Server", self.user_agent)
            # No transaction: a retransmission is parsed and refused again, statelessly.
            self._send(response.serialize(), addr, transport)
            self._events.append(ev.MessageRejected(err.status, reason, addr, method, partial.call_id or None))
        else:
            self._events.append(ev.MessageRejected(err.status, reason, addr, method, None, responded=False))

    # ----------------------------------------------------------------- responses, BYE, timers
    def _on_response(self, response: Response, now: float) -> None:
        try:
            key = client_key(response.top_via.branch or "", response.cseq.method)
        except SipParseError:
            return
        if response.cseq.method == "INVITE":
            self._on_invite_response(response, now)
            return
        ctx = self._client_tx.get(key)
        if ctx is None or not ctx.receive_response(response, now):
            return  # stray, provisional or retransmitted: nothing for the call to do
        self._client_final(ctx, response, now)

    def _client_final(self, ctx: ClientTransaction, response: Response | None, now: float) -> None:
        """The outcome of a non-INVITE request we sent: its final response, or None (Timer F)."""
        method = ctx.request.method
        if method == "REGISTER":
            self._on_register_final(ctx, response, now)
        elif method == "REFER":
            self._on_refer_final(ctx, response)
        elif method == "BYE":
            call = self._calls.get(ctx.owner)
            if call is not None and call.state is CallState.TERMINATING:
                # Any final response ends the dialog, even 481 or 408 (RFC 3261 §15.1.1).
                if response is None:
                    self._end(call, CallInput.BYE_TIMEOUT, ev.REASON_BYE_TIMEOUT, now)
                else:
                    self._end(call, CallInput.BYE_ANSWERED, ev.REASON_LOCAL_BYE, now)

    def _ack_timeout(self, call: InboundCall, now: float) -> None:
        self._end(call, CallInput.ACK_TIMEOUT, ev.REASON_ACK_TIMEOUT, now)
        self._send_bye(call, now)  # §13.3.1.4: no ACK means the session is over; tell the peer

    def _send_bye(self, call: InboundCall, now: float) -> None:
        dialog = call.dialog
        request = dialog.build_request("BYE", self._via(dialog.transport))
        request.headers.add("User-Agent", self.user_agent)
        ctx = ClientTransaction(request, dialog.remote_addr, dialog.transport, now, owner=call.call_id)
        self._client_tx[ctx.key] = ctx
        self._send(ctx.wire, ctx.addr, ctx.transport)

    def _end(self, call: InboundCall, event: CallInput, reason: str, now: float) -> None:
        if call.offer_tx is not None:  # an offer the application had not answered yet
            self._respond(call.offer_tx, make_response(call.offer_tx.request, 487, "Request Terminated"), now)
            call.offer_tx = None
        call.end(event, now)
        self._events.append(ev.CallEnded(call.call_id, reason))

    def _refuse(
        self,
        tx: ServerTransaction,
        status: int,
        reason: str,
        extra: list[tuple[str, str]] | None = None,
        *,
        now: float,
    ) -> None:
        response = make_response(tx.request, status, reason, to_tag=self._new_tag())
        for name, value in extra or []:
            response.headers.add(name, value)
        self._respond(tx, response, now)
        request = tx.request
        self._events.append(ev.MessageRejected(status, reason, tx.addr, request.method, request.call_id))

    def _respond(self, tx: ServerTransaction, response: Response, now: float) -> bytes:
        response.headers.add("Server", self.user_agent)
        data = tx.respond(response, now)
        self._send(data, tx.addr, tx.transport)
        return data

    def _invite_response(self, call: InboundCall, status: int, reason: str) -> Response:
        return self._dialog_response(call, call.invite, status, reason)

    def _dialog_response(self, call: InboundCall, request: Request, status: int, reason: str) -> Response:
        response = make_response(request, status, reason, to_tag=call.dialog.local_tag)
        if 100 < status < 300:
            # Responses that make or confirm a dialog carry Record-Route and Contact (§12.1.1).
            for route in request.headers.get_all("Record-Route"):
                response.headers.add("Record-Route", route)
            sips = request.uri.strip().lower().startswith("sips:")
            response.headers.add("Contact", self.contact(call.dialog.transport, sips=sips))
        return response

    def _describe(self, response: Response, sdp: bytes) -> None:
        response.headers.add("Allow", ", ".join(self._allow))
        response.headers.add("Supported", ", ".join(SUPPORTED_EXTENSIONS))
        if sdp:
            response.headers.add("Content-Type", SDP)
        response.body = sdp

    def contact(self, transport: str = "udp", sips: bool = True) -> str:
        """Our Contact for `transport`. Over TLS it is a `sips:` URI only when `sips` (RFC 3261
        §12.1.1: a dialog's Contact is sips: when the request's Request-URI was); otherwise
        `sip:...;transport=tls`, which peers that cannot route sips: (baresip 1.0) can use."""
        if transport == "tls" and self.tls_port:
            if sips:
                return f"<sips:mediaserver@{format_host(self.local_host)}:{self.tls_port}>"
            return f"<sip:mediaserver@{format_host(self.local_host)}:{self.tls_port};transport=tls>"
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:mediaserver@{format_host(self.local_host)}:{self.local_port}{suffix}>"

    def _call(self, call_id: str) -> InboundCall:
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCall(call_id)
        return call

    def _dialog_call(self, request: Request) -> InboundCall | None:
        call = self._calls.get(request.call_id)
        return call if call is not None and call.dialog.matches(request) else None

    def _send(self, data: bytes, addr: Addr, transport: str) -> None:
        self._outbox.append((data, addr, transport))

    def _new_tag(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"
