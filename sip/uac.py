"""The UAC half of ``SipEndpoint``: outbound INVITEs, REGISTER bindings and REFER transfers.

Theory of operation: ``UacMixin`` is mixed into ``SipEndpoint`` and shares its tables, outbox
and event queue; it adds commands and handles the responses to the requests they send.
- ``invite(target, ...)`` sends an INVITE in an ``InviteClientTransaction`` (Timers A/B/D). A
  401/407 is answered once per challenge with digest credentials (SHA-256 preferred over MD5),
  in a new INVITE with the next CSeq. Provisional responses give ``CallProgress``; a 2xx is
  ACKed by the dialog (a new transaction, as RFC 3261 §13.2.2.4 says) and becomes a confirmed
  ``InboundCall`` flagged ``outbound``, so BYE, re-INVITE, INFO and ``hangup`` work for both
  directions; a final error gives ``CallFailed`` then ``CallEnded``.
- ``cancel(call_id)`` sends CANCEL once a provisional has arrived (§9.1 forbids it before) and
  waits for the 487; if a 2xx wins the race the call is ACKed and hung up with BYE. With no
  final response 64*T1 after the CANCEL the call fails with 408.
- ``register(...)`` keeps a binding at a registrar: digest on 401/407, Min-Expires on 423, a
  refresh at half the granted lifetime, and after a failure a retry every ``retry_s``
  (``Registered`` / ``RegistrationFailed`` report each outcome). ``unregister`` sends Expires 0.
- ``refer(call_id, target)`` sends REFER in the dialog; its response and every NOTIFY
  (``message/sipfrag``) are reported as ``ReferProgress``; the NOTIFYs are answered 200.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from mssip import events as ev
from mssip.call import CallState, InboundCall
from mssip.dialog import Dialog
from mssip.digest import Challenge, answer_challenge, parse_challenge
from mssip.errors import InvalidTransition, SipParseError, UnknownCall
from mssip.events import Addr, SipEvent
from mssip.headers import Headers
from mssip.message import Request, Response, make_response
from mssip.transaction import (
    MAGIC_COOKIE,
    TIMEOUT,
    ClientTransaction,
    InviteClientTransaction,
    ServerTransaction,
    client_key,
)
from mssip.uri import format_host, parse_name_addr

SDP = "application/sdp"
MAX_AUTH_TRIES = 2  # a second challenge after good credentials means the password is wrong


@dataclass
class OutboundInvite:
    call_id: str
    target: str  # Request-URI
    from_value: str  # From header, with our tag
    to_value: str  # To header (no tag yet)
    sdp: bytes
    addr: Addr
    transport: str
    headers: list[tuple[str, str]]
    credentials: tuple[str, str] | None
    cseq: int = 1
    ctx: InviteClientTransaction | None = None
    provisional: bool = False
    cancel_wanted: bool = False
    cancel_sent: bool = False
    give_up_at: float | None = None
    auth_tries: int = 0


@dataclass
class Binding:
    reg_id: str
    registrar: str  # Request-URI of our REGISTERs
    aor: str  # address of record (From/To)
    addr: Addr
    transport: str
    user: str
    password: str
    expires: int
    retry_s: float
    call_id: str
    from_tag: str
    cseq: int = 0
    requested: int = 0
    pending: str | None = None  # key of the REGISTER transaction in flight
    next_at: float | None = None  # refresh or retry
    auth_tries: int = 0
    registered: bool = False
    closing: bool = False
    contact: str = ""


def pick_challenge(values: list[str]) -> Challenge | None:
    """The challenge to answer: SHA-256 before MD5 (RFC 8760 §2.4), unknown algorithms skipped."""
    parsed = []
    for value in values:
        try:
            challenge = parse_challenge(value)
        except ValueError:
            continue
        if challenge.algorithm in ("SHA-256", "MD5") and (not challenge.qop or "auth" in challenge.qop):
            parsed.append(challenge)
    parsed.sort(key=lambda c: c.algorithm != "SHA-256")
    return parsed[0] if parsed else None


class UacMixin:
    # Provided by SipEndpoint.
    local_host: str
    local_port: int
    user_agent: str
    _rng: random.Random
    _events: deque[SipEvent]
    _calls: dict[str, InboundCall]
    _client_tx: dict[str, ClientTransaction]
    _invite_ctx: dict[str, InviteClientTransaction]
    _outbound: dict[str, OutboundInvite]
    _bindings: dict[str, Binding]

    def _send(self, data: bytes, addr: Addr, transport: str) -> None:
        raise NotImplementedError

    def _new_tag(self) -> str:
        raise NotImplementedError

    def contact(self, transport: str = "udp") -> str:
        raise NotImplementedError

    def hangup(self, call_id: str, now: float) -> None:
        raise NotImplementedError

    def _respond(self, tx: ServerTransaction, response: Response, now: float) -> bytes:
        raise NotImplementedError

    def _refuse(
        self,
        tx: ServerTransaction,
        status: int,
        reason: str,
        extra: list[tuple[str, str]] | None = None,
        *,
        now: float,
    ) -> None:
        raise NotImplementedError

    def _dialog_call(self, request: Request) -> InboundCall | None:
        raise NotImplementedError

    def _via(self, transport: str) -> str:
        return (
            f"SIP/2.0/{transport.upper()} {format_host(self.local_host)}:{self.local_port}"
            f";branch={MAGIC_COOKIE}{self._rng.getrandbits(64):016x};rport"
        )

    # ----------------------------------------------------------------- outbound INVITE
    def invite(
        self,
        target: str,
        *,
        from_uri: str,
        sdp: bytes,
        addr: Addr,
        now: float,
        transport: str = "udp",
        display_name: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        credentials: tuple[str, str] | None = None,
        to_uri: str | None = None,
    ) -> str:
        """Call ``target`` (a sip: URI) at ``addr``; returns the new Call-ID."""
        call_id = f"{self._rng.getrandbits(96):024x}@{format_host(self.local_host)}"
        name = f'"{display_name}" ' if display_name else ""
        out = OutboundInvite(
            call_id=call_id,
            target=target,
            from_value=f"{name}<{from_uri}>;tag={self._new_tag()}",
            to_value=f"<{to_uri or target}>",
            sdp=sdp,
            addr=addr,
            transport=transport.lower(),
            headers=list(headers or []),
            credentials=credentials,
        )
        self._outbound[call_id] = out
        self._send_invite(out, now, None)
        return call_id

    def _send_invite(self, out: OutboundInvite, now: float, auth: tuple[str, str] | None) -> None:
        headers = Headers(
            [
                ("Via", self._via(out.transport)),
                ("Max-Forwards", "70"),
                ("From", out.from_value),
                ("To", out.to_value),
                ("Call-ID", out.call_id),
                ("CSeq", f"{out.cseq} INVITE"),
                ("Contact", self.contact(out.transport)),
                ("User-Agent", self.user_agent),
            ]
        )
        for name, value in out.headers:
            headers.add(name, value)
        if auth is not None:
            headers.add(*auth)
        if out.sdp:
            headers.add("Content-Type", SDP)
        request = Request("INVITE", out.target, headers, out.sdp)
        ctx = InviteClientTransaction(request, out.addr, out.transport, now, owner=out.call_id)
        out.ctx = ctx
        out.provisional = False
        self._invite_ctx[ctx.key] = ctx
        self._send(ctx.wire, ctx.addr, ctx.transport)

    def cancel(self, call_id: str, now: float) -> None:
        """Give up on an outbound call not answered yet (a no-op once answered or ended)."""
        out = self._outbound.get(call_id)
        if out is None or out.cancel_wanted:
            return
        out.cancel_wanted = True
        out.give_up_at = now + TIMEOUT
        if out.provisional:
            self._send_cancel(out, now)

    def _send_cancel(self, out: OutboundInvite, now: float) -> None:
        if out.cancel_sent or out.ctx is None:
            return
        out.cancel_sent = True
        invite = out.ctx.request
        headers = Headers([("Via", invite.headers.get("Via") or ""), ("Max-Forwards", "70")])
        for name in ("From", "To", "Call-ID"):
            headers.add(name, invite.headers.get(name) or "")
        headers.add("CSeq", f"{invite.cseq.number} CANCEL")
        for route in invite.headers.get_all("Route"):
            headers.add("Route", route)
        cancel = Request("CANCEL", invite.uri, headers)
        ctx = ClientTransaction(cancel, out.addr, out.transport, now, owner=out.call_id)
        self._client_tx[ctx.key] = ctx
        self._send(ctx.wire, ctx.addr, ctx.transport)

    def _on_invite_response(self, response: Response, now: float) -> None:
        ctx = self._invite_ctx.get(client_key(response.top_via.branch or "", "INVITE"))
        if ctx is None:
            return
        kind, data = ctx.receive_response(response, now)
        if data is not None:
            self._send(data, ctx.addr, ctx.transport)
        out = self._outbound.get(ctx.owner)
        current = out is not None and out.ctx is ctx
        if kind == "2xx":
            self._on_invite_2xx(ctx, response, now)
        elif kind == "provisional" and out is not None and current:
            out.provisional = True
            if response.status > 100:  # 100 is hop-by-hop: nothing to tell the application
                self._events.append(
                    ev.CallProgress(out.call_id, response.status, response.reason, response.body or None)
                )
            if out.cancel_wanted:
                self._send_cancel(out, now)
        elif kind == "final" and out is not None and current:
            if response.status in (401, 407) and self._retry_with_auth(out, response, now):
                return
            self._fail(out, response.status, response.reason)

    def _fail(self, out: OutboundInvite, status: int, reason: str) -> None:
        self._outbound.pop(out.call_id, None)
        self._events.append(ev.CallFailed(out.call_id, status, reason))
        ended = ev.REASON_CANCELLED if out.cancel_wanted else ev.REASON_DIAL_FAILED
        self._events.append(ev.CallEnded(out.call_id, ended))

    def _retry_with_auth(self, out: OutboundInvite, response: Response, now: float) -> bool:
        if out.credentials is None or out.auth_tries >= MAX_AUTH_TRIES or out.cancel_wanted:
            return False
        proxy = response.status == 407
        challenge = pick_challenge(response.headers.get_all("Proxy-Authenticate" if proxy else "WWW-Authenticate"))
        if challenge is None:
            return False
        user, password = out.credentials
        creds = answer_challenge(
            challenge, method="INVITE", uri=out.target, username=user, password=password, cnonce=self._new_tag()
        )
        out.auth_tries += 1
        out.cseq += 1
        self._send_invite(out, now, ("Proxy-Authorization" if proxy else "Authorization", creds.header_value()))
        return True

    def _on_invite_2xx(self, ctx: InviteClientTransaction, response: Response, now: float) -> None:
        call = self._calls.get(ctx.owner)
        if call is not None:  # a retransmitted 2xx: its ACK again (§13.2.2.4)
            if call.last_ack is not None:
                self._send(call.last_ack, ctx.addr, ctx.transport)
            return
        out = self._outbound.pop(ctx.owner, None)
        if out is None:
            return
        dialog = Dialog.from_2xx(ctx.request, response, out.addr, out.transport)
        ack = dialog.build_request("ACK", self._via(out.transport))
        call = InboundCall(ctx.request, None, dialog)
        call.state = CallState.CONFIRMED
        call.outbound = True
        call.answer_sdp = out.sdp
        call.remote_sdp = response.body or None
        call.last_ack = ack.serialize()
        self._calls[out.call_id] = call
        self._send(call.last_ack, out.addr, out.transport)
        self._events.append(ev.CallAnswered(out.call_id, response.body or None))
        if out.cancel_wanted:
            self.hangup(out.call_id, now)  # the 2xx won the race with our CANCEL: end it by BYE

    def _uac_timer(self, now: float) -> None:
        for key, ctx in list(self._invite_ctx.items()):
            for data in ctx.handle_timer(now):
                self._send(data, ctx.addr, ctx.transport)
            if ctx.terminated:
                del self._invite_ctx[key]
                out = self._outbound.get(ctx.owner)
                if ctx.timed_out and out is not None and out.ctx is ctx:
                    self._fail(out, 408, "Request Timeout")
        for out in list(self._outbound.values()):
            if out.give_up_at is not None and out.give_up_at <= now:
                self._fail(out, 408, "Request Timeout")
        for binding in list(self._bindings.values()):
            if binding.next_at is not None and binding.next_at <= now:
                binding.next_at = None
                self._send_register(binding, now, binding.expires, None)

    def _uac_deadlines(self) -> list[float]:
        deadlines = [d for ctx in self._invite_ctx.values() if (d := ctx.next_deadline()) is not None]
        deadlines += [o.give_up_at for o in self._outbound.values() if o.give_up_at is not None]
        deadlines += [b.next_at for b in self._bindings.values() if b.next_at is not None]
        return deadlines

    # ----------------------------------------------------------------- REGISTER
    def register(
        self,
        registrar: str,
        *,
        aor: str,
        addr: Addr,
        now: float,
        user: str = "",
        password: str = "",
        expires: int = 300,
        transport: str = "udp",
        retry_s: float = 30.0,
    ) -> str:
        """Keep a binding of ``aor`` to our Contact at ``registrar``; returns its id (the AOR)."""
        binding = Binding(
            reg_id=aor,
            registrar=registrar,
            aor=aor,
            addr=addr,
            transport=transport.lower(),
            user=user,
            password=password,
            expires=expires,
            retry_s=retry_s,
            call_id=f"{self._rng.getrandbits(96):024x}@{format_host(self.local_host)}",
            from_tag=self._new_tag(),
        )
        self._bindings[aor] = binding
        self._send_register(binding, now, expires, None)
        return aor

    def unregister(self, reg_id: str, now: float) -> None:
        binding = self._bindings.get(reg_id)
        if binding is None:
            raise UnknownCall(reg_id)
        binding.closing = True
        binding.next_at = None
        self._send_register(binding, now, 0, None)

    def _send_register(self, binding: Binding, now: float, expires: int, auth: tuple[str, str] | None) -> None:
        binding.cseq += 1
        binding.requested = expires
        binding.contact = self.contact(binding.transport)
        headers = Headers(
            [
                ("Via", self._via(binding.transport)),
                ("Max-Forwards", "70"),
                ("From", f"<{binding.aor}>;tag={binding.from_tag}"),
                ("To", f"<{binding.aor}>"),
                ("Call-ID", binding.call_id),
                ("CSeq", f"{binding.cseq} REGISTER"),
                ("Contact", binding.contact),
                ("Expires", str(expires)),
                ("User-Agent", self.user_agent),
            ]
        )
        if auth is not None:
            headers.add(*auth)
        request = Request("REGISTER", binding.registrar, headers)
        ctx = ClientTransaction(request, binding.addr, binding.transport, now, owner=f"reg:{binding.reg_id}")
        self._client_tx[ctx.key] = ctx
        binding.pending = ctx.key
        self._send(ctx.wire, ctx.addr, ctx.transport)

    def _on_register_final(self, ctx: ClientTransaction, response: Response | None, now: float) -> None:
        """The final response to a REGISTER (None: it timed out)."""
        binding = self._bindings.get(ctx.owner.removeprefix("reg:"))
        if binding is None or binding.pending != ctx.key:
            return
        binding.pending = None
        status = response.status if response is not None else 408
        if response is not None and status in (401, 407) and binding.password and binding.auth_tries < MAX_AUTH_TRIES:
            proxy = status == 407
            challenge = pick_challenge(response.headers.get_all("Proxy-Authenticate" if proxy else "WWW-Authenticate"))
            if challenge is not None:
                creds = answer_challenge(
                    challenge,
                    method="REGISTER",
                    uri=binding.registrar,
                    username=binding.user or binding.aor,
                    password=binding.password,
                    cnonce=self._new_tag(),
                )
                binding.auth_tries += 1
                header = "Proxy-Authorization" if proxy else "Authorization"
                self._send_register(binding, now, binding.requested, (header, creds.header_value()))
                return
        min_expires = response.headers.get("Min-Expires") if response is not None else None
        if status == 423 and min_expires and min_expires.isdigit() and binding.auth_tries < MAX_AUTH_TRIES:
            binding.expires = int(min_expires)
            self._send_register(binding, now, binding.expires, None)
            return
        binding.auth_tries = 0
        if response is not None and response.is_success:
            granted = 0 if binding.requested == 0 else self._granted(binding, response)
            binding.registered = granted > 0
            if binding.closing:
                del self._bindings[binding.reg_id]
            else:
                binding.next_at = now + max(1.0, granted / 2)  # refresh well before it lapses
            self._events.append(ev.Registered(binding.reg_id, granted))
            return
        binding.registered = False
        reason = response.reason if response is not None else "Request Timeout"
        if binding.closing:
            del self._bindings[binding.reg_id]
        else:
            binding.next_at = now + binding.retry_s
        self._events.append(ev.RegistrationFailed(binding.reg_id, status, reason))

    @staticmethod
    def _granted(binding: Binding, response: Response) -> int:
        ours = parse_name_addr(binding.contact).uri
        for value in response.headers.get_all("Contact"):
            try:
                contact = parse_name_addr(value)
            except SipParseError:
                continue
            expires = contact.params.get("expires")
            if contact.uri == ours and expires and expires.isdigit():
                return int(expires)
        header = response.headers.get("Expires")
        return int(header) if header and header.isdigit() else binding.requested

    # ----------------------------------------------------------------- REFER
    def refer(self, call_id: str, target: str, now: float) -> None:
        """Ask the peer of a confirmed call to call ``target`` (blind transfer, RFC 3515)."""
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCall(call_id)
        if call.state is CallState.ANSWERED:
            call.pending_refer = target  # like BYE, a REFER waits for the ACK of our 200 OK
            return
        if call.state is not CallState.CONFIRMED:
            raise InvalidTransition(f"REFER in {call.state.name} (call {call_id})")
        request = call.dialog.build_request("REFER", self._via(call.dialog.transport))
        request.headers.add("Refer-To", f"<{target}>")
        request.headers.add("Referred-By", f"<{parse_name_addr(call.dialog.local_party).uri}>")
        request.headers.add("Contact", self.contact(call.dialog.transport))
        request.headers.add("User-Agent", self.user_agent)
        ctx = ClientTransaction(request, call.dialog.remote_addr, call.dialog.transport, now, owner=call_id)
        self._client_tx[ctx.key] = ctx
        self._send(ctx.wire, ctx.addr, ctx.transport)

    def _on_refer_final(self, ctx: ClientTransaction, response: Response | None) -> None:
        status = response.status if response is not None else 408
        reason = response.reason if response is not None else "Request Timeout"
        self._events.append(ev.ReferProgress(ctx.owner, status, reason, final=not 200 <= status < 300))

    def _on_notify(self, request: Request, tx: ServerTransaction, now: float) -> None:
        call = self._dialog_call(request)
        if call is None:
            self._refuse(tx, 481, "Subscription Does Not Exist", now=now)
            return
        self._respond(tx, make_response(request, 200, "OK"), now)
        event = (request.headers.get("Event") or "").split(";")[0].strip().lower()
        if event != "refer":
            return
        status, reason = _sipfrag_status(request.body)
        terminated = (request.headers.get("Subscription-State") or "").lower().startswith("terminated")
        if status:
            self._events.append(ev.ReferProgress(call.call_id, status, reason, final=status >= 200 or terminated))


def _sipfrag_status(body: bytes) -> tuple[int, str]:
    """``SIP/2.0 200 OK`` from a message/sipfrag body; (0, "") when it has none."""
    line = body.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    parts = line.split(" ", 2)
    if len(parts) >= 2 and parts[0].upper().startswith("SIP/") and parts[1].isascii() and parts[1].isdigit():
        return int(parts[1]), parts[2] if len(parts) > 2 else ""
    return 0, ""


__all__ = ["Binding", "OutboundInvite", "UacMixin", "pick_challenge"]
