"""asyncio datagram and stream adapters: the only code that touches sockets.

Each adapter turns socket callbacks into plain calls on a handler and offers `send`. They keep
no protocol state; the sans-I/O cores and the kernel do (the RTP socket asks its call's
`RtpSourceFilter` which packets to let through).
"""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import selector_events
from collections.abc import Callable
from typing import Any, cast

from mediaserver.metrics import RTP_DROPS
from mediaserver.rtp.source_filter import RtpSourceFilter, Verdict, packet_ssrc
from mediaserver.rtp.srtp import SrtpError, SrtpSession
from mssip.errors import SipParseError
from mssip.parser import StreamFramer

log = logging.getLogger(__name__)

Addr = tuple[str, int]
DatagramHandler = Callable[[bytes, Addr], None]
# Datagram payloads are small; asyncio's default 256 KiB receive buffer per read cost page
# faults on every packet (docs/costs.md §5).
MAX_DATAGRAM = 4096
# A stranger's RTP flood is logged once per interval per call, with the count, not per packet.
DROP_LOG_INTERVAL_NS = 10_000_000_000
# The transport class of the standard library's selector loop: it reads each datagram with
# `recvfrom(self.max_size)`, so its `max_size` is set to MAX_DATAGRAM. uvloop's transports (the
# server's loop, mediaserver/cli.py) read into libuv's buffer and have no such setting. The class
# is private, so typeshed does not declare it.
_SELECTOR_DATAGRAM: type[Any] = selector_events._SelectorDatagramTransport  # type: ignore[attr-defined]


class DatagramEndpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: DatagramHandler) -> None:
        self._on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's classes; they implement the same methods.
        self.transport = cast(asyncio.DatagramTransport, transport)
        if isinstance(transport, _SELECTOR_DATAGRAM):
            transport.max_size = MAX_DATAGRAM

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self._on_datagram(data, (addr[0], addr[1]))
        except Exception:
            log.exception("datagram handler failed")

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable after the peer left: expected at the end of calls.
        log.debug("datagram error", extra={"error": str(exc)})

    def send(self, data: bytes, addr: Addr) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        # The handler usually leads back to the owner of this endpoint: drop it, so that a
        # closed call is freed by reference counting, not left for a full GC pass (a stall).
        self._on_datagram = _ignore_datagram


def _ignore_datagram(data: bytes, addr: Addr) -> None:
    """The handler of a closed endpoint (a datagram already read when it closed)."""


async def open_datagram(host: str, port: int, on_datagram: DatagramHandler) -> DatagramEndpoint:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: DatagramEndpoint(on_datagram), local_addr=(host, port), reuse_port=False
    )
    return protocol


