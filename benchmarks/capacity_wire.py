"""What the wire says about one level of a capacity run: late frames, missing frames, jitter.

Theory of operation: every server packet a call received during the hold is (kernel arrival ns,
RTP timestamp) (benchmarks/loadgen.py, SO_TIMESTAMPNS). A packet's *due time* is placed by its
RTP timestamp: the call's timestamps are unwrapped, and packet k is due at
`T0 + (ts_k - ts_0) / clock_rate`, where T0 is chosen so that the call's earliest packet
(relative to its timestamp) is exactly on time; that is, due times are the call's best packet
carried along the RTP clock. A frame is **late** when it arrives more than `LATE_MS` (20 ms,
one frame) after its due time; this is the one definition of "late" at the wire in every
capacity result (the same as benchmarks/soak_probe.py). A frame is **missing** when its
timestamp lies between the call's first and last received ones and no packet carried it (the
server skipped it, or it was lost). Interarrival jitter is RFC 3550's (benchmarks/jitter.py),
per call; `jitter_ms_max` is the largest value the running estimate reached during the hold.
Per level the calls are pooled: late and missing frames are summed; jitter is given as the
nearest-rank p50/p99 over calls of each call's max.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.jitter import stream_jitter
from benchmarks.stats import nearest_rank

LATE_MS = 20.0
LATE_DEFINITION = (
    "a frame arriving more than 20 ms after its due time at the receiver (kernel receive timestamp); "
    "due time = the call's earliest packet (relative to its RTP timestamp) carried along the RTP clock: "
    "T0 + (ts - ts0) / 8000 s"
)
JITTER_DEFINITION = (
    "RFC 3550 §6.4.1 interarrival jitter per call (A.8, packets in arrival order, kernel receive "
    "timestamps); per call the largest value the running estimate reached in the hold; p50/p99 over calls"
)


@dataclass(frozen=True)
class CallWire:
    packets: int
    late_frames: int
    lateness_ms_max: float
    missing_frames: int
    jitter_ms_final: float
    jitter_ms_max: float


def analyse_call(arrivals: Sequence[tuple[int, int]], clock_rate: int = 8000, frame_units: int = 160) -> CallWire:
    """Late frames, missing frames and jitter of one call's packets, (arrival ns, RTP timestamp) in arrival order."""
    if not arrivals:
        return CallWire(0, 0, 0.0, 0, 0.0, 0.0)
    at = np.array([a for a, _ in arrivals], dtype=np.int64)
    stamps = np.unwrap(np.array([t for _, t in arrivals], dtype=np.float64), period=2.0**32)
    offset_ns = (stamps - stamps[0]) * 1e9 / clock_rate
    deviation_ns = (at - at[0]) - offset_ns
    lateness_ms = (deviation_ns - deviation_ns.min()) / 1e6
    span_frames = int(round((stamps.max() - stamps.min()) / frame_units)) + 1
    # Frame numbers relative to the first timestamp: a random initial timestamp half a frame
    # off the grid would land every frame on .5, which round-half-to-even folds in pairs.
    distinct = len(np.unique(np.round((stamps - stamps[0]) / frame_units)))
    jitter = stream_jitter(at.tolist(), stamps.tolist(), clock_rate)
    return CallWire(
        packets=len(arrivals),
        late_frames=int((lateness_ms > LATE_MS).sum()),
        lateness_ms_max=round(float(lateness_ms.max()), 3),
        missing_frames=max(0, span_frames - distinct),
        jitter_ms_final=round(jitter.jitter_ms, 3),
        jitter_ms_max=round(jitter.max_ms, 3),
    )


def summarise(calls: Sequence[CallWire]) -> dict[str, Any]:
    """One level's wire facts, pooled over its calls (calls with no packet count as `calls_silent`)."""
    heard = [c for c in calls if c.packets]
    jitters = [c.jitter_ms_max for c in heard]
    return {
        "calls_measured": len(heard),
        "calls_silent": len(calls) - len(heard),
        "packets_received": sum(c.packets for c in heard),
        "late_frames": sum(c.late_frames for c in heard),
        "lateness_ms_max": max((c.lateness_ms_max for c in heard), default=None),
        "missing_frames": sum(c.missing_frames for c in heard),
        "jitter_ms_p50": round(nearest_rank(jitters, 0.5), 3) if jitters else None,
        "jitter_ms_p99": round(nearest_rank(jitters, 0.99), 3) if jitters else None,
        "jitter_ms_max": round(max(jitters), 3) if jitters else None,
    }
