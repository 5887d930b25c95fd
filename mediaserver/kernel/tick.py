"""The kernel's 20 ms heartbeat: one timer for every call in the process, with spread sends.

Theory of operation: the 20 ms frame period is cut into `phases` send phases (10 by default,
2 ms apart). Each call is given one phase when it is added, the least loaded one (the lowest
index on a tie), and keeps it for its life. Phase i has its own `Pacer` on the absolute grid
`start + i * frame_ns / phases + k * frame_ns`, so a call's frames are still sent on deadlines
exactly one frame apart and no sleep can drift them; what changes is that at 300 calls about 30
frames leave every 2 ms instead of 300 back to back at the top of the period. That bunching is
what made the last call of every tick late against its own grid, and what the capacity run's
2 ms p99 rule mostly measured (docs: issue 16).

A single task sleeps until the earliest deadline of the phases in use (phase 0 always is, so an
idle server still ticks once per period), then runs every phase that is due, earliest deadline
first: each of its calls gets `on_tick` once per frame due. A call's own order of work inside its
tick (inbound frame, VAD, barge-in decision, then its outbound frame) is untouched, so a barge-in
still stops audio in the same tick; only the instant of the tick within the period moves, and it
is the same instant every period. When the loop was late the phase's pacer says how many frames
are due and that phase's calls send them back to back; past the catch-up limit they are told how
many frames were skipped instead. A phase nobody used for a while resumes on its grid at its next
deadline (`Pacer.resume_at`), never with a burst.

Statistics: each phase keeps one `PacerStats` for the ticker's whole life (a new grid in `run`
keeps them), and `stats` (also `pacer.stats`, as app.py and /health read it) is one view over
them, bound once: `ticks` and the deviation ring are phase 0's, one per period as before phases
existed; frames, late, skipped and early counts are summed over every phase, and `percentile`
and `max_deviation_ns` pool every phase's wakeups, each against its own phase's deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

import numpy as np
import numpy.ma  # noqa: F401 - np.percentile imports it on first use (~12 ms): here, not on the loop mid-call
import numpy.typing as npt

from mediaserver.clock import NS_PER_MS, Clock, wall_time
from mediaserver.rtp.pacer import Pacer, PacerStats

log = logging.getLogger(__name__)

FRAME_NS = 20 * NS_PER_MS
# 2 ms apart: 500 wakeups a second at most, and each phase carries a tenth of the calls.
DEFAULT_SEND_PHASES = 10
PERCENTILE_WINDOW = 10_000  # wakeups the ticker's percentile reads, newest first, across phases
# uvloop (libuv) keeps timers in whole milliseconds and fires them up to 1 ms before the time
# asked for; sleeping again for the sub-millisecond rest rounds to 0 ms and spins the loop until
# the deadline (measured: 62 wakeups per deadline, each an epoll_wait and a GIL hand-over). A
# phase due within this much of a wakeup runs in it: frames leave at most 1 ms before their
# deadline, which the peer's jitter buffer never notices.
TIMER_RESOLUTION_NS = NS_PER_MS


class TickTarget(Protocol):
    def on_tick(self, now_ns: int, unix_time: float) -> None: ...

    def on_frames_skipped(self, frames: int) -> None: ...


class TickerStats:
    """The ticker's statistics over all its phases (see the module's docstring)."""

    def __init__(self, phases: list[PacerStats]) -> None:
        self._phases = phases

    @property
    def ticks(self) -> int:
        return self._phases[0].ticks

    def deviations_ns(self) -> npt.NDArray[np.int64]:
        return self._phases[0].deviations_ns()

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self._phases)

    @property
    def late_frames(self) -> int:
        return sum(s.late_frames for s in self._phases)

    @property
    def skipped_frames(self) -> int:
        return sum(s.skipped_frames for s in self._phases)

    @property
    def early_wakeups(self) -> int:
        return sum(s.early_wakeups for s in self._phases)

    @property
    def max_deviation_ns(self) -> int:
        return max(s.max_deviation_ns for s in self._phases)

    def percentile(self, p: float) -> float:
        """The p-th percentile of the phases' newest wakeup deviations (`PERCENTILE_WINDOW` in all,
        an equal share each), in ms; 0.0 if none. Bounded: /metrics reads it on the loop, and
        over every phase's whole history (100,000 wakeups) it took ~1.8 ms, a late tick a scrape."""
        share = max(1, PERCENTILE_WINDOW // len(self._phases))
        pooled = np.concatenate([s.deviations_ns()[-share:] for s in self._phases])
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"percentile {p} is outside 0..100")
        return float(np.percentile(pooled, p)) / NS_PER_MS if len(pooled) else 0.0


class _PacerView:
    """What `MediaTicker.pacer` was to its readers: something with the ticker's `stats`."""

    def __init__(self, stats: TickerStats) -> None:
        self.stats = stats


class _Phase:
    """One send phase: its offset in the period, its pacer and the calls it drives."""

    __slots__ = ("index", "offset_ns", "pacer", "targets")

    def __init__(self, index: int, offset_ns: int, pacer: Pacer) -> None:
        self.index = index
        self.offset_ns = offset_ns
        self.pacer = pacer
        self.targets: dict[int, TickTarget] = {}

    @property
    def active(self) -> bool:
        # Phase 0 runs even when empty: the ticker's heartbeat (and its statistics) never stops.
        return self.index == 0 or bool(self.targets)


