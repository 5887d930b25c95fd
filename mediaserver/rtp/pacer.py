"""Outbound frame pacer on an absolute deadline grid, with wakeup-deviation statistics.

Theory of operation
-------------------
Input: `on_wakeup(now_ns)` each time the caller's timer fires. Output: how many frames to send
now. Deadline k is `start_ns + k * frame_ns` (k = 0, 1, ...), computed by multiplication and never
by adding up sleeps, so timer lateness does not accumulate into drift: a late wakeup is followed
by an on-time one. The caller sleeps until `next_deadline_ns` (`loop.call_at`), then calls
`on_wakeup`.

Catch-up policy (chosen): a wakeup before `next_deadline_ns` returns 0 and records nothing.
Otherwise every deadline that has passed is due, `due = (now - next_deadline) // frame_ns + 1`.
If `due <= max_catchup_frames` all are returned: the caller sends them back to back and the wire
catches up (the peer's jitter buffer absorbs a short burst). If more are due, the oldest
`due - max_catchup_frames` deadlines are skipped: `on_wakeup` returns `max_catchup_frames`,
`last_skipped` holds how many were skipped on this wakeup and `stats.skipped_frames` the total.
A burst after a long stall would only overflow the peer's jitter buffer and add latency; so the
caller should instead call `RtpSession.advance(last_skipped * frame_samples)` so the peer sees the
stall as a timestamp gap (concealment), and leave its audio queue untouched for the skipped
frames (nothing the bot says is lost, it is only delayed). Either way `next_deadline_ns` stays on
the original grid and is in the future after each non-early wakeup.

Statistics (`stats`): each non-early wakeup is a tick and records its deviation from the first
due deadline, in ns, in a ring of the last `history` ticks; every frame returned whose own
deadline is more than `late_threshold_ns` (default 2 ms) before `now` counts in `late_frames`
(the catch-up frames of a late wakeup are late by construction). `percentile(p)` reads the ring,
in milliseconds. Several pacers may share one `PacerStats` (the ticker's send phases do, so that
its statistics cover every phase and stay the same object for the ticker's life).

Idle grids: a pacer nobody woke for a while (a send phase with no call on it) would see every
deadline it slept through as due. `resume_at(now_ns)` moves it to its first deadline at or after
`now_ns`, on the same grid, without recording anything: the frames of an idle phase were never owed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NS_PER_MS = 1_000_000
DEFAULT_FRAME_NS = 20 * NS_PER_MS
DEFAULT_LATE_THRESHOLD_NS = 2 * NS_PER_MS
DEFAULT_HISTORY = 10_000


class PacerStats:
    def __init__(self, history: int = DEFAULT_HISTORY) -> None:
        if history <= 0:
            raise ValueError(f"history must be positive, got {history}")
        self._ring: npt.NDArray[np.int64] = np.zeros(history, dtype=np.int64)
        self._filled = 0
        self._index = 0
        self.ticks = 0  # wakeups that had at least one frame due
        self.early_wakeups = 0
        self.frames = 0  # frames returned to send
        self.late_frames = 0
        self.skipped_frames = 0
        self.max_deviation_ns = 0

    def record(self, deviation_ns: int) -> None:
        self._ring[self._index] = deviation_ns
        self._index = (self._index + 1) % self._ring.shape[0]
        self._filled = min(self._filled + 1, self._ring.shape[0])
        self.ticks += 1
        self.max_deviation_ns = max(self.max_deviation_ns, deviation_ns)

    def deviations_ns(self) -> npt.NDArray[np.int64]:
        """The recorded deviations, oldest first (a copy)."""
        if self._filled < self._ring.shape[0]:
            return self._ring[: self._filled].copy()
        return np.concatenate((self._ring[self._index :], self._ring[: self._index]))

    def percentile(self, p: float) -> float:
        """The p-th percentile (0..100, linear interpolation) of recorded deviations, in ms; 0.0 if none."""
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"percentile {p} is outside 0..100")
        if self._filled == 0:
            return 0.0
        return float(np.percentile(self._ring[: self._filled], p)) / NS_PER_MS


class Pacer:
    def __init__(
        self,
        start_ns: int,
        frame_ns: int = DEFAULT_FRAME_NS,
        max_catchup_frames: int = 5,
        late_threshold_ns: int = DEFAULT_LATE_THRESHOLD_NS,
        history: int = DEFAULT_HISTORY,
        stats: PacerStats | None = None,
    ) -> None:
        if frame_ns <= 0:
            raise ValueError(f"frame_ns must be positive, got {frame_ns}")
        if max_catchup_frames < 1:
            raise ValueError(f"max_catchup_frames must be at least 1, got {max_catchup_frames}")
        self.start_ns = start_ns
        self.frame_ns = frame_ns
        self.max_catchup_frames = max_catchup_frames
        self.late_threshold_ns = late_threshold_ns
        self.stats = stats if stats is not None else PacerStats(history)
        self.last_skipped = 0
        self._index = 0  # grid index of the next deadline

    @property
    def next_deadline_ns(self) -> int:
        return self.start_ns + self._index * self.frame_ns

    @property
    def frame_index(self) -> int:
        """Grid index of the next deadline (frames sent plus frames skipped)."""
        return self._index

    def resume_at(self, now_ns: int) -> None:
        """Skip, unrecorded, every deadline before now_ns (the grid itself does not move)."""
        if now_ns > self.next_deadline_ns:
            self._index = -(-(now_ns - self.start_ns) // self.frame_ns)  # ceil: first deadline >= now

    def on_wakeup(self, now_ns: int) -> int:
        deadline = self.next_deadline_ns
        self.last_skipped = 0
        if now_ns < deadline:
            self.stats.early_wakeups += 1
            return 0
        lateness = now_ns - deadline
        due = lateness // self.frame_ns + 1
        self.stats.record(lateness)
        self._index += due
        skipped = max(0, due - self.max_catchup_frames)
        send = due - skipped
        self.last_skipped = skipped
        self.stats.skipped_frames += skipped
        self.stats.frames += send
        # The frames sent are the newest `send` deadlines; frame i of them is late by
        # (lateness - (skipped + i) * frame_ns). Count those beyond the threshold in O(1).
        newest_lateness = lateness - (due - 1) * self.frame_ns
        if newest_lateness > self.late_threshold_ns:
            late = send
        else:
            # Lateness grows by frame_ns per older frame: count i in [0, send) with
            # newest_lateness + i * frame_ns > threshold.
            need = (self.late_threshold_ns - newest_lateness) // self.frame_ns + 1
            late = max(0, send - need)
        self.stats.late_frames += late
        return send
