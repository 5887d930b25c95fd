"""The kernel's `Dialer` over SIP: outbound legs (SWML connect), the B2BUA bridge, REFER.

Theory of operation: `dial` offers SDP from a fresh RTP port, sends the INVITE through the
front end's sans-I/O endpoint and waits for the outcome the endpoint reports (`CallAnswered`,
or `CallFailed`). On timeout it CANCELs and waits for the 487 (or the 2xx that raced it, which
the endpoint ACKs and ends with BYE). An answered INVITE becomes a kernel `Call` of its own, with
a `MediaStream` for the codec the answer chose, opened through the kernel's one leg lifecycle
(`Kernel.open_leg`: ticked, owned, logged) whose teardown releases its port; SIP events reach it
through the front end's call table like an inbound call's. `bridge` relays audio both ways
(`kernel.bridge`) and hangs up the outbound leg when it is over. `refer` sends REFER and
returns the final status the NOTIFYs report (or the REFER's own error).

Credentials: a target on the host we register at (`[sip.register]`) is dialled with those
credentials, so a PBX that challenges INVITEs gets an answer.

The dialer and the SIP front end meet through `SipPort` (what the dialer needs of the front
end: its endpoint, commands, RTP ports, its call table) and `DialerOptions` (the values of the
settings it needs): this module never imports the front end.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from mediaserver.events import CallStarted, DialFailed, DialStarted, ReferFailed, ReferProgress
from mediaserver.kernel.bridge import run_bridge
from mediaserver.kernel.call import Call
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.registry import Kernel
from mediaserver.kernel.services import DialResult
from mediaserver.rtp.srtp import SrtpSession
from mediaserver.signaling.sdp_codecs import sdp_codecs
from mediaserver.transport.udp import RtpEndpoint
from mscodecs import SUPPORTED
from mssip import events as sip_events
from mssip.endpoint import SipEndpoint
from mssip.errors import SipError
from mssip.sdes import make_offer_with_keys, read_answer_keys
from mssip.sdp import CodecSpec, NegotiationError, SessionDescription
from mssip.uri import parse_uri

log = logging.getLogger(__name__)
_PHONE_NUMBER = re.compile(r"^(?:tel:)?(\+?[0-9]{3,15})$", re.IGNORECASE)
Outcome = sip_events.CallAnswered | sip_events.CallFailed


@dataclass(frozen=True)
class Registration:
    """`[sip.register]`: where we register, and the credentials for targets on that host."""

    registrar: str = ""
    user: str = ""
    password: str = ""
    expires: int = 300


@dataclass(frozen=True)
class DialerOptions:
    """The settings the dialer reads, as values (built by app.py through the front end)."""

    contact_host: str
    codecs: tuple[str, ...]  # what an outbound offer lists when the verb names none
    jitter_depth_frames: int = MediaParams.jitter_depth_frames
    jitter_max_depth_frames: int = MediaParams.jitter_max_depth_frames
    register: Registration = Registration()
    outbound_proxy: str = ""  # host[:port]: a phone number is dialled as sip:<number>@<proxy>
    # SDES-SRTP: "required" offers RTP/SAVP; "optional" offers RTP/AVP with a=crypto (best effort:
    # what baresip's mediaenc=srtp and FreeSWITCH/Asterisk "optimistic" SRTP offer and accept)
    media_encryption: str = "off"


class SipPort(Protocol):
    """What the dialer needs of the SIP front end (`SipFrontEnd` implements it)."""

    @property
    def endpoint(self) -> SipEndpoint:
        """The sans-I/O endpoint that sends INVITE, CANCEL, BYE and REFER."""
        ...

    def command(self, action: Callable[[float], None]) -> None:
        """Run an endpoint command with the current time, then send what it queued."""
        ...

    def leg(self, call_id: str) -> Call | None:
        """The live call (inbound or adopted outbound) of a SIP dialog."""
        ...

    async def open_rtp(self) -> RtpEndpoint: ...

    def release_rtp(self, rtp: RtpEndpoint) -> None: ...

    def adopt_leg(self, leg: Call, rtp: RtpEndpoint, local_sdp: bytes, codec: CodecSpec) -> None:
        """An answered outbound leg: route SIP events of its Call-ID to it."""
        ...

    def forget_leg(self, leg: Call) -> None:
        """The leg is over: out of the call table, its RTP port back to the pool."""
        ...


class _LegSignal:
    """The kernel's `CallSignal` for an outbound leg: already answered; hangup sends BYE."""

    def __init__(self, front: SipPort, call_id: str) -> None:
        self._front = front
        self._call_id = call_id

    def ring(self) -> None:
        pass

    def answer(self) -> None:
        pass

    def hangup(self) -> None:
        self._front.command(lambda now: self._front.endpoint.hangup(self._call_id, now))