class RtpEndpoint:
    """One call's RTP socket. RTP is accepted from the address the SDP negotiated only; media
    goes there too, until symmetric-RTP latching moves both to where the peer's first packets
    really come from (a NATed caller), under the rules of `RtpSourceFilter`: only in the short
    window after each negotiation, only for the expected SSRC, once, and logged with the call id.
    Packets from any other source are dropped, counted in ``source_dropped`` (and the process's
    ``mediaserver_rtp_dropped_packets_total{reason="foreign_source"}``) and logged at most once
    every DROP_LOG_INTERVAL_NS. Setting ``remote`` (the SDP's address) or `retarget` (a
    re-INVITE/UPDATE) negotiates the address and re-opens the latching window.

    With ``srtp`` set (SDES keys were negotiated), what is sent is protected and what arrives
    is unprotected here; a packet that fails its check is dropped (counted in
    ``srtp_dropped``) and does not latch the address."""

    def __init__(self, endpoint: DatagramEndpoint, port: int, remote: Addr) -> None:
        self.endpoint = endpoint
        self.port = port
        self.source = RtpSourceFilter(remote)
        self.call_id: str | None = None  # for the log lines; the front end sets it
        self.sending = True  # False while our SDP direction is recvonly/inactive (the peer holds us)
        self.on_media: Callable[[bytes, int], None] | None = None
        self.srtp: SrtpSession | None = None
        self.srtp_dropped = 0
        self._dropped_logged = 0  # source_dropped at the last log line
        self._next_drop_log_ns = 0

    @property
    def remote(self) -> Addr:
        """Where media is sent: the latched source, else the negotiated address."""
        return self.source.remote

    @remote.setter
    def remote(self, addr: Addr) -> None:
        self.source.negotiate(addr)

    @property
    def latched(self) -> bool:
        """The current source has delivered an accepted packet since the last negotiation."""
        return self.source.confirmed

    @property
    def source_dropped(self) -> int:
        return self.source.dropped

    @classmethod
    async def open(cls, host: str, port: int, remote: Addr) -> RtpEndpoint:
        holder: list[RtpEndpoint] = []

        def received(data: bytes, addr: Addr) -> None:
            holder[0].received(data, addr)

        endpoint = await open_datagram(host, port, received)
        rtp = cls(endpoint, port, remote)
        holder.append(rtp)
        return rtp

    def received(self, data: bytes, addr: Addr) -> None:
        now_ns = time.monotonic_ns()
        source = self.source
        # Asked before SRTP's work: a stranger's flood costs a tuple compare a packet.
        if not source.admits(addr, now_ns):
            source.check(addr, None, now_ns)  # a drop whatever the packet holds: counted there
            self._drop_foreign(addr, now_ns)
            return
        if self.srtp is not None:
            try:
                data = self.srtp.unprotect(data)
            except SrtpError as exc:
                self.srtp_dropped += 1
                RTP_DROPS.srtp += 1
                if self.srtp_dropped & (self.srtp_dropped - 1) == 0:  # 1st, 2nd, 4th, 8th...: no flood
                    log.info(
                        "SRTP packet dropped", extra={"call_id": self.call_id, "port": self.port, "error": str(exc)}
                    )
                return
        verdict = source.check(addr, packet_ssrc(data), now_ns)
        if verdict is Verdict.DROP:
            self._drop_foreign(addr, now_ns)
            return
        if verdict is Verdict.LATCH and source.last_latch is not None:
            latch = source.last_latch
            log.info(
                "RTP source latched",
                extra={
                    "call_id": self.call_id,
                    "port": self.port,
                    "old": _show(latch.old) if latch.old else "none",
                    "new": _show(latch.new),
                    "ssrc": latch.ssrc,
                },
            )
        if self.on_media is not None:
            self.on_media(data, now_ns)

    def _drop_foreign(self, addr: Addr, now_ns: int) -> None:
        RTP_DROPS.foreign_source += 1
        if now_ns >= self._next_drop_log_ns:  # one line per interval, with the count since the last
            self._next_drop_log_ns = now_ns + DROP_LOG_INTERVAL_NS
            log.warning(
                "RTP from an unexpected source dropped",
                extra={
                    "call_id": self.call_id,
                    "port": self.port,
                    "from": _show(addr),
                    "expected": _show(self.source.remote),
                    "dropped": self.source.dropped - self._dropped_logged,
                    "dropped_total": self.source.dropped,
                },
            )
            self._dropped_logged = self.source.dropped

    def send(self, data: bytes) -> None:
        if self.sending:
            if self.srtp is not None:
                try:
                    data = self.srtp.protect(data)
                except SrtpError as exc:
                    log.warning("SRTP protect failed", extra={"port": self.port, "error": str(exc)})
                    return
            self.endpoint.send(data, self.source.remote)

    def retarget(self, remote: Addr) -> None:
        """A new address from a re-INVITE/UPDATE: send there, and accept from there; the latching
        window opens again (the address the SDP gave before does not: a refresh keeps the latch)."""
        self.source.negotiate(remote)

    def close(self) -> None:
        if self.source.dropped:
            log.info(
                "RTP from unexpected sources dropped during the call",
                extra={"call_id": self.call_id, "port": self.port, "dropped_total": self.source.dropped},
            )
        self.endpoint.close()
        self.on_media = None  # the call's bound method: see DatagramEndpoint.close


def _show(addr: Addr) -> str:
    return f"{addr[0]}:{addr[1]}"


class StreamConnection(asyncio.Protocol):
    """A SIP-over-TCP connection: frames messages by Content-Length and hands each one on."""

    def __init__(
        self, on_message: Callable[[bytes, Addr, StreamConnection], None], on_closed: Callable[[StreamConnection], None]
    ) -> None:
        self._on_message = on_message
        self._on_closed = on_closed
        self._framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Addr = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._framer.feed(data)
        except SipParseError as exc:  # the stream lost its framing: nothing after it can be trusted
            log.warning("closing SIP TCP connection with bad framing", extra={"peer": self.peer, "error": str(exc)})
            if self.transport:
                self.transport.close()
            return
        for message in messages:
            try:
                self._on_message(message, self.peer, self)
            except Exception:
                log.exception("SIP TCP handler failed")

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_closed(self)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
