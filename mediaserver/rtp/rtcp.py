"""RTCP packets (RFC 3550 §6): SR, RR, SDES and BYE, parsed from and written to compound packets.

Theory of operation
-------------------
Input: one UDP payload holding a compound RTCP packet (several RTCP packets back to back, each
with its own 4-byte header and a length in 32-bit words minus one). Output: a list of typed,
immutable packets (`SenderReport`, `ReceiverReport`, `SourceDescription`, `Goodbye`). Packet
types we do not model (APP, the RFC 4585 feedback types, XR, ...) are skipped whole using their
length field, so a peer sending them does not break parsing of the reports we need.
`serialize_rtcp(packets)` writes a compound packet; `parse_rtcp(serialize_rtcp(ps)) == ps` for
every list of modelled packets.

Units: NTP timestamps are 64-bit fixed point (32.32 seconds since 1900-01-01); `middle_ntp`
gives the middle 32 bits (16.16 seconds) used as LSR. DLSR is in units of 1/65536 s; interarrival
jitter is in RTP timestamp units; `fraction_lost` is the lost fraction times 256 (0..255);
`packets_lost` is a 24-bit signed cumulative count (it can go negative with duplicates).

Malformed input raises `RtcpParseError` (a `ValueError`) naming the packet and the fault.
Out-of-range field values raise `ValueError` when the packet is built.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

RTCP_VERSION = 2
PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
SDES_CNAME = 1
MAX_COUNT = 31  # the 5-bit RC/SC field
NTP_UNIX_OFFSET_S = 2_208_988_800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01

_U32 = 0xFFFFFFFF
_HEADER = struct.Struct("!BBH")
_SR_INFO = struct.Struct("!IQIII")  # ssrc, NTP, RTP timestamp, packet count, octet count
_BLOCK = struct.Struct("!IB3sIIII")  # ssrc, fraction, 24-bit lost, highest seq, jitter, lsr, dlsr
_BLOCK_BYTES = _BLOCK.size


class RtcpParseError(ValueError):
    """A datagram that is not a well-formed compound RTCP packet (a remote error: log and drop)."""


def ntp_from_unix(seconds: float) -> int:
    """Unix time in seconds -> 64-bit NTP timestamp (wraps at the 2036 era boundary, as on the wire)."""
    whole = int(seconds // 1)
    fraction = int((seconds - whole) * (1 << 32))
    return (((whole + NTP_UNIX_OFFSET_S) & _U32) << 32) | (fraction & _U32)


def middle_ntp(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: the LSR field of a report block (RFC 3550 §6.4.1)."""
    return (ntp >> 16) & _U32


def _check_u32(name: str, value: int) -> None:
    if not 0 <= value <= _U32:
        raise ValueError(f"RTCP {name} {value} is outside 32 bits")


def _check_count(name: str, count: int) -> None:
    if count > MAX_COUNT:
        raise ValueError(f"RTCP {name} has {count} entries, at most {MAX_COUNT} fit in one packet")


@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # lost fraction * 256, 0..255
    packets_lost: int  # cumulative, 24-bit signed
    highest_sequence: int  # extended highest sequence number received (cycles << 16 | seq)
    jitter: int  # interarrival jitter, RTP timestamp units
    lsr: int  # middle 32 bits of the last SR's NTP timestamp, 0 if none
    dlsr: int  # delay since that SR, 1/65536 s

    def __post_init__(self) -> None:
        if not 0 <= self.fraction_lost <= 0xFF:
            raise ValueError(f"RTCP fraction_lost {self.fraction_lost} is outside 0..255")
        if not -0x800000 <= self.packets_lost <= 0x7FFFFF:
            raise ValueError(f"RTCP packets_lost {self.packets_lost} is outside 24-bit signed range")
        for name in ("ssrc", "highest_sequence", "jitter", "lsr", "dlsr"):
            _check_u32(name, getattr(self, name))

    def serialize(self) -> bytes:
        lost = (self.packets_lost & 0xFFFFFF).to_bytes(3, "big")
        return _BLOCK.pack(self.ssrc, self.fraction_lost, lost, self.highest_sequence, self.jitter, self.lsr, self.dlsr)

    @classmethod
    def parse(cls, data: bytes, pos: int) -> ReportBlock:
        ssrc, fraction, lost_raw, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        lost = int.from_bytes(lost_raw, "big", signed=True)
        return cls(ssrc, fraction, lost, highest, jitter, lsr, dlsr)


