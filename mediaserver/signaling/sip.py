"""SIP front end: the sans-I/O `SipEndpoint` wired to UDP/TCP sockets and to the kernel.

Theory of operation: every datagram (or TCP-framed message) goes into the endpoint with the
loop's monotonic time; afterwards `_pump` sends what the endpoint queued, handles its events
and arms one `call_at` for its next timer. An INVITE is routed to a SWML document, its SDP
negotiated, an RTP port taken from the pool and a kernel call started; refusals on the way
get the matching SIP status (404/500 for a bad route or document, 488 for no common codec,
503 when no port is free). The call's teardown closes its RTP socket and returns the port.
"""

from __future__ import annotations

import asyncio
import logging
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from mediaserver.errors import PortPoolExhausted
from mediaserver.kernel.call import Call
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.registry import Kernel
from mediaserver.settings import Settings
from mediaserver.swml.errors import SwmlError
from mediaserver.transport.ports import PortPool
from mediaserver.transport.udp import Addr, DatagramEndpoint, RtpEndpoint, StreamConnection, open_datagram
from mssip import events as sip_events
from mssip.endpoint import SipEndpoint
from mssip.errors import LocalProtocolError
from mssip.sdp import CodecSpec, NegotiationError, SessionDescription, negotiate

log = logging.getLogger(__name__)

