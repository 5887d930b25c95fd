"""RFC 4733 telephone-event payloads: parse, serialize, receive once, and send.

Theory of operation
-------------------
A telephone-event payload is 4 bytes (RFC 4733 §2.3)::

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   |     event     |E|R| volume    |          duration             |

``event`` 0..15 are the DTMF keys ``0-9 * # A-D`` (``DIGITS[event]``); ``volume`` is the
tone power in -dBm0, 0..63; ``duration`` counts RTP clock units (8000 Hz for
``telephone-event/8000``) since the event began. The R bit is reserved: zero on send,
ignored on receive. Packets carrying several events at once (§2.5.1.5) are not supported:
``parse`` accepts exactly 4 bytes.

Every packet of one event carries the same RTP timestamp, the event's start; the sender
repeats updates with a growing duration and then sends the final packet (E bit set) three
times for robustness against loss (§2.5.1.4). So an event's identity is its RTP
timestamp, and ``DtmfReceiver`` reports each digit once, on the first packet that shows a
new timestamp (an end packet too, if the earlier ones were lost). It ignores the
repeated updates, the redundant end packets, and late packets of recent events, which
it remembers in a small window. An event too long for the 16-bit duration is split into
segments, each with a new timestamp at the previous one plus its duration (§2.5.1.3);
such a continuation is not a new key press. Events above 15 (fax tones, flash...) are
accepted by ``parse`` but reported by nobody here.

The receiver is sans-I/O: it sees parsed events and their RTP timestamps, nothing else.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

DIGITS = "0123456789*#ABCD"
"""``DIGITS[event]`` is the DTMF key of event code ``event`` (0..15)."""

END_REPEATS = 3
"""How many times the final (E bit) packet of an event is sent (RFC 4733 §2.5.1.4)."""

MAX_DURATION = 0xFFFF
_PAYLOAD = struct.Struct("!BBH")
_END_BIT = 0x80
_RESERVED_BIT = 0x40
_VOLUME_MASK = 0x3F
_SEGMENT_SLACK = 4000  # half a second at 8 kHz: how short of the maximum a segment may end
_RECENT_EVENTS = 16  # enough to cover any reordering window a jitter buffer lets through


class DtmfParseError(ValueError):
    """A telephone-event payload or field that RFC 4733 does not allow."""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One telephone-event payload. ``duration`` is in RTP clock units."""

    event: int
    end: bool
    volume: int
    duration: int

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise DtmfParseError(f"event code {self.event} outside 0..255")
        if not 0 <= self.volume <= _VOLUME_MASK:
            raise DtmfParseError(f"volume {self.volume} outside 0..63")
        if not 0 <= self.duration <= MAX_DURATION:
            raise DtmfParseError(f"duration {self.duration} outside 0..65535")

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) != _PAYLOAD.size:
            raise DtmfParseError(f"telephone-event payload of {len(payload)} bytes, expected 4")
        event, flags, duration = _PAYLOAD.unpack(payload)
        return cls(event=event, end=bool(flags & _END_BIT), volume=flags & _VOLUME_MASK, duration=duration)

    def serialize(self) -> bytes:
        flags = (_END_BIT if self.end else 0) | self.volume
        return _PAYLOAD.pack(self.event, flags, self.duration)

    @property
    def digit(self) -> str | None:
        """The DTMF key for events 0..15, else None."""
        return DIGITS[self.event] if self.event < len(DIGITS) else None


def digit_to_event(digit: str) -> int:
    """DTMF key (case-insensitive for A-D) -> event code 0..15."""
    index = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"not a DTMF digit: {digit!r} (expected one of {DIGITS})")
    return index


@dataclass(slots=True)
class _Progress:
    """What we know of the latest event: needed to recognise its next segment."""

    timestamp: int
    code: int
    ended: bool
    duration: int  # longest duration seen so far, RTP clock units


class DtmfReceiver:
    """Turns one stream's telephone-event packets into key presses, each exactly once."""

    def __init__(self) -> None:
        self._recent: deque[int] = deque(maxlen=_RECENT_EVENTS)  # timestamps already seen
        self._latest: _Progress | None = None

    def receive(self, event: TelephoneEvent, rtp_timestamp: int) -> str | None:
        """Feed one packet; return its digit if it begins a key press we have not reported."""
        latest = self._latest
        if rtp_timestamp in self._recent:
            if latest is not None and latest.timestamp == rtp_timestamp:
                latest.ended |= event.end
                latest.duration = max(latest.duration, event.duration)
            return None
        continuation = self._is_next_segment(event, rtp_timestamp)
        self._recent.append(rtp_timestamp)
        self._latest = _Progress(rtp_timestamp, event.event, event.end, event.duration)
        return None if continuation else event.digit

    def _is_next_segment(self, event: TelephoneEvent, rtp_timestamp: int) -> bool:
        # §2.5.1.3: a segment ends near the 16-bit maximum without the E bit, and the next
        # starts (same code) where it ended: start + its duration, mod 2**32. We may have lost
        # the segment's last update, so accept any start between what we saw and the maximum;
        # a separate key press cannot begin before the previous one's last reported duration.
        latest = self._latest
        if latest is None or latest.ended or latest.code != event.event:
            return False
        offset = (rtp_timestamp - latest.timestamp) & 0xFFFFFFFF
        return latest.duration >= MAX_DURATION - _SEGMENT_SLACK and latest.duration <= offset <= MAX_DURATION


def dtmf_payloads(digit: str, duration_samples: int, step_samples: int, volume: int = 10) -> list[TelephoneEvent]:
    """The packets a sender emits for one key press, all sent with the same RTP timestamp.

    Updates every ``step_samples`` (durations step, 2*step, ... while below the total), then
    the end packet carrying ``duration_samples`` repeated ``END_REPEATS`` times. The caller
    sets the RTP marker bit on the first packet only and sends the list one per ``step``.
    """
    code = digit_to_event(digit)
    if not 0 < duration_samples <= MAX_DURATION:
        raise ValueError(f"duration_samples {duration_samples} outside 1..65535 (no segmenting on send)")
    if step_samples <= 0:
        raise ValueError(f"step_samples must be positive, got {step_samples}")
    updates = [
        TelephoneEvent(event=code, end=False, volume=volume, duration=elapsed)
        for elapsed in range(step_samples, duration_samples, step_samples)
    ]
    final = TelephoneEvent(event=code, end=True, volume=volume, duration=duration_samples)
    return [*updates, *([final] * END_REPEATS)]
