"""asyncio datagram and stream adapters: the only code that touches sockets.

Each adapter turns socket callbacks into plain calls on a handler and offers `send`. They keep
no protocol state; the sans-I/O cores and the kernel do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import selector_events
from collections.abc import Callable
from typing import Any, cast

from mediaserver.rtp.srtp import SrtpError, SrtpSession
from mssip.errors import SipParseError
from mssip.parser import StreamFramer

log = logging.getLogger(__name__)

Addr = tuple[str, int]
DatagramHandler = Callable[[bytes, Addr], None]
# Datagram payloads are small; asyncio's default 256 KiB receive buffer per read cost page
# faults on every packet (docs/costs.md §5).
MAX_DATAGRAM = 4096
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


async def open_datagram(host: str, port: int, on_datagram: DatagramHandler) -> DatagramEndpoint:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: DatagramEndpoint(on_datagram), local_addr=(host, port), reuse_port=False
    )
    return protocol


class RtpEndpoint:
    """One call's RTP socket. Media goes to the address the SDP named until the peer's first
    packet arrives; then to the packet's source (symmetric RTP, so NATed callers hear us).

    With ``srtp`` set (SDES keys were negotiated), what is sent is protected and what arrives
    is unprotected here; a packet that fails its check is dropped (counted in
    ``srtp_dropped``) and does not latch the address."""

    def __init__(self, endpoint: DatagramEndpoint, port: int, remote: Addr) -> None:
        self.endpoint = endpoint
        self.port = port
        self.remote = remote
        self.latched = False
        self.sending = True  # False while our SDP direction is recvonly/inactive (the peer holds us)
        self.on_media: Callable[[bytes, int], None] | None = None
        self.srtp: SrtpSession | None = None
        self.srtp_dropped = 0

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
        if self.srtp is not None:
            try:
                data = self.srtp.unprotect(data)
            except SrtpError as exc:
                self.srtp_dropped += 1
                if self.srtp_dropped & (self.srtp_dropped - 1) == 0:  # 1st, 2nd, 4th, 8th...: no flood
                    log.info("SRTP packet dropped", extra={"port": self.port, "error": str(exc)})
                return
        if not self.latched:
            self.remote = addr
            self.latched = True
        if self.on_media is not None:
            self.on_media(data, time.monotonic_ns())

    def send(self, data: bytes) -> None:
        if self.sending:
            if self.srtp is not None:
                try:
                    data = self.srtp.protect(data)
                except SrtpError as exc:
                    log.warning("SRTP protect failed", extra={"port": self.port, "error": str(exc)})
                    return
            self.endpoint.send(data, self.remote)

    def retarget(self, remote: Addr) -> None:
        """A new address from a re-INVITE/UPDATE: send there, and latch again on what arrives."""
        self.remote = remote
        self.latched = False

    def close(self) -> None:
        self.endpoint.close()


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
