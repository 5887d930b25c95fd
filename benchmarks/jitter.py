"""RFC 3550 interarrival jitter (§6.4.1, computed as in Appendix A.8), for one RTP stream at a receiver.

Theory of operation: for packets i-1 and i, D = (R_i - R_{i-1}) - (S_i - S_{i-1}), where R is the
arrival time and S the RTP timestamp, both in RTP timestamp units; the estimate moves 1/16 of the
way towards |D| at each packet: J += (|D| - J) / 16. Packets are taken in arrival order (not
sequence order), as the RFC asks. A.8 keeps J scaled by 16 in integer arithmetic to avoid
rounding; this float version gives the same value up to float rounding. The first packet only
sets the reference transit time (J stays 0). `JitterEstimator.max_units` keeps the largest value
the estimate reached, since a report that samples J at one instant (an RTCP RR) can miss a burst.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class JitterEstimator:
    """The running interarrival jitter of one stream, in RTP timestamp units."""

    clock_rate: int
    jitter_units: float = 0.0
    max_units: float = 0.0
    packets: int = 0
    _transit: float | None = None

    def update(self, arrival_units: float, rtp_timestamp: float) -> float:
        """Fold in one packet (arrival time already in RTP timestamp units, timestamp unwrapped)."""
        transit = arrival_units - rtp_timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            self.jitter_units += (d - self.jitter_units) / 16.0
            self.max_units = max(self.max_units, self.jitter_units)
        self._transit = transit
        self.packets += 1
        return self.jitter_units

    @property
    def jitter_ms(self) -> float:
        return 1000.0 * self.jitter_units / self.clock_rate

    @property
    def max_ms(self) -> float:
        return 1000.0 * self.max_units / self.clock_rate


def stream_jitter(arrivals_ns: Iterable[int], rtp_timestamps: Iterable[int], clock_rate: int) -> JitterEstimator:
    """The estimator after every packet of a stream: (arrival ns, unwrapped RTP timestamp) in arrival order."""
    est = JitterEstimator(clock_rate)
    for arrival_ns, ts in zip(arrivals_ns, rtp_timestamps, strict=True):
        est.update(arrival_ns * clock_rate / 1e9, float(ts))
    return est