CODEC_SPECS = {
    "PCMU": CodecSpec("PCMU", 8000),
    "PCMA": CodecSpec("PCMA", 8000),
    "G722": CodecSpec("G722", 8000),
    "opus": CodecSpec("opus", 48000, 2),
}
_CALL_ID = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass
class _SipCall:
    call: Call
    rtp: RtpEndpoint
    answer_sdp: bytes


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
    def __init__(self, settings: Settings, kernel: Kernel, ports: PortPool) -> None:
        self.settings = settings
        self.kernel = kernel
        self.ports = ports
        self.endpoint = SipEndpoint(settings.sip.contact_host, settings.sip.port, user_agent=settings.sip.user_agent)
        self.supported = [CODEC_SPECS[name] for name in settings.rtp.codecs]
        self._udp: DatagramEndpoint | None = None
        self._tcp_server: asyncio.Server | None = None
        self._tcp: dict[Addr, StreamConnection] = {}
        self._calls: dict[str, _SipCall] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        host, port = self.settings.sip.host, self.settings.sip.port
        self._udp = await open_datagram(host, port, self._on_udp)
        if port == 0:  # an ephemeral port (tests): TCP takes the same number, Contact shows it
            port = self._udp.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
            self.endpoint = SipEndpoint(self.settings.sip.contact_host, port, user_agent=self.settings.sip.user_agent)
        self.port = port
        self._tcp_server = await self._loop.create_server(
            lambda: StreamConnection(self._on_tcp, self._on_tcp_closed), host, port
        )

    async def stop(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self._tcp_server:
            self._tcp_server.close()
        for conn in list(self._tcp.values()):
            if conn.transport:
                conn.transport.close()
        if self._udp:
            self._udp.close()

    # -- input -----------------------------------------------------------------------------
    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _on_udp(self, data: bytes, addr: Addr) -> None:
        self._trace("sip_in", data, addr)
        self.endpoint.receive_datagram(data, addr, self._now(), "udp")
        self._pump()

    def _on_tcp(self, data: bytes, addr: Addr, conn: StreamConnection) -> None:
        self._tcp[addr] = conn
        self._trace("sip_in", data, addr)
        self.endpoint.receive_datagram(data, addr, self._now(), "tcp")
        self._pump()

    def _on_tcp_closed(self, conn: StreamConnection) -> None:
        if self._tcp.get(conn.peer) is conn:
            del self._tcp[conn.peer]

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
    def _pump(self) -> None:
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
        self._arm_timer()

    def _send(self, data: bytes, addr: Addr, transport: str) -> None:
        self._trace("sip_out", data, addr)
        if transport == "tcp":
            conn = self._tcp.get(addr)
            if conn is None:
                log.warning("no TCP connection for SIP message", extra={"peer": f"{addr[0]}:{addr[1]}"})
            else:
                conn.send(data)
        elif self._udp is not None:
            self._udp.send(data, addr)

    def _arm_timer(self) -> None:
        deadline = self.endpoint.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _trace(self, direction: str, data: bytes, addr: Addr) -> None:
        match = _CALL_ID.search(data)
        entry = self._calls.get(match.group(1).decode(errors="replace")) if match else None
        if entry is not None:
            first_line = data.split(b"\r\n", 1)[0].decode(errors="replace")
            entry.call.events.record(direction, line=first_line, peer=f"{addr[0]}:{addr[1]}")

    # -- events ----------------------------------------------------------------------------
    def _handle(self, event: object) -> None:
        if isinstance(event, sip_events.InviteReceived):
            asyncio.get_running_loop().create_task(self._start_call(event))
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
                entry.call.events.record("ack_received")
        elif isinstance(event, sip_events.MessageRejected):
            log.warning("SIP request refused", extra={"status": event.status, "reason": event.reason,
                                                      "peer": f"{event.addr[0]}:{event.addr[1]}"})

    async def _start_call(self, invite: sip_events.InviteReceived) -> None:
        call_id = invite.call_id
        try:
            document = self.kernel.load_route(invite.to_user)
        except (SwmlError, OSError) as exc:
            log.error("cannot load SWML for call", extra={"call_id": call_id, "error": str(exc)})
            self.command(lambda now: self.endpoint.reject(call_id, 500, "Call Flow Error", now))
            return
        try:
            offer = SessionDescription.parse(invite.offer or b"")
        except ValueError as exc:
            log.warning("unreadable SDP offer", extra={"call_id": call_id, "error": str(exc)})
            self.command(lambda now: self.endpoint.reject(call_id, 488, "Not Acceptable Here", now))
            return
        try:
            rtp = await self._open_rtp()
        except PortPoolExhausted as exc:
            log.error("RTP ports exhausted", extra={"call_id": call_id, "error": str(exc)})
            self.command(lambda now: self.endpoint.reject(call_id, 503, "Service Unavailable", now))
            return
        try:
            answer = negotiate(offer, self.supported, self.settings.sip.contact_host, rtp.port,
                               session_id=zlib.crc32(call_id.encode()))
        except NegotiationError as exc:
            log.warning("no acceptable media", extra={"call_id": call_id, "error": str(exc)})
            self._release_rtp(rtp)
            self.command(lambda now: self.endpoint.reject(call_id, 488, "Not Acceptable Here", now))
            return
        rtp.remote = (answer.remote_ip, answer.remote_port)
        answer_sdp = answer.answer.serialize()
        params = MediaParams(
            codec=answer.codec.name,
            payload_type=answer.payload_type,
            clock_rate=answer.codec.clock_rate,
            dtmf_payload_type=answer.dtmf_payload_type,
            jitter_depth_frames=self.settings.rtp.jitter_depth_frames,
        )
        call = self.kernel.start_call(
            call_id,
            from_uri=invite.from_uri,
            to_uri=invite.to_uri,
            document=document,
            media=MediaStream(params, self.kernel.cname),
            signal=SipCallSignal(self, call_id, answer_sdp),
            send_media=rtp.send,
            on_ended=self._call_ended,
            info={"transport": invite.transport, "remote": f"{invite.remote_addr[0]}:{invite.remote_addr[1]}",
                  "rtp_port": rtp.port, "type": "sip"},
        )
        rtp.on_media = call.receive_media
        self._calls[call_id] = _SipCall(call, rtp, answer_sdp)
        call.ring()

    async def _open_rtp(self) -> RtpEndpoint:
        for _ in range(self.ports.size):
            port = self.ports.acquire()
            try:
                return await RtpEndpoint.open(self.settings.sip.host, port, ("0.0.0.0", 0))
            except OSError:
                # Taken by another program: keep it out of the pool for now, try the next one.
                log.warning("RTP port busy, skipping", extra={"port": port})
        raise PortPoolExhausted("no bindable RTP port left")

    def _call_ended(self, call: Call) -> None:
        entry = self._calls.pop(call.call_id, None)
        if entry is not None:
            self._release_rtp(entry.rtp)

    def _release_rtp(self, rtp: RtpEndpoint) -> None:
        rtp.close()
        self.ports.release(rtp.port)
