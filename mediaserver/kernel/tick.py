"""The kernel's 20 ms heartbeat: one timer for every call in the process.

Theory of operation: a single task sleeps until the next absolute deadline of a `Pacer`
(start + k * 20 ms, so sleeps never accumulate drift), then calls `on_tick` on every
registered call once per frame due. One timer for all calls costs one wakeup per 20 ms,
however many calls there are, and puts every call's outbound frame on the same grid. When
the loop was late the pacer says how many frames are due and each call sends them back to
back, so the wire catches up; the pacer's stats record how late each wakeup was.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from mediaserver.clock import NS_PER_MS, Clock, wall_time
from mediaserver.rtp.pacer import Pacer

log = logging.getLogger(__name__)

FRAME_NS = 20 * NS_PER_MS


class TickTarget(Protocol):
    def on_tick(self, now_ns: int, unix_time: float) -> None: ...

    def on_frames_skipped(self, frames: int) -> None: ...


class MediaTicker:
    def __init__(self, clock: Clock, frame_ns: int = FRAME_NS) -> None:
        self._clock = clock
        self._frame_ns = frame_ns
        self._targets: dict[int, TickTarget] = {}
        self.pacer = Pacer(clock.now_ns() + frame_ns, frame_ns)
        self.tick_errors = 0
        # How long each wakeup took to run every call: the last call's packet leaves this much
        # after the first one's, so p99 of this plus the wakeup deviation bounds the send error.
        self.work_ns: deque[int] = deque(maxlen=10_000)

    def add(self, target: TickTarget) -> None:
        self._targets[id(target)] = target

    def remove(self, target: TickTarget) -> None:
        self._targets.pop(id(target), None)

    @property
    def size(self) -> int:
        return len(self._targets)

    def run_due(self, now_ns: int) -> int:
        """Run every frame that is due at now_ns; returns how many frames ran."""
        due = self.pacer.on_wakeup(now_ns)
        if not due:
            return 0
        unix_time = wall_time()
        if self.pacer.last_skipped:
            # The loop stalled past the catch-up limit: the peer sees a timestamp gap, not a burst.
            for target in list(self._targets.values()):
                target.on_frames_skipped(self.pacer.last_skipped)
        for _ in range(due):
            for target in list(self._targets.values()):
                try:
                    target.on_tick(now_ns, unix_time)
                except Exception:
                    # One call's bug must not stop the heartbeat of every other call.
                    self.tick_errors += 1
                    log.exception("tick failed", extra={"target": repr(target)})
        return due

    async def run(self) -> None:
        self.pacer = Pacer(self._clock.now_ns() + self._frame_ns, self._frame_ns)
        while True:
            delay_ns = self.pacer.next_deadline_ns - self._clock.now_ns()
            if delay_ns > 0:
                await asyncio.sleep(delay_ns / 1e9)
            woke = self._clock.now_ns()
            if self.run_due(woke):
                self.work_ns.append(self._clock.now_ns() - woke)
