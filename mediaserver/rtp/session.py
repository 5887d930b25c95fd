"""One RTP session (one media stream each way): packetizing, reception statistics and RTCP.

Theory of operation
-------------------
Outbound: `packetize(payload, samples, marker)` stamps the next sequence number (16-bit, +1 per
packet) and RTP timestamp (32-bit, +`samples` per packet, in RTP clock units) on a payload and
counts packets and payload octets; `advance(samples)` moves the timestamp over a stretch that is
not sent (a gap, or frames the pacer skipped), so the receiver sees real time pass.

Inbound: `receive(pkt, arrival_ns)` keeps the RFC 3550 appendix A.1 sequence state for the
remote source (probation of MIN_SEQUENTIAL packets, 16-bit cycles, bad_seq restart detection),
the A.8 interarrival jitter (arrival converted to RTP units with `clock_rate`; kept as a float in
RTP units) and the A.3 per-interval expected/lost counts. The last remote SSRC seen wins: a new
SSRC starts fresh statistics.

RTCP: `rtcp_due(now_ns)` says when to report: FIRST_RTCP_DELAY_NS after the first time this
session is shown a time (any `now_ns`/`arrival_ns`), then every RTCP_INTERVAL_NS after each
report. A two-party call has no multicast crowd to desynchronize, so the RFC 3550 §6.3
randomization is left out; calls start at different times anyway. `build_report(now_ns,
unix_time)` returns a compound SR (if we sent packets since the previous report) or RR, with
one report block for the remote source once it has passed probation, plus SDES CNAME.
`receive_rtcp(data, now_ns)` parses a compound packet, remembers the remote's last SR (its
middle NTP and our arrival time, for LSR and DLSR in units of 1/65536 s), and stores the
remote's report block about us as `remote_report`; its round-trip time is computed from our own
send time of the SR it echoes (both on our monotonic clock), so no wall clock enters it.
`build_bye(reason)` returns an empty RR + SDES + BYE, the compound packet RFC 3550 §6.1 asks for.

The SR's RTP timestamp is the outbound timestamp cursor (the timestamp the next packet will
carry); a paced sender builds reports between ticks, so it is within one frame of the NTP time.
All counters in SR fields wrap at 32 bits as on the wire.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from mediaserver.rtp.packet import RtpPacket, pack_rtp
from mediaserver.rtp.rtcp import (
    SDES_CNAME,
    Goodbye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    middle_ntp,
    ntp_from_unix,
    parse_rtcp,
    serialize_rtcp,
)

NS_PER_S = 1_000_000_000
FIRST_RTCP_DELAY_NS = 1 * NS_PER_S
RTCP_INTERVAL_NS = 5 * NS_PER_S
# RFC 3550 appendix A.1 constants.
MIN_SEQUENTIAL = 2
MAX_DROPOUT = 3000
MAX_MISORDER = 100
RTP_SEQ_MOD = 1 << 16
_U32 = 0xFFFFFFFF
_SENT_SR_MEMORY = 8  # our recent SRs, to match a remote LSR for the round-trip time


def _signed32(value: int) -> int:
    value &= _U32
    return value - (1 << 32) if value >= 1 << 31 else value


@dataclass(slots=True)
class SourceState:
    """RFC 3550 A.1/A.3/A.8 receive state for one remote SSRC."""

    ssrc: int
    max_seq: int
    probation: int = MIN_SEQUENTIAL
    cycles: int = 0
    base_seq: int = 0
    bad_seq: int = RTP_SEQ_MOD + 1
    received: int = 0
    expected_prior: int = 0
    received_prior: int = 0
    transit: int | None = None
    jitter: float = 0.0  # RTP timestamp units

    def init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def update_seq(self, seq: int) -> bool:
        """A.1 `update_seq`: True if the packet counts as valid for the statistics."""
        udelta = (seq - self.max_seq) % RTP_SEQ_MOD
        if self.probation:
            # Only a run of MIN_SEQUENTIAL in-order packets makes a source valid.
            if seq == (self.max_seq + 1) % RTP_SEQ_MOD:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self.init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD  # wrapped
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq != self.bad_seq:
                # A big jump: wait for the next packet to confirm the sender restarted.
                self.bad_seq = (seq + 1) % RTP_SEQ_MOD
                return False
            self.init_seq(seq)
            self.transit = None  # a restarted sender may have a new timestamp base too
        # else: a duplicate or reordered packet, counted as received (A.1 does the same).
        self.received += 1
        return True

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        return self.expected - self.received

    def report_block(self, lsr: int, dlsr: int) -> ReportBlock:
        """A.3: cumulative loss plus the fraction lost since the previous block; starts a new interval."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min(0xFF, (lost_interval << 8) // expected_interval)
        lost = max(-0x800000, min(0x7FFFFF, self.lost))
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=lost,
            highest_sequence=self.extended_max & _U32,
            jitter=int(self.jitter) & _U32,
            lsr=lsr,
            dlsr=dlsr & _U32,
        )


