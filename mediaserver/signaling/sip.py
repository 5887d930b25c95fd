"""SIP front end: the sans-I/O `SipEndpoint` wired to UDP/TCP sockets and to the kernel.

Theory of operation: every datagram (or TCP-framed message) goes into the endpoint with the loop's
monotonic time; afterwards `_pump` sends what the endpoint queued, handles its events and arms one
`call_at` for its next timer (asked once per loop pass, and not at all after a datagram the
endpoint handled statelessly: a flood must not pay a scan each). An INVITE is routed to a SWML
document, its SDP negotiated, an RTP port taken from the pool and a kernel call started; refusals
on the way get the matching SIP status (404/500 for a bad route or document, 488 for no common
codec, 503 when no port is free, 503 with Retry-After over the admission limits,
kernel/admission.py). The call's lifecycle (create, tick, own, log, tear down once) is the kernel's
(kernel/legs.py, through `Kernel.start_call`); what stays here is SIP: the dialog, the SDP, the RTP
socket. The call's teardown closes its RTP socket and returns the port.

The front end reads no settings: app.py gives it a `SipOptions` of plain values. It is the
dialer's `SipPort` (sip_dialer.py), so the dialer never imports this module.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mediaserver.errors import PortPoolExhausted
from mediaserver.events import AckReceived, Held, Resumed, SipIn, SipOut
from mediaserver.kernel.admission import RefusalReason
from mediaserver.kernel.call import Call
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.registry import Kernel
from mediaserver.kernel.taps import DigitSource
from mediaserver.rtp.srtp import SrtpSession
from mediaserver.signaling.sdp_codecs import sdp_codecs
from mediaserver.signaling.sip_dialer import SipDialer
from mediaserver.signaling.sip_options import SipOptions
from mediaserver.swml.document import Document
from mediaserver.swml.errors import SwmlError
from mediaserver.transport.ports import PortPool
from mediaserver.transport.tls import server_context
from mediaserver.transport.udp import Addr, DatagramEndpoint, RtpEndpoint, StreamConnection, open_datagram
from mssip import events as sip_events
from mssip.endpoint import SipEndpoint
from mssip.errors import LocalProtocolError, SipError
from mssip.sdes import answer_offer
from mssip.sdp import CodecSpec, NegotiationError, SessionDescription
from mssip.security import AccessPolicy, RateLimiter, Trunk
from mssip.uri import parse_name_addr, parse_uri

log = logging.getLogger(__name__)

DRAIN_RETRY_AFTER_S = 30  # what a draining instance tells callers and proxies to wait

# Refusals a flood or a scanner draws by the thousand, logged at DEBUG: garbage (400), digest
# challenges and failures (401, 403, 407), methods we refuse (405, 501), strays (481) and the rate
# limit or the drain (503). The rest (415, 420, 488...) point at a misconfigured peer: WARNING.
QUIET_REFUSALS = frozenset({400, 401, 403, 405, 407, 481, 501, 503})

_CALL_ID = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass
class _SipCall:
    call: Call
    rtp: RtpEndpoint
    answer_sdp: bytes
    codec: CodecSpec
    sdp_version: int = 0  # our o= session version; +1 for every new answer (RFC 3264 §8)


class SipCallSignal:
    """The kernel's `CallSignal` for one SIP dialog."""

    def __init__(self, front: SipFrontEnd, call_id: str, answer_sdp: bytes) -> None:
        self._front = front
        self._call_id = call_id
        self._answer_sdp = answer_sdp

    def ring(self) -> None:
        self._front.command(lambda now: self._front.endpoint.send_ringing(self._call_id, now))

    def answer(self) -> None:
        self._front.command(lambda now: self._front.endpoint.answer(self._call_id, self._answer_sdp, now))

    def hangup(self) -> None:
        self._front.command(lambda now: self._front.endpoint.hangup(self._call_id, now))