class MediaTicker:
    def __init__(self, clock: Clock, frame_ns: int = FRAME_NS, phases: int = DEFAULT_SEND_PHASES) -> None:
        if phases < 1 or phases > frame_ns // NS_PER_MS:
            raise ValueError(f"phases must be 1..{frame_ns // NS_PER_MS} (at least 1 ms apart), got {phases}")
        self._clock = clock
        self._frame_ns = frame_ns
        self._phase_stats = [PacerStats() for _ in range(phases)]
        self.stats = TickerStats(self._phase_stats)
        self.pacer = _PacerView(self.stats)
        self._phase_of: dict[int, _Phase] = {}  # id(target) -> its phase, for its life
        self._phases: list[_Phase] = []
        self._build_grid(clock.now_ns() + frame_ns, phases)
        self.tick_errors = 0
        # The deadline of the frame being run now: what a call's send is late against.
        self.frame_deadline_ns = 0
        self._wake_at_ns: int | None = None  # the deadline `run` sleeps until, while it does
        # How long each wakeup took to run its phases' calls: the last call's packet leaves this
        # much after the first one's of the same wakeup.
        self.work_ns: deque[int] = deque(maxlen=10_000)

    def _build_grid(self, start_ns: int, phases: int) -> None:
        """Phase pacers on a grid starting at start_ns; targets keep their phase index."""
        old = self._phases
        offsets = [i * self._frame_ns // phases for i in range(phases)]
        self._phases = [
            _Phase(i, offset, Pacer(start_ns + offset, self._frame_ns, stats=self._phase_stats[i]))
            for i, offset in enumerate(offsets)
        ]
        for previous, phase in zip(old, self._phases, strict=False):  # none old on the first build
            phase.targets = previous.targets
            for key in phase.targets:
                self._phase_of[key] = phase

    # -- calls -------------------------------------------------------------------------------

    def add(self, target: TickTarget) -> None:
        key = id(target)
        if key in self._phase_of:
            return
        phase = min(self._phases, key=lambda p: (len(p.targets), p.index))
        if not phase.active:
            # Its pacer slept through deadlines nobody was owed: resume on its grid, after the
            # wakeup `run` is already waiting for (so that it is not passed over).
            now = self._clock.now_ns()
            phase.pacer.resume_at(max(now, self._wake_at_ns or now))
        phase.targets[key] = target
        self._phase_of[key] = phase

    def remove(self, target: TickTarget) -> None:
        phase = self._phase_of.pop(id(target), None)
        if phase is not None:
            phase.targets.pop(id(target), None)

    @property
    def size(self) -> int:
        return len(self._phase_of)

    def phase_of(self, target: TickTarget) -> int | None:
        """The send phase a call was given (stable while it is on the ticker), or None."""
        phase = self._phase_of.get(id(target))
        return phase.index if phase is not None else None

    @property
    def phases(self) -> int:
        return len(self._phases)

    def phase_offset_ns(self, index: int) -> int:
        return self._phases[index].offset_ns

    @property
    def next_deadline_ns(self) -> int:
        return min(p.pacer.next_deadline_ns for p in self._phases if p.active)

    # -- running -----------------------------------------------------------------------------

    def run_due(self, now_ns: int, early_ns: int = 0) -> int:
        """Run every phase frame that is due at now_ns, or within `early_ns` after it (run as if
        on time); returns how many phase frames ran."""
        horizon = now_ns + early_ns
        due_phases = [p for p in self._phases if p.active and p.pacer.next_deadline_ns <= horizon]
        if not due_phases:
            self._phase_stats[0].early_wakeups += 1
            return 0
        due_phases.sort(key=lambda p: p.pacer.next_deadline_ns)
        unix_time = wall_time()
        ran = 0
        for phase in due_phases:
            pacer = phase.pacer
            due = pacer.on_wakeup(max(now_ns, pacer.next_deadline_ns))
            targets = list(phase.targets.values())
            if pacer.last_skipped:
                # The loop stalled past the catch-up limit: the peer sees a timestamp gap, not a burst.
                for target in targets:
                    target.on_frames_skipped(pacer.last_skipped)
            first_deadline = pacer.next_deadline_ns - due * self._frame_ns
            for k in range(due):
                self.frame_deadline_ns = first_deadline + k * self._frame_ns
                for target in targets:
                    try:
                        target.on_tick(now_ns, unix_time)
                    except Exception:
                        # One call's bug must not stop the heartbeat of every other call.
                        self.tick_errors += 1
                        log.exception("tick failed", extra={"target": repr(target)})
            ran += due
        return ran

    async def run(self) -> None:
        # A fresh grid from the loop's start (the calls keep their phases).
        self._build_grid(self._clock.now_ns() + self._frame_ns, len(self._phases))
        try:
            while True:
                deadline = self.next_deadline_ns
                self._wake_at_ns = deadline
                delay_ns = deadline - self._clock.now_ns()
                # Behind schedule, still yield once: sockets, SIP and every other task run between
                # wakeups, or an overloaded ticker would starve them (and its own catch-up) for good.
                await asyncio.sleep(delay_ns / 1e9 if delay_ns > 0 else 0)
                woke = self._clock.now_ns()
                if self.run_due(woke, TIMER_RESOLUTION_NS):
                    self.work_ns.append(self._clock.now_ns() - woke)
        finally:
            self._wake_at_ns = None
