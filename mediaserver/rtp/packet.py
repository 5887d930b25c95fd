"""RTP data packets (RFC 3550 §5.1) as an immutable value with `parse` and `serialize`.

Theory of operation
-------------------
Input: one UDP payload (`bytes`). Output: an `RtpPacket` whose fields are the header values as
plain ints (`sequence` 16-bit, `timestamp` and `ssrc` 32-bit, `payload_type` 7-bit), the CSRC
list, the optional header extension as `(profile, data)`, and the payload with any padding
removed. `serialize()` is the exact inverse for every packet that `parse` returns, except that
padding is never written back: padding carries no information, so the round trip is
`RtpPacket.parse(p.serialize()) == p`.

Malformed input raises `RtpParseError` (a `ValueError`) naming what is wrong and the sizes
involved; a peer's bad packet is a remote error that the transport logs and drops, never a
crash. Constructing an `RtpPacket` with out-of-range fields raises `ValueError` at once, so a
bad packet is caught where it is made rather than on the wire.

`is_rtcp(data)` is the RFC 5761 §4 demultiplexer for RTP and RTCP sharing one port: RTCP packet
types 192..223 occupy the second byte where RTP would hold marker + payload type, and RTP
payload types 64..95 are kept free for exactly this reason.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER_BYTES = 12
MAX_CSRCS = 15

_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


class RtpParseError(ValueError):
    """A datagram that is not a well-formed RTP packet (a remote error: log and drop)."""


def pack_rtp(payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, marker: bool) -> bytes:
    """The bytes of a packet with no CSRC and no extension, as `RtpPacket(...).serialize()` gives
    them, without building the object (the media path sends one per call every 20 ms). The
    caller keeps the fields in range (RtpSession does)."""
    return _HEADER.pack(RTP_VERSION << 6, (0x80 if marker else 0) | payload_type, sequence, timestamp, ssrc) + payload


_PLAIN_FIRST_BYTE = RTP_VERSION << 6
_set = object.__setattr__


def _trusted(
    cls: type[RtpPacket], payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, marker: bool
) -> RtpPacket:
    """An RtpPacket from fields already known to be in range (a parsed header), without __init__."""
    packet = object.__new__(cls)
    _set(packet, "payload_type", payload_type)
    _set(packet, "sequence", sequence)
    _set(packet, "timestamp", timestamp)
    _set(packet, "ssrc", ssrc)
    _set(packet, "payload", bytes(payload))
    _set(packet, "marker", marker)
    _set(packet, "csrcs", ())
    _set(packet, "extension", None)
    return packet


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: RTCP if the second byte (RTCP packet type) lies in 192..223."""
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    # (profile-defined 16-bit id, data); data length must be a multiple of 4 (RFC 3550 §5.3.1).
    extension: tuple[int, bytes] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 0x7F:
            raise ValueError(f"RTP payload type {self.payload_type} is outside 0..127")
        if not 0 <= self.sequence <= 0xFFFF:
            raise ValueError(f"RTP sequence {self.sequence} is outside 0..65535")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise ValueError(f"RTP timestamp {self.timestamp} is outside 32 bits")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise ValueError(f"RTP SSRC {self.ssrc} is outside 32 bits")
        if len(self.csrcs) > MAX_CSRCS:
            raise ValueError(f"RTP packet has {len(self.csrcs)} CSRCs, at most {MAX_CSRCS} fit")
        for csrc in self.csrcs:
            if not 0 <= csrc <= 0xFFFFFFFF:
                raise ValueError(f"RTP CSRC {csrc} is outside 32 bits")
        if self.extension is not None:
            profile, data = self.extension
            if not 0 <= profile <= 0xFFFF:
                raise ValueError(f"RTP extension profile {profile} is outside 16 bits")
            if len(data) % 4 or len(data) > 4 * 0xFFFF:
                raise ValueError(f"RTP extension data of {len(data)} bytes is not a whole number of words")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        size = len(data)
        if size < HEADER_BYTES:
            raise RtpParseError(f"RTP packet too short: {size} bytes, the fixed header needs {HEADER_BYTES}")
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data, 0)
        if first == _PLAIN_FIRST_BYTE:
            # Version 2, no padding, extension or CSRC: nearly every media packet. Fields read
            # from the header are in range by construction, so the checks of __init__ are skipped.
            return _trusted(cls, second & 0x7F, sequence, timestamp, ssrc, data[HEADER_BYTES:], second > 0x7F)
        version = first >> 6
        if version != RTP_VERSION:
            raise RtpParseError(f"RTP version is {version}, expected {RTP_VERSION}")
        has_padding = bool(first & 0x20)
        has_extension = bool(first & 0x10)
        csrc_count = first & 0x0F

        end = size
        if has_padding:
            pad = data[-1]
            if pad == 0:
                raise RtpParseError("RTP padding bit set but the padding count is 0")
            if pad > size - HEADER_BYTES:
                raise RtpParseError(f"RTP padding count {pad} exceeds the {size - HEADER_BYTES} bytes after the header")
            end = size - pad

        pos = HEADER_BYTES
        csrc_end = pos + 4 * csrc_count
        if csrc_end > end:
            raise RtpParseError(
                f"RTP packet has truncated CSRC list: {csrc_count} CSRCs need {csrc_end} bytes, got {end}"
            )
        csrcs = struct.unpack_from(f"!{csrc_count}I", data, pos)
        pos = csrc_end

        extension: tuple[int, bytes] | None = None
        if has_extension:
            if pos + 4 > end:
                raise RtpParseError(f"RTP packet has truncated extension header at byte {pos} of {end}")
            profile, words = _EXT_HEADER.unpack_from(data, pos)
            pos += 4
            if pos + 4 * words > end:
                raise RtpParseError(
                    f"RTP extension of {words} words overruns: needs {pos + 4 * words} bytes, got {end}"
                )
            extension = (profile, bytes(data[pos : pos + 4 * words]))
            pos += 4 * words

        return cls(
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(second & 0x80),
            csrcs=tuple(csrcs),
            extension=extension,
        )

    def serialize(self) -> bytes:
        first = (RTP_VERSION << 6) | len(self.csrcs)
        if self.extension is not None:
            first |= 0x10
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [_HEADER.pack(first, second, self.sequence, self.timestamp, self.ssrc)]
        if self.csrcs:
            parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
        if self.extension is not None:
            profile, data = self.extension
            parts.append(_EXT_HEADER.pack(profile, len(data) // 4))
            parts.append(data)
        parts.append(self.payload)
        return b"".join(parts)

    def __bytes__(self) -> bytes:
        return self.serialize()