class SipFrontEnd:
    def __init__(self, options: SipOptions, kernel: Kernel, ports: PortPool) -> None:
        self.options = options
        self.kernel = kernel
        self.ports = ports
        self._nonce_secret = secrets.token_bytes(32)
        self.endpoint = self._make_endpoint(options.port)
        # Seam for URL routes (the SWML fetch contract): return a Document for the call, or None
        # to fall back on the file routes of [routes].
        self.route_resolver: Callable[[str, sip_events.InviteReceived], Awaitable[Document | None]] | None = None
        self.dialer = SipDialer(self, kernel, options.dialer())
        kernel.dialer = self.dialer  # SWML connect / transfer / sip_refer go through us
        self.registered: dict[str, int] = {}  # reg_id -> granted seconds (0: not registered)
        self.supported = sdp_codecs(options.codecs)  # from the one codec table, mscodecs.SUPPORTED
        self._udp: DatagramEndpoint | None = None
        self._tcp_server: asyncio.Server | None = None
        self._tcp: dict[Addr, StreamConnection] = {}
        self._tls: dict[Addr, StreamConnection] = {}
        self._tls_server: asyncio.Server | None = None
        self._calls: dict[str, _SipCall] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._rearm: asyncio.Handle | None = None  # a re-arm queued for the end of this loop pass
        self._setup_gate = asyncio.Lock()  # inbound call setups, one at a time (_start_call)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # calls being set up: kept so none is collected mid-flight

    def _make_endpoint(self, port: int) -> SipEndpoint:
        sip = self.options
        sec = sip.access
        policy = AccessPolicy(
            trunks=[Trunk.from_strings(name, addresses) for name, addresses in sec.trunks.items()],
            users=dict(sec.users),
            realm=sec.realm,
            secret=self._nonce_secret,
            nonce_lifetime_s=sec.nonce_lifetime_s,
            proxy_auth=sec.challenge == 407,
        )
        limiter = RateLimiter(sec.rate_limit_per_s, sec.rate_limit_burst) if sec.rate_limit_per_s else None
        return SipEndpoint(
            sip.contact_host,
            port,
            user_agent=sip.user_agent,
            policy=policy,
            rate_limiter=limiter,
            max_body_bytes=sip.max_body_bytes,
        )

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        host, port = self.options.host, self.options.port
        self._udp = await open_datagram(host, port, self._on_udp)
        if port == 0:  # an ephemeral port (tests): TCP takes the same number, Contact shows it
            port = self._udp.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
            self.endpoint = self._make_endpoint(port)
        self.port = port
        self._tcp_server = await self._loop.create_server(
            lambda: StreamConnection(self._on_tcp, self._on_tcp_closed), host, port
        )
        tls = self.options.tls
        if tls.port:
            context = server_context(tls.cert, tls.key)
            self._tls_server = await self._loop.create_server(
                lambda: StreamConnection(self._on_tls, self._on_tls_closed), host, tls.port, ssl=context
            )
            self.endpoint.tls_port = self._tls_server.sockets[0].getsockname()[1]
        await self._start_registration()

    async def _start_registration(self) -> None:
        """Register at [sip.register].registrar, when set; refresh and retry are the endpoint's."""
        register = self.options.register
        if not register.registrar:
            return
        try:
            uri = parse_uri(register.registrar)
            addr = await SipDialer._resolve(uri.host, uri.port or 5060)
        except (SipError, OSError) as exc:
            log.error("cannot register", extra={"registrar": register.registrar, "error": str(exc)})
            return
        aor = f"sip:{register.user}@{uri.host}"

        def send(now: float) -> None:
            self.endpoint.register(
                register.registrar,
                aor=aor,
                addr=addr,
                now=now,
                user=register.user,
                password=register.password,
                expires=register.expires,
                retry_s=10.0,
            )

        self.command(send)

    async def stop(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self._rearm:
            self._rearm.cancel()
        for server in (self._tcp_server, self._tls_server):
            if server:
                server.close()
        for conn in [*self._tcp.values(), *self._tls.values()]:
            if conn.transport:
                conn.transport.close()
        if self._udp:
            self._udp.close()

    # -- input -----------------------------------------------------------------------------
    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _check_draining(self) -> None:
        # SIGTERM: the kernel stops taking calls; the endpoint then answers new requests (INVITEs
        # and the dispatcher's OPTIONS probes) with 503 so that a proxy sends calls elsewhere.
        if self.kernel.draining and self.endpoint.unavailable_retry_after_s is None:
            self.endpoint.unavailable_retry_after_s = DRAIN_RETRY_AFTER_S

    def _on_udp(self, data: bytes, addr: Addr) -> None:
        self._check_draining()
        self._trace(SipIn, data, addr)
        changed = self.endpoint.receive_datagram(data, addr, self._now(), "udp")
        self._pump(rearm=changed)

    def _on_tcp(self, data: bytes, addr: Addr, conn: StreamConnection) -> None:
        self._check_draining()
        self._tcp[addr] = conn
        self._trace(SipIn, data, addr)
        changed = self.endpoint.receive_datagram(data, addr, self._now(), "tcp")
        self._pump(rearm=changed)

    def _on_tcp_closed(self, conn: StreamConnection) -> None:
        if self._tcp.get(conn.peer) is conn:
            del self._tcp[conn.peer]

    def _on_tls(self, data: bytes, addr: Addr, conn: StreamConnection) -> None:
        self._tls[addr] = conn
        self._trace(SipIn, data, addr)
        changed = self.endpoint.receive_datagram(data, addr, self._now(), "tls")
        self._pump(rearm=changed)

    def _on_tls_closed(self, conn: StreamConnection) -> None:
        if self._tls.get(conn.peer) is conn:
            del self._tls[conn.peer]

    def command(self, action: Callable[[float], None]) -> None:
        """Run an endpoint command with the current time, then flush its output.

        A command can lose a race with the peer (answering a call the caller just cancelled):
        the endpoint refuses it as a local protocol error, which is logged, not raised."""
        try:
            action(self._now())
        except LocalProtocolError as exc:
            log.info("SIP command not applicable", extra={"error": str(exc)})
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.endpoint.handle_timer(self._now())
        self._pump()

    # -- output ----------------------------------------------------------------------------
    def _pump(self, *, rearm: bool = True) -> None:
        """Send what the endpoint queued and handle its events; then re-arm the timer unless
        `rearm` is False (a datagram the endpoint handled statelessly: its timer is unchanged)."""
        while True:
            for data, addr, transport in self.endpoint.datagrams_to_send():
                self._send(data, addr, transport)
            handled = False
            while (event := self.endpoint.next_event()) is not None:
                handled = True
                try:
                    self._handle(event)
                except Exception:
                    log.exception("SIP event handler failed", extra={"sip_event": type(event).__name__})
            if not handled:  # handling events may have queued output (a reject): loop once more
                break
        if rearm:
            self._arm_soon()

    def _send(self, data: bytes, addr: Addr, transport: str) -> None:
        self._trace(SipOut, data, addr)
        if transport in ("tcp", "tls"):
            conn = (self._tcp if transport == "tcp" else self._tls).get(addr)
            if conn is None:  # we do not open connections back: a stream peer keeps its own open
                log.warning(
                    "no stream connection for SIP message",
                    extra={"peer": f"{addr[0]}:{addr[1]}", "transport": transport},
                )
            else:
                conn.send(data)
        elif self._udp is not None:
            self._udp.send(data, addr)

    def _arm_soon(self) -> None:
        # A burst of datagrams read in one loop pass (uvloop reads several per wakeup) asks for
        # the timer once, at the end of the pass, not each (get_timer is a heap peek now).
        if self._loop is None:
            self._arm_timer()
        elif self._rearm is None:
            self._rearm = self._loop.call_soon(self._arm_timer)

    def _arm_timer(self) -> None:
        self._rearm = None
        deadline = self.endpoint.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _trace(self, kind: type[SipIn | SipOut], data: bytes, addr: Addr) -> None:
        match = _CALL_ID.search(data)
        entry = self._calls.get(match.group(1).decode(errors="replace")) if match else None
        if entry is not None:
            first_line = data.split(b"\r\n", 1)[0].decode(errors="replace")
            entry.call.events.emit(kind(line=first_line, peer=f"{addr[0]}:{addr[1]}"))

    # -- events ----------------------------------------------------------------------------
    def _handle(self, event: sip_events.SipEvent) -> None:
        if self.dialer.on_event(event):
            return
        if isinstance(event, sip_events.Registered):
            self.registered[event.reg_id] = event.expires_s
            log.info("registered", extra={"aor": event.reg_id, "expires_s": event.expires_s})
        elif isinstance(event, sip_events.RegistrationFailed):
            self.registered[event.reg_id] = 0
            log.warning(
                "registration failed", extra={"aor": event.reg_id, "status": event.status, "reason": event.reason}
            )
        elif isinstance(event, sip_events.InviteReceived):
            task = asyncio.get_running_loop().create_task(self._start_call(event), name=f"invite:{event.call_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(event, sip_events.ByeReceived | sip_events.CallCancelled):
            entry = self._calls.get(event.call_id)
            if entry:
                entry.call.remote_hung_up("BYE" if isinstance(event, sip_events.ByeReceived) else "CANCEL")
        elif isinstance(event, sip_events.CallEnded):
            entry = self._calls.get(event.call_id)
            if entry:
                entry.call.signaling_ended(event.reason)
        elif isinstance(event, sip_events.CallAcked):
            entry = self._calls.get(event.call_id)
            if entry:
                entry.call.events.emit(AckReceived())
                entry.call.confirm("ack")  # the dialog is confirmed: its media may start
        elif isinstance(event, sip_events.OfferReceived):
            self._on_offer(event)
        elif isinstance(event, sip_events.DtmfReceived):
            entry = self._calls.get(event.call_id)
            if entry is not None and isinstance(entry.call.media, MediaStream):
                entry.call.media.deliver_dtmf(event.digit, DigitSource.SIP_INFO)  # where RFC 4733 digits go too
        elif isinstance(event, sip_events.MessageRejected):
            # Floods are answered by the thousand: 503s and challenges are not worth a warning each.
            level = logging.DEBUG if event.status in QUIET_REFUSALS else logging.WARNING
            log.log(
                level,
                "SIP request refused",
                extra={"status": event.status, "reason": event.reason, "peer": f"{event.addr[0]}:{event.addr[1]}"},
            )

    def _on_offer(self, event: sip_events.OfferReceived) -> None:
        """A re-INVITE/UPDATE offer: hold, resume or a new address; the codec stays (488 otherwise)."""
        call_id = event.call_id
        entry = self._calls.get(call_id)
        try:
            if entry is None:
                raise NegotiationError("call is not set up yet")
            srtp = entry.rtp.srtp  # an SRTP call stays SRTP with our key (RFC 4568 §7.1.4), a plain one plain
            answer, keys = answer_offer(
                SessionDescription.parse(event.offer),
                [entry.codec],
                self.options.contact_host,
                entry.rtp.port,
                session_id=zlib.crc32(call_id.encode()),
                mode="required" if srtp else "off",
                local_key=srtp.local_key if srtp else None,
                suites=(srtp.suite,) if srtp else (),
            )
            if srtp is not None and keys is not None:
                srtp.rekey_inbound(keys.remote_key)
        except (NegotiationError, ValueError) as exc:
            log.info("mid-call offer refused", extra={"call_id": call_id, "error": str(exc)})
            self.command(lambda now: self.endpoint.reject_offer(call_id, 488, "Not Acceptable Here", now))
            return
        entry.sdp_version += 1
        answer.answer.origin.session_version = str(zlib.crc32(call_id.encode()) + entry.sdp_version)
        entry.answer_sdp = answer.answer.serialize()
        if answer.remote_ip not in ("0.0.0.0", "::") and (answer.remote_ip, answer.remote_port) != entry.rtp.remote:
            entry.rtp.retarget((answer.remote_ip, answer.remote_port))
        sending = answer.direction in ("sendrecv", "sendonly") and answer.remote_ip not in ("0.0.0.0", "::")
        if sending != entry.rtp.sending:
            entry.call.events.emit((Resumed if sending else Held)(direction=answer.direction))
        entry.rtp.sending = sending
        # Our answer mirrors the peer: anything but sendrecv means the peer owes us no RTP now.
        entry.call.media_held(answer.direction != "sendrecv")
        sdp = entry.answer_sdp
        self.command(lambda now: self.endpoint.accept_offer(call_id, sdp, now))

    def _route_user(self, invite: sip_events.InviteReceived) -> str:
        """The route key: the user of ``sip.route_header`` when set and present, else the called user."""
        header = self.options.route_header
        value = invite.request.headers.get(header) if header else None
        if value:
            try:
                return parse_uri(parse_name_addr(value).uri).user or ""
            except SipError:
                return value.strip()
        return invite.to_user

    def _route_name(self, invite: sip_events.InviteReceived) -> str:
        """What `call_started` shows as the call's document: the route's name, never a file path."""
        user = self._route_user(invite)
        return user if user in self.options.known_users else "default"

    async def _resolve(self, invite: sip_events.InviteReceived) -> Document | None:
        """The call's SWML document; None when the user has no route and unknown users are refused."""
        user = self._route_user(invite)
        if self.route_resolver is not None:
            document = await self.route_resolver(user, invite)
            if document is not None:
                return document
        if self.options.unknown_user == "reject" and user not in self.options.known_users:
            return None
        return self.kernel.load_route(user)

    async def _start_call(self, invite: sip_events.InviteReceived) -> None:
        call_id = invite.call_id
        if self.kernel.draining:
            self.command(lambda now: self.endpoint.reject(call_id, 503, "Service Unavailable", now))
            return
        try:
            found = await self._resolve(invite)
        except (SwmlError, OSError) as exc:
            log.error("cannot load SWML for call", extra={"call_id": call_id, "error": str(exc)})
            self.command(lambda now: self.endpoint.reject(call_id, 500, "Call Flow Error", now))
            return
        if found is None:
            log.info("no route for called user", extra={"call_id": call_id, "user": invite.to_user})
            self.command(lambda now: self.endpoint.reject(call_id, 404, "Not Found", now))
            return
        # One setup at a time: a burst of INVITEs read in one loop pass (the limiter's burst of
        # 40, a trunk's rush) would otherwise build all its calls in one pass and hold the media
        # ticks for tens of milliseconds; the lock hands over once per pass, so ticks run between.
        async with self._setup_gate:
            await self._set_up(invite, found)

    async def _set_up(self, invite: sip_events.InviteReceived, document: Document) -> None:
        call_id = invite.call_id
        try:
            offer = SessionDescription.parse(invite.offer or b"")
        except ValueError as exc:
            log.warning("unreadable SDP offer", extra={"call_id": call_id, "error": str(exc)})
            self.command(lambda now: self.endpoint.reject(call_id, 488, "Not Acceptable Here", now))
            return
        try:
            rtp = await self.open_rtp()
        except PortPoolExhausted as exc:
            log.error("RTP ports exhausted", extra={"call_id": call_id, "error": str(exc)})
            self.kernel.admission.note_refusal(call_id, RefusalReason.RTP_PORTS, str(exc), front_end="sip")
            self.command(lambda now: self.endpoint.reject(call_id, 503, "Service Unavailable", now))
            return
        try:
            answer, keys = answer_offer(
                offer,
                self.supported,
                self.options.contact_host,
                rtp.port,
                session_id=zlib.crc32(call_id.encode()),
                mode=self.options.media_encryption,
            )
        except NegotiationError as exc:
            log.warning("no acceptable media", extra={"call_id": call_id, "error": str(exc)})
            self.release_rtp(rtp)
            self.command(lambda now: self.endpoint.reject(call_id, 488, "Not Acceptable Here", now))
            return
        rtp.call_id = call_id  # its log lines (a NAT latch, a stranger's packets dropped) name the call
        rtp.remote = (answer.remote_ip, answer.remote_port)  # RTP is accepted from here (or a NAT latch)
        rtp.srtp = SrtpSession(keys.suite, keys.local_key, keys.remote_key) if keys else None
        answer_sdp = answer.answer.serialize()
        params = MediaParams(
            codec=answer.codec.name,
            payload_type=answer.payload_type,
            clock_rate=answer.codec.clock_rate,
            dtmf_payload_type=answer.dtmf_payload_type,
            jitter_depth_frames=self.options.jitter_depth_frames,
            jitter_max_depth_frames=self.options.jitter_max_depth_frames,
        )
        # No telephone-event negotiated: listen for DTMF tones in the audio instead.
        media = MediaStream(params, self.kernel.cname, inband_dtmf=answer.dtmf_payload_type is None)
        # Asked here, with no await before start_call: a burst of INVITEs cannot all pass the check.
        refusal = self.kernel.admission.admit(call_id, document, front_end="sip")
        if refusal is not None:  # over capacity: 503 + Retry-After, so a proxy tries elsewhere or later
            self.release_rtp(rtp)
            headers = refusal.headers
            self.command(lambda now: self.endpoint.reject(call_id, 503, "Service Unavailable", now, headers=headers))
            return
        call = self.kernel.start_call(
            call_id,
            from_uri=invite.from_uri,
            to_uri=invite.to_uri,
            document=document,
            media=media,
            signal=SipCallSignal(self, call_id, answer_sdp),
            send_media=rtp.send,
            on_ended=self.forget_leg,
            log_digits=True,
            route=self._route_name(invite),
            info={
                "transport": invite.transport,
                "remote": f"{invite.remote_addr[0]}:{invite.remote_addr[1]}",
                "rtp_port": rtp.port,
                "type": "sip",
                "identity": invite.identity,
                "srtp": keys.suite if keys else "",
            },
        )
        # No media until our 2xx is ACKed or the peer's RTP comes: a flood of INVITEs that never
        # ACK would otherwise send 50 packets/s per call for the 64*T1 the 2xx is resent.
        call.awaiting_confirmation = True
        rtp.on_media = call.receive_media
        call.watch_media(self.options.media_timeouts)  # a lost BYE must not keep the call for good
        call.media_held(answer.direction != "sendrecv")  # a call may start on hold
        self._calls[call_id] = _SipCall(call, rtp, answer_sdp, answer.codec)
        call.ring()

    # -- the dialer's SipPort -----------------------------------------------------------------
    def leg(self, call_id: str) -> Call | None:
        entry = self._calls.get(call_id)
        return entry.call if entry is not None else None

    def adopt_leg(self, leg: Call, rtp: RtpEndpoint, local_sdp: bytes, codec: CodecSpec) -> None:
        """An answered outbound leg: SIP events for its Call-ID now reach it like an inbound call's."""
        rtp.call_id = leg.call_id
        leg.watch_media(self.options.media_timeouts)
        self._calls[leg.call_id] = _SipCall(leg, rtp, local_sdp, codec)

    def forget_leg(self, leg: Call) -> None:
        """A leg's teardown (inbound or outbound): out of the table, its RTP port back."""
        entry = self._calls.get(leg.call_id)
        if entry is not None and entry.call is leg:
            del self._calls[leg.call_id]
            self.release_rtp(entry.rtp)

    async def open_rtp(self) -> RtpEndpoint:
        for _ in range(self.ports.size):
            port = self.ports.acquire()
            try:
                return await RtpEndpoint.open(self.options.host, port, ("0.0.0.0", 0))
            except OSError:
                # Taken by another program: keep it out of the pool for now, try the next one.
                log.warning("RTP port busy, skipping", extra={"port": port})
        raise PortPoolExhausted("no bindable RTP port left")

    def release_rtp(self, rtp: RtpEndpoint) -> None:
        rtp.close()
        self.ports.release(rtp.port)
