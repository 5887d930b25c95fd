"""Which source address one call's RTP is accepted from: the negotiated one, or one latched to.

Theory of operation
-------------------
Sans-I/O: the socket adapter asks `check(addr, ssrc, now_ns)` for every packet (after SRTP, when
SRTP is on, so that only authentic packets can move the latch) and gets `ACCEPT`, `LATCH` or
`DROP`; `admits(addr, now_ns)` is the cheap question to ask before any decryption work.

The source starts as the address the SDP negotiated (c= and m= of the offer/answer; `negotiate`
sets it, and a re-INVITE/UPDATE with a new address calls it again). Packets from it are always
accepted, whatever their SSRC (a peer may restart its stream). Symmetric RTP: a caller behind a
NAT announces a private address but sends from its public mapping, so during a short *latching
window* after each negotiation, a packet from another address moves the source there (`LATCH`)
when it carries the expected SSRC: the SSRC the SDP announced, else the first one accepted on
this negotiation, else (nothing seen yet) whatever the first packet carries, as symmetric RTP
always did. One latch per negotiation: latching closes the window. The window also closes
`window_packets` accepted packets or `window_ns` after the first accepted packet of the negotiation,
whichever comes first; from then on a packet from any address but the source is dropped and
counted (`dropped`), so a stranger who sprays RTP at our ports is never heard and cannot steal
the stream the call sends.

An address that is not known (0.0.0.0, ::, port 0: an answer not yet in, or a hold) accepts
nothing by itself: the first matching packet latches. The source is also where replies go: the
front end sends to `remote`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import Enum

from mediaserver.rtp.packet import is_rtcp

Addr = tuple[str, int]

NS_PER_S = 1_000_000_000
DEFAULT_WINDOW_PACKETS = 50  # 1 s of 20 ms frames
DEFAULT_WINDOW_NS = 2 * NS_PER_S
_UNSPECIFIED_HOSTS = ("", "0.0.0.0", "::")


class Verdict(Enum):
    ACCEPT = "accept"
    LATCH = "latch"  # accepted, and the source (where media is sent, too) moved to this address
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Latch:
    """What the last latch did, for the log line."""

    old: Addr | None
    new: Addr
    ssrc: int


def packet_ssrc(data: bytes) -> int | None:
    """The sender's SSRC of an RTP or RTCP packet (RFC 5761 demultiplexing), None if too short."""
    if len(data) >= 8 and is_rtcp(data):
        return int(struct.unpack_from("!I", data, 4)[0])
    if len(data) >= 12:
        return int(struct.unpack_from("!I", data, 8)[0])
    return None


def normalize_addr(addr: Addr) -> Addr | None:
    """The address as a socket reports a packet's source; None when it names no one."""
    host, port = addr
    if host in _UNSPECIFIED_HOSTS or port == 0:
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return (host, port)  # a host name in c=: never equal to a packet source, so NAT latching decides
    if ip.is_unspecified:
        return None
    return (str(ip), port)


class RtpSourceFilter:
    def __init__(
        self,
        negotiated: Addr | None = None,
        *,
        window_packets: int = DEFAULT_WINDOW_PACKETS,
        window_ns: int = DEFAULT_WINDOW_NS,
    ) -> None:
        if window_packets < 1 or window_ns <= 0:
            raise ValueError(f"latching window must be positive, got {window_packets} packets / {window_ns} ns")
        self.window_packets = window_packets
        self.window_ns = window_ns
        self.negotiated: Addr | None = None
        self.source: Addr | None = None  # where media is accepted from
        self.expected_ssrc: int | None = None
        self.confirmed = False  # a packet from `source` was accepted since the last negotiation
        self.dropped = 0
        self.latches = 0
        self.last_latch: Latch | None = None
        self._window_open = True
        self._window_started_ns: int | None = None
        self._window_accepted = 0
        self._unset_remote: Addr = ("0.0.0.0", 0)
        self.negotiate(negotiated or self._unset_remote)

    @property
    def remote(self) -> Addr:
        """Where media goes: the latched source, else the negotiated address as the SDP gave it."""
        return self.source if self.source is not None else self._unset_remote

    def negotiate(self, addr: Addr, ssrc: int | None = None) -> None:
        """The SDP's address (a first answer or a re-INVITE/UPDATE): accept from it and re-open
        the latching window. The same address again changes nothing (a session refresh must not
        undo the NAT latch)."""
        normal = normalize_addr(addr)
        if normal is not None and normal == self.negotiated and ssrc is None:
            return
        self.negotiated = normal
        self.source = normal
        self._unset_remote = normal if normal is not None else addr
        self.expected_ssrc = ssrc
        self.confirmed = False
        self._window_open = True
        self._window_started_ns = None
        self._window_accepted = 0

    def window_open(self, now_ns: int) -> bool:
        if not self._window_open:
            return False
        if self._window_started_ns is not None and now_ns - self._window_started_ns >= self.window_ns:
            self._window_open = False
        return self._window_open

    def admits(self, addr: Addr, now_ns: int) -> bool:
        """False for a packet `check` would drop whatever it held: skip the work on it."""
        return addr == self.source or self.window_open(now_ns)

    def check(self, addr: Addr, ssrc: int | None, now_ns: int) -> Verdict:
        if addr == self.source:
            self._accepted(ssrc, now_ns)
            return Verdict.ACCEPT
        if self.window_open(now_ns) and ssrc is not None and (self.expected_ssrc is None or ssrc == self.expected_ssrc):
            self.last_latch = Latch(self.source, addr, ssrc)
            self.latches += 1
            self.source = addr
            self._accepted(ssrc, now_ns)
            self._window_open = False  # one latch per negotiation
            return Verdict.LATCH
        self.dropped += 1
        return Verdict.DROP

    def _accepted(self, ssrc: int | None, now_ns: int) -> None:
        if self._window_started_ns is None:
            # The window's clock starts with the flow, not with a stranger's first packet.
            self._window_started_ns = now_ns
        self.confirmed = True
        if self.expected_ssrc is None and ssrc is not None:
            self.expected_ssrc = ssrc
        if self._window_open:
            self._window_accepted += 1
            if self._window_accepted >= self.window_packets:
                self._window_open = False