class SipDialer:
    def __init__(self, front: SipPort, kernel: Kernel, options: DialerOptions) -> None:
        self.front = front
        self.kernel = kernel
        self.options = options
        self._dials: dict[str, asyncio.Future[Outcome]] = {}
        self._refers: dict[str, asyncio.Future[int]] = {}

    # -- events from the front end ---------------------------------------------------------
    def on_event(self, event: sip_events.SipEvent) -> bool:
        """Take the UAC events the dialer waits for; False for anything else."""
        if isinstance(event, sip_events.CallAnswered | sip_events.CallFailed):
            future = self._dials.pop(event.call_id, None)
            if future is not None and not future.done():
                future.set_result(event)
            elif isinstance(event, sip_events.CallAnswered):
                # Answered after we gave up waiting: nobody wants it.
                self.front.command(lambda now: self.front.endpoint.hangup(event.call_id, now))
            return True
        if isinstance(event, sip_events.CallProgress):
            log.info("outbound call progress", extra={"call_id": event.call_id, "status": event.status})
            return True
        if isinstance(event, sip_events.ReferProgress):
            leg = self.front.leg(event.call_id)
            if leg is not None:
                leg.events.emit(ReferProgress(status=event.status, reason=event.reason, final=event.final))
            refer = self._refers.get(event.call_id)
            if event.final and refer is not None and not refer.done():
                refer.set_result(event.status)
            return True
        return False

    # -- Dialer ----------------------------------------------------------------------------
    async def dial(
        self,
        origin: Call,
        to: str,
        *,
        from_: str | None = None,
        timeout_s: float = 60.0,
        headers: Mapping[str, str] | None = None,
        codecs: list[str] | None = None,
    ) -> DialResult:
        front = self.front
        try:
            target = parse_uri(self._via_proxy(to))
            if target.scheme not in ("sip", "sips") or not target.host:
                raise SipError(f"not a SIP URI: {to!r}")
            addr = await self._resolve(target.host, target.port or 5060)
        except (SipError, OSError) as exc:
            origin.events.emit(DialFailed(to=to, error=str(exc)))
            return DialResult(False, 400, f"bad target: {exc}")
        offered = self._codecs(origin, codecs)
        rtp = await front.open_rtp()
        host = self.options.contact_host
        session = zlib.crc32(f"{origin.call_id}/{to}".encode())
        offer_sdp, cryptos = make_offer_with_keys(offered, host, rtp.port, session, mode=self.options.media_encryption)
        offer = offer_sdp.serialize()
        from_uri = from_ if from_ and ":" in from_ else (f"sip:{from_}@{host}" if from_ else origin.from_uri)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        holder: list[str] = []

        def send(now: float) -> None:
            call_id = front.endpoint.invite(
                str(target),
                from_uri=from_uri,
                sdp=offer,
                addr=addr,
                now=now,
                headers=list((headers or {}).items()),
                credentials=self._credentials(target.host),
            )
            holder.append(call_id)
            self._dials[call_id] = future

        front.command(send)
        call_id = holder[0]
        origin.events.emit(DialStarted(to=to, leg_call_id=call_id, codecs=[c.name for c in offered]))
        try:
            outcome = await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            front.command(lambda now: front.endpoint.cancel(call_id, now))
            try:  # the 487 (or a racing 2xx, which the endpoint ends by BYE itself)
                outcome = await asyncio.wait_for(future, 40.0)
            except TimeoutError:
                outcome = sip_events.CallFailed(call_id, 408, "Request Timeout")
            if isinstance(outcome, sip_events.CallAnswered):
                front.release_rtp(rtp)
                return DialResult(False, 408, "no answer (timeout)")
        if isinstance(outcome, sip_events.CallFailed):
            front.release_rtp(rtp)
            return DialResult(False, outcome.status, outcome.reason)
        try:
            answer, keys = read_answer_keys(
                SessionDescription.parse(outcome.sdp or b""), offered, cryptos, mode=self.options.media_encryption
            )
        except (NegotiationError, ValueError) as exc:
            origin.events.emit(DialFailed(to=to, error=f"unusable SDP answer: {exc}"))
            front.command(lambda now: front.endpoint.hangup(call_id, now))
            front.release_rtp(rtp)
            return DialResult(False, 488, "unusable SDP answer")
        rtp.remote = (answer.remote_ip, answer.remote_port)
        rtp.srtp = SrtpSession(keys.suite, keys.local_key, keys.remote_key) if keys else None
        params = MediaParams(
            codec=answer.codec.name,
            payload_type=answer.payload_type,
            clock_rate=answer.codec.clock_rate,
            dtmf_payload_type=answer.dtmf_payload_type,
            jitter_depth_frames=self.options.jitter_depth_frames,
            jitter_max_depth_frames=self.options.jitter_max_depth_frames,
        )
        media = MediaStream(params, self.kernel.cname, inband_dtmf=answer.dtmf_payload_type is None)
        leg = self.kernel.open_leg(
            call_id,
            from_uri=from_uri,
            to_uri=str(target),
            media=media,
            signal=_LegSignal(front, call_id),
            send_media=rtp.send,
            teardown=front.forget_leg,
            info={"type": "sip", "direction": "outbound", "origin": origin.call_id, "rtp_port": rtp.port},
            started=CallStarted(direction="outbound", to=str(target), codec=answer.codec.name, origin=origin.call_id),
        )
        rtp.on_media = leg.receive_media
        leg.answer()
        front.adopt_leg(leg, rtp, offer, answer.codec)
        return DialResult(True, 200, "OK", leg)

    async def bridge(self, a: Call, b: Call) -> str:
        first = await run_bridge(a, b)
        if not b.is_over:
            b.hangup()  # the outbound leg never outlives the bridge
        return first.call_id

    async def refer(self, call: Call, to_uri: str) -> int:
        front = self.front
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._refers[call.call_id] = future
        failed: list[str] = []

        def send(now: float) -> None:
            try:
                front.endpoint.refer(call.call_id, to_uri, now)
            except SipError as exc:
                failed.append(str(exc))

        front.command(send)
        try:
            if failed:
                call.events.emit(ReferFailed(error=failed[0]))
                return 481
            return await asyncio.wait_for(future, 64.0)
        except TimeoutError:
            return 408
        finally:
            self._refers.pop(call.call_id, None)

    # -- helpers -----------------------------------------------------------------------------
    def _codecs(self, origin: Call, names: list[str] | None) -> list[CodecSpec]:
        wanted = [n for n in (names or list(self.options.codecs)) if n in SUPPORTED]
        if origin.media.codec_name in wanted:  # the origin's codec first: no transcoding if the far end agrees
            wanted.remove(origin.media.codec_name)
            wanted.insert(0, origin.media.codec_name)
        return sdp_codecs(wanted or ["PCMU"])

    def _credentials(self, host: str) -> tuple[str, str] | None:
        register = self.options.register
        if not register.registrar or not register.password:
            return None
        try:
            registrar_host = parse_uri(register.registrar).host
        except SipError:
            return None
        return (register.user, register.password) if registrar_host == host else None

    def _via_proxy(self, to: str) -> str:
        """`to` as a SIP URI: a phone number ("+1555…", tel:…) goes to the outbound proxy."""
        number = _PHONE_NUMBER.match(to.strip())
        proxy = self.options.outbound_proxy.removeprefix("sip:")
        if number and proxy:
            return f"sip:{number.group(1)}@{proxy}"
        return to if ":" in to else f"sip:{to}"

    @staticmethod
    async def _resolve(host: str, port: int) -> tuple[str, int]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
        if not infos:
            raise OSError(f"cannot resolve {host}")
        address = infos[0][4]
        return str(address[0]), int(address[1])
