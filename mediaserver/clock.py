"""Clocks. The only module that reads the system clock (docs/design.md §3: time is passed in).

All times are integer nanoseconds on a monotonic scale. `MonotonicClock` serves production;
`ManualClock` lets tests move time by hand so a long call runs in milliseconds.
"""

from __future__ import annotations

import time
from typing import Protocol

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


class Clock(Protocol):
    def now_ns(self) -> int: ...


class MonotonicClock:
    def now_ns(self) -> int:
        return time.monotonic_ns()


class ManualClock:
    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance(self, ns: int) -> int:
        if ns < 0:
            raise ValueError(f"a clock cannot go backwards ({ns} ns)")
        self._now += ns
        return self._now

    def set(self, now_ns: int) -> None:
        if now_ns < self._now:
            raise ValueError(f"a clock cannot go backwards ({self._now} -> {now_ns})")
        self._now = now_ns


def wall_time() -> float:
    """Wall-clock seconds since the epoch, for NTP timestamps in RTCP and for log records."""
    return time.time()
