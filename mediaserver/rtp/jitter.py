"""Receive-side jitter buffer: packets in any order in, exactly one playout slot per tick out.

Theory of operation
-------------------
Inputs: `push(pkt, arrival_ns)` for every RTP packet of the inbound stream, and `pop()` once per
playout tick (one frame, normally 20 ms). Output of `pop()`: `None` while priming, then exactly
one slot per call in timestamp order: the `RtpPacket` for that slot or a `Gap(timestamp,
samples)` when it is missing, which the caller fills with concealment or comfort noise (a
stall, below, is a `Gap` at the timestamp of the slot that the next pop plays).

Slots. A slot is `frame_samples` RTP clock units wide. Slot numbers are counted from the first
packet of the current stream (the anchor): `slot = (ext_ts - anchor) // frame_samples`, where
`ext_ts` is the timestamp unwrapped to an unbounded int (and likewise `ext_seq` for the 16-bit
sequence), so wraparound never reorders anything. Because slots follow timestamps and not
sequence numbers, a DTX talkspurt (timestamp jump, consecutive sequence numbers, marker set)
plays as the right number of gaps followed by audio. `frame_samples` must equal the sender's
packet duration (its ptime in RTP units).

Priming: before the first slot is played, `pop()` returns None until the buffered packets span
at least `depth_frames` slots (span, not count, so a packet lost while priming does not add a
frame of latency for the rest of the call), or packets have waited through `depth_frames - 1`
pops (so a stream shorter than the depth, such as a one-packet talkspurt, still plays);
playout then starts at the earliest buffered slot. Either way playout of slot s starts no
earlier than tick s + depth_frames - 1 of the sender's timeline, so a packet delayed by up to
`depth_frames - 1` ticks is never late.

Per packet, in this order:
- new SSRC: resync (start priming again on the new stream), counted in `resyncs`.
- far away (more than `max_frames` slots from the playout cursor, or from the earliest
  buffered slot while priming): a peer that restarted its clock, resumed after hold, or a stray.
  If its sequence number directly follows the highest one seen, the stream really jumped:
  resync at once. Otherwise it is held back; if the next packet continues it (sequence + 1),
  both start the new stream, else it is dropped as a stray (`strays`).
- a sequence number already seen, or a slot already filled: dropped (`duplicates`).
- a slot already played: dropped (`late`). With room to grow (`max_depth_frames` above the
  current depth) the depth rises by one frame (`raised`) and the next pop returns a `Gap` for
  the slot still to come without moving the cursor (a stall): from then on playout runs one
  frame later, so a network whose jitter exceeded the depth costs one concealed frame per
  frame of depth it needs, not one per late packet. The depth never falls again (a resync keeps
  it), so a stream's latency is that of its worst jitter so far, at most `max_depth_frames`.
  Current-depth late packets in a row mean the cursor has run ahead of the sender (its clock is
  slower than ours, or it paused without advancing timestamps): resync on that packet rather
  than drop the rest of the call.
- otherwise stored; if it arrived after a higher sequence number it counts as `reordered`.
  If the buffer then spans more than `max_frames` slots (a sender whose clock runs faster than
  ours), the oldest slots are dropped and the cursor moves past them (`overflow`), which bounds
  latency at `max_frames`.

After a resync `pop()` returns None again until the new stream is primed. `arrival_ns` is kept
as `last_arrival_ns` only; playout timing belongs to the caller's tick.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from mediaserver.rtp.packet import RtpPacket

_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32


@dataclass(frozen=True, slots=True)
class Gap:
    """A slot with no packet: `samples` RTP units starting at RTP `timestamp` (32-bit, wrapped)."""

    timestamp: int
    samples: int


@dataclass(slots=True)
class JitterStats:
    received: int = 0  # packets pushed
    played: int = 0  # packets returned by pop()
    lost: int = 0  # gaps returned by pop()
    duplicates: int = 0
    late: int = 0  # arrived after their slot was played
    reordered: int = 0  # arrived after a higher sequence number, still in time
    resyncs: int = 0
    raised: int = 0  # times a late packet raised the depth by one frame
    overflow: int = 0  # stored packets dropped because the buffer exceeded max_frames
    strays: int = 0  # far-away packets that no following packet confirmed


def _unwrap(value: int, reference: int, modulus: int) -> int:
    """The unbounded value congruent to `value` nearest to `reference` (half-range rule)."""
    half = modulus >> 1
    return reference + ((value - reference + half) % modulus) - half


class JitterBuffer:
    def __init__(
        self,
        clock_rate: int,
        frame_samples: int,
        depth_frames: int = 3,
        max_frames: int = 50,
        *,
        max_depth_frames: int | None = None,
    ) -> None:
        """`depth_frames` is the starting depth; late packets raise it up to `max_depth_frames`
        (default: no higher)."""
        if clock_rate <= 0 or frame_samples <= 0:
            raise ValueError(f"clock_rate and frame_samples must be positive: {clock_rate}, {frame_samples}")
        max_depth = depth_frames if max_depth_frames is None else max_depth_frames
        if not 1 <= depth_frames <= max_depth <= max_frames:
            raise ValueError(
                "need 1 <= depth_frames <= max_depth_frames <= max_frames, "
                f"got {depth_frames}, {max_depth}, {max_frames}"
            )
        self.clock_rate = clock_rate
        self.frame_samples = frame_samples
        self.depth_frames = depth_frames  # now; rises with late packets up to max_depth_frames
        self.max_depth_frames = max_depth
        self.max_frames = max_frames
        self._stalls = 0  # pops owed a Gap without moving the cursor (depth raised since)
        self.stats = JitterStats()
        self.last_arrival_ns: int | None = None
        self._ssrc: int | None = None
        self._anchor_ts = 0  # extended timestamp of slot 0
        self._ts_ref = 0  # highest extended timestamp stored: the unwrap reference
        self._seq_ref = 0  # highest extended sequence number stored
        self._slots: dict[int, RtpPacket] = {}
        self._newest_slot = 0
        self._next_slot: int | None = None  # None while priming
        self._priming_pops = 0  # pops answered None while holding packets
        self._pending: RtpPacket | None = None  # a far packet waiting for confirmation
        self._late_streak = 0
        # Sequence numbers recently stored, to tell a duplicate of a played packet from a late one.
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self._seen_cap = 4 * max_frames

    @property
    def priming(self) -> bool:
        return self._next_slot is None

    @property
    def buffered(self) -> int:
        """Packets held and not yet played."""
        return len(self._slots)

    def push(self, pkt: RtpPacket, arrival_ns: int) -> None:
        self.stats.received += 1
        self.last_arrival_ns = arrival_ns
        if self._ssrc is None:
            self._start(pkt)
            return
        if pkt.ssrc != self._ssrc:
            self._resync(pkt)
            return
        ext_seq = _unwrap(pkt.sequence, self._seq_ref, _SEQ_MOD)
        ext_ts = _unwrap(pkt.timestamp, self._ts_ref, _TS_MOD)
        slot = (ext_ts - self._anchor_ts) // self.frame_samples
        reference = self._next_slot if self._next_slot is not None else min(self._slots, default=slot)
        if abs(slot - reference) > self.max_frames:
            self._far(pkt, ext_seq)
            return
        if self._pending is not None:
            # The held-back far packet was not followed up: it was a stray.
            self._pending = None
            self.stats.strays += 1
        if ext_seq in self._seen:
            self.stats.duplicates += 1
            return
        if self._next_slot is not None and slot < self._next_slot:
            self.stats.late += 1
            self._late_streak += 1
            if self.depth_frames < self.max_depth_frames:
                self.depth_frames += 1
                self.stats.raised += 1
                self._stalls += 1
            if self._late_streak >= self.depth_frames:
                self._resync(pkt)
            return
        if slot in self._slots:
            self.stats.duplicates += 1
            return
        self._store(pkt, slot, ext_seq, ext_ts)

    def pop(self) -> RtpPacket | Gap | None:
        if self._next_slot is None:
            if not self._slots:
                return None
            first = min(self._slots)
            if self._newest_slot - first + 1 < self.depth_frames and self._priming_pops < self.depth_frames - 1:
                self._priming_pops += 1
                return None
            self._next_slot = first
        slot = self._next_slot
        if self._stalls:  # the depth was raised: this pop fills the extra frame, the cursor waits
            self._stalls -= 1
            return self._gap(slot)
        self._next_slot = slot + 1
        pkt = self._slots.pop(slot, None)
        if pkt is not None:
            self.stats.played += 1
            return pkt
        return self._gap(slot)

    # -- internals ---------------------------------------------------------------------------

    def _gap(self, slot: int) -> Gap:
        self.stats.lost += 1
        return Gap((self._anchor_ts + slot * self.frame_samples) % _TS_MOD, self.frame_samples)

    def _store(self, pkt: RtpPacket, slot: int, ext_seq: int, ext_ts: int) -> None:
        self._late_streak = 0
        if ext_seq < self._seq_ref:
            self.stats.reordered += 1
        self._seq_ref = max(self._seq_ref, ext_seq)
        self._ts_ref = max(self._ts_ref, ext_ts)
        self._slots[slot] = pkt
        self._newest_slot = max(self._newest_slot, slot)
        self._remember(ext_seq)
        self._trim()

    def _trim(self) -> None:
        """Keep the buffered span (from the cursor, or the earliest slot) within max_frames."""
        floor = self._newest_slot - self.max_frames + 1
        if self._next_slot is not None:
            if self._next_slot >= floor:
                return
            for old in [s for s in self._slots if s < floor]:
                del self._slots[old]
                self.stats.overflow += 1
            self._next_slot = floor
        else:
            for old in [s for s in self._slots if s < floor]:
                del self._slots[old]
                self.stats.overflow += 1

    def _remember(self, ext_seq: int) -> None:
        self._seen.add(ext_seq)
        self._seen_order.append(ext_seq)
        if len(self._seen_order) > self._seen_cap:
            self._seen.discard(self._seen_order.popleft())

    def _far(self, pkt: RtpPacket, ext_seq: int) -> None:
        if ext_seq == self._seq_ref + 1:
            self._resync(pkt)
            return
        pending = self._pending
        if pending is not None and pkt.sequence == (pending.sequence + 1) % _SEQ_MOD:
            # Two packets agree on the new timeline: the stream restarted. Keep both.
            self._resync(pending)
            self._push_confirmed(pkt)
            return
        if pending is not None:
            self.stats.strays += 1
        self._pending = pkt

    def _push_confirmed(self, pkt: RtpPacket) -> None:
        """Store a packet of the freshly resynced stream (already counted as received)."""
        ext_seq = _unwrap(pkt.sequence, self._seq_ref, _SEQ_MOD)
        ext_ts = _unwrap(pkt.timestamp, self._ts_ref, _TS_MOD)
        slot = (ext_ts - self._anchor_ts) // self.frame_samples
        if slot in self._slots or ext_seq in self._seen:
            self.stats.duplicates += 1
            return
        self._store(pkt, slot, ext_seq, ext_ts)

    def _resync(self, pkt: RtpPacket) -> None:
        self.stats.resyncs += 1
        self._start(pkt)

    def _start(self, pkt: RtpPacket) -> None:
        self._ssrc = pkt.ssrc
        self._anchor_ts = pkt.timestamp
        self._ts_ref = pkt.timestamp
        self._seq_ref = pkt.sequence
        self._slots = {0: pkt}
        self._newest_slot = 0
        self._next_slot = None
        self._stalls = 0  # priming again sets the (raised) depth afresh
        self._priming_pops = 0
        self._pending = None
        self._late_streak = 0
        self._seen.clear()
        self._seen_order.clear()
        self._remember(pkt.sequence)