@dataclass(frozen=True, slots=True)
class RemoteReport:
    """What the remote says about our outbound stream (its report block on our SSRC)."""

    reporter_ssrc: int
    fraction_lost: int  # lost fraction * 256 over the remote's last interval
    packets_lost: int  # cumulative
    highest_sequence: int
    jitter: int  # RTP timestamp units
    rtt_ns: int | None  # None unless the block echoes an SR we remember
    received_ns: int

    @property
    def loss_ratio(self) -> float:
        return self.fraction_lost / 256.0


class RtpSession:
    def __init__(
        self,
        ssrc: int,
        payload_type: int,
        clock_rate: int,
        cname: str,
        rng: random.Random | None = None,
        initial_sequence: int | None = None,
        initial_timestamp: int | None = None,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock_rate must be positive, got {clock_rate}")
        rng = rng if rng is not None else random.Random()
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.cname = cname
        # RFC 3550 §5.1: random initial values make known-plaintext attacks on SRTP harder.
        self.sequence = initial_sequence if initial_sequence is not None else rng.randrange(RTP_SEQ_MOD)
        self.timestamp = initial_timestamp if initial_timestamp is not None else rng.randrange(1 << 32)
        self.packets_sent = 0
        self.octets_sent = 0
        self.remote: SourceState | None = None
        self.remote_report: RemoteReport | None = None
        self.remote_left = False  # the remote sent BYE
        self._packets_at_last_report = 0
        self._next_rtcp_ns: int | None = None
        self._last_sr: tuple[int, int, int] | None = None  # (remote ssrc, middle NTP, arrival ns)
        self._sent_srs: deque[tuple[int, int]] = deque(maxlen=_SENT_SR_MEMORY)  # (middle NTP, ns)

    # -- outbound ----------------------------------------------------------------------------

    def packetize(self, payload: bytes, samples: int, marker: bool) -> RtpPacket:
        """The next packet as an object (tests, tools); the media path sends `packetize_bytes`."""
        return RtpPacket.parse(self.packetize_bytes(payload, samples, marker))

    def packetize_bytes(self, payload: bytes, samples: int, marker: bool) -> bytes:
        """The next packet's bytes: the sequence and timestamp advance, the sender counts grow."""
        data = pack_rtp(self.payload_type, self.sequence, self.timestamp, self.ssrc, payload, marker)
        self.sequence = (self.sequence + 1) % RTP_SEQ_MOD
        self.timestamp = (self.timestamp + samples) & _U32
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return data

    def advance(self, samples: int) -> None:
        self.timestamp = (self.timestamp + samples) & _U32

    # -- inbound -----------------------------------------------------------------------------

    def receive(self, pkt: RtpPacket, arrival_ns: int) -> None:
        self._anchor(arrival_ns)
        source = self.remote
        if source is None or source.ssrc != pkt.ssrc:
            # A.1: a new source starts on probation with max_seq just below its first packet.
            source = SourceState(pkt.ssrc, max_seq=(pkt.sequence - 1) % RTP_SEQ_MOD, base_seq=pkt.sequence)
            self.remote = source
        on_probation = source.probation > 0
        if not source.update_seq(pkt.sequence) and not on_probation:
            return  # a wild jump not yet confirmed: keep it out of the jitter estimate too
        # A.8: transit time in RTP units; only differences matter, so the offset is arbitrary.
        transit = arrival_ns * self.clock_rate // NS_PER_S - pkt.timestamp
        if source.transit is not None:
            d = abs(_signed32(transit - source.transit))
            source.jitter += (d - source.jitter) / 16.0
        source.transit = transit

    # -- RTCP --------------------------------------------------------------------------------

    def rtcp_due(self, now_ns: int) -> bool:
        return now_ns >= self._anchor(now_ns)

    @property
    def next_rtcp_ns(self) -> int | None:
        return self._next_rtcp_ns

    def build_report(self, now_ns: int, unix_time: float) -> bytes:
        self._anchor(now_ns)
        blocks: tuple[ReportBlock, ...] = ()
        source = self.remote
        if source is not None and source.probation == 0:
            lsr = dlsr = 0
            if self._last_sr is not None and self._last_sr[0] == source.ssrc:
                _, lsr, sr_arrival_ns = self._last_sr
                dlsr = (now_ns - sr_arrival_ns) * 65536 // NS_PER_S
            blocks = (source.report_block(lsr, dlsr),)
        report: RtcpPacket
        if self.packets_sent > self._packets_at_last_report:
            ntp = ntp_from_unix(unix_time)
            self._sent_srs.append((middle_ntp(ntp), now_ns))
            report = SenderReport(
                ssrc=self.ssrc,
                ntp_timestamp=ntp,
                rtp_timestamp=self.timestamp,
                packet_count=self.packets_sent & _U32,
                octet_count=self.octets_sent & _U32,
                reports=blocks,
            )
        else:
            report = ReceiverReport(ssrc=self.ssrc, reports=blocks)
        self._packets_at_last_report = self.packets_sent
        self._next_rtcp_ns = now_ns + RTCP_INTERVAL_NS
        return serialize_rtcp([report, self._sdes()])

    def receive_rtcp(self, data: bytes, now_ns: int) -> list[RtcpPacket]:
        """Parse a compound packet (raises RtcpParseError) and record what concerns this session."""
        self._anchor(now_ns)
        packets = parse_rtcp(data)
        for packet in packets:
            if isinstance(packet, SenderReport):
                self._last_sr = (packet.ssrc, middle_ntp(packet.ntp_timestamp), now_ns)
            if isinstance(packet, SenderReport | ReceiverReport):
                for block in packet.reports:
                    if block.ssrc == self.ssrc:
                        self.remote_report = self._remote_report(packet.ssrc, block, now_ns)
            elif isinstance(packet, Goodbye) and self.remote is not None and self.remote.ssrc in packet.ssrcs:
                self.remote_left = True
        return packets

    def build_bye(self, reason: str | None = None) -> bytes:
        return serialize_rtcp([ReceiverReport(ssrc=self.ssrc), self._sdes(), Goodbye((self.ssrc,), reason)])

    # -- internals ---------------------------------------------------------------------------

    def _anchor(self, now_ns: int) -> int:
        """Start the report schedule the first time a time is seen; return the next report time."""
        if self._next_rtcp_ns is None:
            self._next_rtcp_ns = now_ns + FIRST_RTCP_DELAY_NS
        return self._next_rtcp_ns

    def _sdes(self) -> SourceDescription:
        return SourceDescription((SdesChunk(self.ssrc, ((SDES_CNAME, self.cname.encode()),)),))

    def _remote_report(self, reporter: int, block: ReportBlock, now_ns: int) -> RemoteReport:
        rtt_ns: int | None = None
        if block.lsr:
            for lsr, sent_ns in self._sent_srs:
                if lsr == block.lsr:
                    # RFC 3550 §6.4.1: RTT = arrival - LSR - DLSR, with LSR's time on our own clock.
                    rtt_ns = max(0, now_ns - sent_ns - block.dlsr * NS_PER_S // 65536)
                    break
        return RemoteReport(
            reporter_ssrc=reporter,
            fraction_lost=block.fraction_lost,
            packets_lost=block.packets_lost,
            highest_sequence=block.highest_sequence,
            jitter=block.jitter,
            rtt_ns=rtt_ns,
            received_ns=now_ns,
        )