def _blocks(data: bytes, pos: int, count: int, end: int, kind: str) -> tuple[ReportBlock, ...]:
    if pos + count * _BLOCK_BYTES > end:
        raise RtcpParseError(f"RTCP {kind} declares {count} report blocks but only {end - pos} bytes remain")
    return tuple(ReportBlock.parse(data, pos + i * _BLOCK_BYTES) for i in range(count))


def _header(count: int, packet_type: int, body_bytes: int) -> bytes:
    # length is in 32-bit words minus one, counting the header word (RFC 3550 §6.4.1).
    return _HEADER.pack((RTCP_VERSION << 6) | count, packet_type, (body_bytes + 4) // 4 - 1)


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.ntp_timestamp < 1 << 64:
            raise ValueError(f"RTCP ntp_timestamp {self.ntp_timestamp} is outside 64 bits")
        for name in ("ssrc", "rtp_timestamp", "packet_count", "octet_count"):
            _check_u32(name, getattr(self, name))
        _check_count("SR", len(self.reports))

    def serialize(self) -> bytes:
        body = _SR_INFO.pack(
            self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count, self.octet_count
        ) + b"".join(b.serialize() for b in self.reports)
        return _header(len(self.reports), PT_SR, len(body)) + body


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def __post_init__(self) -> None:
        _check_u32("ssrc", self.ssrc)
        _check_count("RR", len(self.reports))

    def serialize(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(b.serialize() for b in self.reports)
        return _header(len(self.reports), PT_RR, len(body)) + body


@dataclass(frozen=True, slots=True)
class SdesChunk:
    ssrc: int
    items: tuple[tuple[int, bytes], ...]  # (item type 1..255, value up to 255 bytes); CNAME = 1

    def __post_init__(self) -> None:
        _check_u32("ssrc", self.ssrc)
        for kind, value in self.items:
            if not 1 <= kind <= 0xFF:
                raise ValueError(f"RTCP SDES item type {kind} is outside 1..255 (0 ends the list)")
            if len(value) > 0xFF:
                raise ValueError(f"RTCP SDES item of {len(value)} bytes exceeds 255")

    def serialize(self) -> bytes:
        out = bytearray(struct.pack("!I", self.ssrc))
        for kind, value in self.items:
            out += bytes((kind, len(value))) + value
        # The item list ends with at least one zero octet, then pads to a word boundary.
        out += b"\x00" * (4 - len(out) % 4)
        return bytes(out)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    chunks: tuple[SdesChunk, ...]

    def __post_init__(self) -> None:
        _check_count("SDES", len(self.chunks))

    def serialize(self) -> bytes:
        body = b"".join(c.serialize() for c in self.chunks)
        return _header(len(self.chunks), PT_SDES, len(body)) + body


@dataclass(frozen=True, slots=True)
class Goodbye:
    ssrcs: tuple[int, ...]
    reason: str | None = None

    def __post_init__(self) -> None:
        for ssrc in self.ssrcs:
            _check_u32("ssrc", ssrc)
        _check_count("BYE", len(self.ssrcs))
        if self.reason is not None and len(self.reason.encode()) > 0xFF:
            raise ValueError(f"RTCP BYE reason of {len(self.reason.encode())} UTF-8 bytes exceeds 255")

    def serialize(self) -> bytes:
        body = b"".join(struct.pack("!I", s) for s in self.ssrcs)
        if self.reason is not None:
            text = self.reason.encode()
            reason = bytes((len(text),)) + text
            body += reason + b"\x00" * (-len(reason) % 4)
        return _header(len(self.ssrcs), PT_BYE, len(body)) + body


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye


def serialize_rtcp(packets: Iterable[RtcpPacket]) -> bytes:
    """A compound RTCP packet. RFC 3550 §6.1 wants SR/RR first and CNAME present; callers order."""
    return b"".join(p.serialize() for p in packets)


def _parse_sdes(data: bytes, pos: int, count: int, end: int) -> SourceDescription:
    chunks: list[SdesChunk] = []
    start = pos
    for index in range(count):
        if pos + 4 > end:
            raise RtcpParseError(f"RTCP SDES chunk {index} is truncated before its SSRC")
        (ssrc,) = struct.unpack_from("!I", data, pos)
        pos += 4
        items: list[tuple[int, bytes]] = []
        while True:
            if pos >= end:
                raise RtcpParseError(f"RTCP SDES chunk {index} has no terminating null item")
            kind = data[pos]
            if kind == 0:
                # Skip the terminator and the padding up to the next word boundary.
                pos += 1
                pos += -(pos - start) % 4
                break
            if pos + 2 > end or pos + 2 + data[pos + 1] > end:
                raise RtcpParseError(f"RTCP SDES item type {kind} in chunk {index} overruns the packet")
            length = data[pos + 1]
            items.append((kind, bytes(data[pos + 2 : pos + 2 + length])))
            pos += 2 + length
        chunks.append(SdesChunk(ssrc, tuple(items)))
    return SourceDescription(tuple(chunks))


def _parse_bye(data: bytes, pos: int, count: int, end: int) -> Goodbye:
    if pos + 4 * count > end:
        raise RtcpParseError(f"RTCP BYE declares {count} sources but only {end - pos} bytes remain")
    ssrcs = struct.unpack_from(f"!{count}I", data, pos)
    pos += 4 * count
    reason: str | None = None
    if pos < end:
        length = data[pos]
        if pos + 1 + length > end:
            raise RtcpParseError(f"RTCP BYE reason of {length} bytes overruns the packet")
        # A peer's reason is free text; undecodable bytes must not fail the whole packet. Each
        # replacement character takes 3 bytes, so trim until it fits the 255-byte field again.
        reason = data[pos + 1 : pos + 1 + length].decode("utf-8", errors="replace")
        while len(reason.encode()) > 0xFF:
            reason = reason[:-1]
    return Goodbye(tuple(ssrcs), reason)


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP packet; unknown packet types are skipped by their length field."""
    if not data:
        raise RtcpParseError("RTCP packet is empty")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise RtcpParseError(f"RTCP header truncated: {len(data) - pos} bytes left at offset {pos}")
        first, packet_type, words = _HEADER.unpack_from(data, pos)
        if first >> 6 != RTCP_VERSION:
            raise RtcpParseError(f"RTCP version is {first >> 6} at offset {pos}, expected {RTCP_VERSION}")
        count = first & 0x1F
        end = pos + 4 * (words + 1)
        if end > len(data):
            raise RtcpParseError(
                f"RTCP packet type {packet_type} at offset {pos} claims {4 * (words + 1)} bytes,"
                f" only {len(data) - pos} remain"
            )
        if first & 0x20:
            pad = data[end - 1]
            if pad == 0 or pad > end - pos - 4:
                raise RtcpParseError(f"RTCP padding count {pad} is invalid for a {end - pos}-byte packet")
            body_end = end - pad
        else:
            body_end = end
        body = pos + 4
        if packet_type == PT_SR:
            if body + _SR_INFO.size > body_end:
                raise RtcpParseError(f"RTCP SR is {body_end - pos} bytes, too short for sender info")
            ssrc, ntp, rtp_ts, pkt_count, octets = _SR_INFO.unpack_from(data, body)
            blocks = _blocks(data, body + _SR_INFO.size, count, body_end, "SR")
            packets.append(SenderReport(ssrc, ntp, rtp_ts, pkt_count, octets, blocks))
        elif packet_type == PT_RR:
            if body + 4 > body_end:
                raise RtcpParseError(f"RTCP RR is {body_end - pos} bytes, too short for its SSRC")
            (ssrc,) = struct.unpack_from("!I", data, body)
            packets.append(ReceiverReport(ssrc, _blocks(data, body + 4, count, body_end, "RR")))
        elif packet_type == PT_SDES:
            packets.append(_parse_sdes(data, body, count, body_end))
        elif packet_type == PT_BYE:
            packets.append(_parse_bye(data, body, count, body_end))
        pos = end
    return packets
