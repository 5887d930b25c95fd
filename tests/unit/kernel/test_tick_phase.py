"""The ticker's send phases, on a manual clock: calls are spread over the 20 ms period, each on
its own exact 20 ms grid, in a phase that stays theirs for life; stalls and idle phases."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from mediaserver.clock import ManualClock
from mediaserver.kernel.tick import FRAME_NS, PERCENTILE_WINDOW, MediaTicker

MS = 1_000_000


class FakeCall:
    def __init__(self, ticker: MediaTicker) -> None:
        self.ticker = ticker
        self.ticks: list[int] = []  # the `now` of each on_tick
        self.deadlines: list[int] = []  # the deadline each tick ran for
        self.skipped = 0

    def on_tick(self, now_ns: int, unix_time: float) -> None:
        self.ticks.append(now_ns)
        self.deadlines.append(self.ticker.frame_deadline_ns)

    def on_frames_skipped(self, frames: int) -> None:
        self.skipped += frames


def drive(ticker: MediaTicker, clock: ManualClock, until_ns: int) -> int:
    """What `run` does, with the clock jumping to each next deadline (an on-time loop)."""
    wakeups = 0
    while ticker.next_deadline_ns <= until_ns:
        clock.set(ticker.next_deadline_ns)
        ticker.run_due(clock.now_ns())
        wakeups += 1
    return wakeups


@pytest.mark.parametrize("calls", [100, 300])
def test_sends_are_spread_over_the_period_and_each_call_stays_on_its_20ms_grid(calls: int) -> None:
    clock = ManualClock()
    ticker = MediaTicker(clock)
    fakes = [FakeCall(ticker) for _ in range(calls)]
    for fake in fakes:
        ticker.add(fake)
    drive(ticker, clock, 1000 * MS)

    # Spread: per period, the sends fall on every phase, each with its share of the calls.
    offsets = Counter((t - FRAME_NS) % FRAME_NS for fake in fakes for t in fake.ticks[:1])
    assert sorted(offsets) == [i * 2 * MS for i in range(10)]
    assert max(offsets.values()) - min(offsets.values()) <= 1  # balanced: calls/10 per phase
    # No more than ceil(calls / phases) frames leave at any one instant (it was every call).
    per_instant = Counter(t for fake in fakes for t in fake.ticks)
    assert max(per_instant.values()) == -(-calls // 10)

    for fake in fakes:
        # Exactly one frame every 20 ms, on its own deadline, for the whole run.
        assert len(fake.ticks) >= 49
        assert {b - a for a, b in zip(fake.ticks, fake.ticks[1:], strict=False)} == {FRAME_NS}
        assert fake.ticks == fake.deadlines
        phase = ticker.phase_of(fake)
        assert phase is not None
        assert (fake.ticks[0] - FRAME_NS) == ticker.phase_offset_ns(phase)


def test_a_calls_phase_is_stable_for_its_life_while_others_come_and_go() -> None:
    clock = ManualClock()
    ticker = MediaTicker(clock)
    keeper = FakeCall(ticker)
    ticker.add(keeper)
    phase = ticker.phase_of(keeper)
    others = [FakeCall(ticker) for _ in range(25)]
    for other in others:
        ticker.add(other)
    drive(ticker, clock, 200 * MS)
    for other in others[::2]:
        ticker.remove(other)
    for _ in range(7):
        ticker.add(FakeCall(ticker))
    ticker.add(keeper)  # adding again changes nothing
    drive(ticker, clock, 600 * MS)
    assert ticker.phase_of(keeper) == phase
    assert {b - a for a, b in zip(keeper.ticks, keeper.ticks[1:], strict=False)} == {FRAME_NS}
    assert ticker.phase_of(others[0]) is None and ticker.size == 1 + 12 + 7


def test_new_calls_fill_the_least_loaded_phase() -> None:
    ticker = MediaTicker(ManualClock())
    fakes = [FakeCall(ticker) for _ in range(10)]
    for fake in fakes:
        ticker.add(fake)
    assert [ticker.phase_of(f) for f in fakes] == list(range(10))
    ticker.remove(fakes[3])
    newcomer = FakeCall(ticker)
    ticker.add(newcomer)
    assert ticker.phase_of(newcomer) == 3


def test_an_idle_phase_resumes_on_its_grid_without_a_burst() -> None:
    clock = ManualClock()
    ticker = MediaTicker(clock)
    first, second = FakeCall(ticker), FakeCall(ticker)
    ticker.add(first)
    drive(ticker, clock, 500 * MS)  # phase 1 slept through 25 deadlines nobody was owed
    ticker.add(second)
    drive(ticker, clock, 600 * MS)
    assert ticker.phase_of(second) == 1
    assert second.skipped == 0 and len(second.ticks) == 5  # 502, 522, 542, 562, 582 ms
    assert second.ticks[0] == 502 * MS and second.ticks == second.deadlines
    assert ticker.stats.late_frames == 0 and ticker.stats.skipped_frames == 0


def test_a_stall_catches_up_per_phase_and_then_skips() -> None:
    clock = ManualClock()
    ticker = MediaTicker(clock)
    fakes = [FakeCall(ticker) for _ in range(3)]
    for fake in fakes:
        ticker.add(fake)
    drive(ticker, clock, 100 * MS)
    before = [len(f.ticks) for f in fakes]
    clock.advance(70 * MS)  # a 70 ms stall: 3-4 frames of each phase are due at once
    ticker.run_due(clock.now_ns())
    caught_up = [len(f.ticks) - b for f, b in zip(fakes, before, strict=True)]
    assert all(3 <= n <= 4 for n in caught_up)
    for fake in fakes:
        # The catch-up frames keep their own deadlines: the grid does not move.
        assert {b - a for a, b in zip(fake.deadlines, fake.deadlines[1:], strict=False)} == {FRAME_NS}
    clock.advance(500 * MS)  # past the catch-up limit: the peer is told of a gap instead
    ticker.run_due(clock.now_ns())
    assert all(f.skipped > 0 for f in fakes)
    assert ticker.stats.skipped_frames > 0


def test_one_phase_is_the_old_ticker_every_call_at_the_top_of_the_period() -> None:
    clock = ManualClock()
    ticker = MediaTicker(clock, phases=1)
    fakes = [FakeCall(ticker) for _ in range(5)]
    for fake in fakes:
        ticker.add(fake)
    assert drive(ticker, clock, 100 * MS) == 5
    assert {tuple(f.ticks) for f in fakes} == {tuple(range(20 * MS, 101 * MS, 20 * MS))}


def test_stats_are_one_object_for_the_tickers_life_and_see_every_phase() -> None:
    clock = ManualClock()
    ticker = MediaTicker(clock)
    stats = ticker.pacer.stats
    assert stats is ticker.stats
    for _ in range(4):
        ticker.add(FakeCall(ticker))
    clock.set(20 * MS + 7 * MS)  # phases 0..3 (20, 22, 24, 26 ms) due on one late wakeup
    ticker.run_due(clock.now_ns())
    assert stats.late_frames == 3 and stats.frames == 4  # 7, 5, 3 ms late; 1 ms is within 2 ms
    assert stats.ticks == 1 and len(stats.deviations_ns()) == 1  # periods: phase 0's wakeups
    assert stats.max_deviation_ns == 7 * MS and stats.percentile(0) == 1.0  # every phase's wakeups
    assert ticker.run_due(clock.now_ns()) == 0 and stats.early_wakeups == 1
    # A new grid (the loop starting) keeps what was counted.
    ticker._build_grid(clock.now_ns() + FRAME_NS, ticker.phases)
    assert ticker.pacer.stats is stats and stats.late_frames == 3 and stats.ticks == 1


def test_phases_must_be_at_least_a_millisecond_apart() -> None:
    with pytest.raises(ValueError, match="phases"):
        MediaTicker(ManualClock(), phases=21)
    with pytest.raises(ValueError, match="phases"):
        MediaTicker(ManualClock(), phases=0)


async def test_an_overloaded_ticker_still_yields_to_the_loop_between_wakeups() -> None:
    clock = ManualClock()
    ticker = MediaTicker(clock, phases=1)

    class Slow(FakeCall):
        def on_tick(self, now_ns: int, unix_time: float) -> None:
            super().on_tick(now_ns, unix_time)
            if len(self.ticks) < 200:
                clock.advance(30 * MS)  # each tick's work outlasts the period: always behind

    slow = Slow(ticker)
    ticker.add(slow)
    seen: list[int] = []  # how far the ticker had got each time another task ran

    async def probe() -> None:
        while len(slow.ticks) < 200:
            seen.append(len(slow.ticks))
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(0)  # run() builds its grid at now + 20 ms and sleeps until then
    clock.advance(20 * MS)
    await asyncio.wait_for(probe(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    # Other tasks ran while the ticker was behind, not only once it had caught up.
    assert any(0 < n < 200 for n in seen)


def test_the_percentile_reads_only_the_newest_wakeups_of_each_phase() -> None:
    ticker = MediaTicker(ManualClock())
    phases = ticker.stats._phases
    share = PERCENTILE_WINDOW // len(phases)
    for s in phases:
        for _ in range(share):
            s.record(50 * MS)  # old and very late: beyond the window once newer ones come
        for _ in range(share):
            s.record(1 * MS)
    assert ticker.stats.percentile(100) == 1.0
    phases[0].record(9 * MS)
    assert ticker.stats.percentile(100) == 9.0


def test_a_phase_due_within_the_timer_resolution_runs_now_as_if_on_time() -> None:
    clock = ManualClock()
    ticker = MediaTicker(clock, phases=1)
    fake = FakeCall(ticker)
    ticker.add(fake)
    clock.set(20 * MS - 600_000)  # the loop's millisecond timer fired 0.6 ms early
    assert ticker.run_due(clock.now_ns()) == 0  # not due: no early tolerance asked
    assert ticker.run_due(clock.now_ns(), early_ns=MS) == 1
    assert fake.deadlines == [20 * MS] and ticker.stats.max_deviation_ns == 0 and ticker.stats.late_frames == 0
    assert ticker.next_deadline_ns == 40 * MS  # the grid does not move


def test_the_ticker_does_not_spin_on_uvloops_millisecond_timers() -> None:
    # libuv fires a timer up to 1 ms early and rounds the rest to 0 ms: sleeping again for it
    # spun the loop (about 60 wakeups per deadline). Counted, not timed: early wakeups per tick.
    import uvloop

    from mediaserver.clock import MonotonicClock

    async def main() -> tuple[int, int]:
        ticker = MediaTicker(MonotonicClock())
        for _ in range(10):  # one call on every phase: a deadline every 2 ms
            ticker.add(FakeCall(ticker))
        task = asyncio.create_task(ticker.run())
        await asyncio.sleep(0.3)
        task.cancel()
        return ticker.stats.early_wakeups, ticker.stats.frames

    early, frames = uvloop.run(main())
    assert frames >= 50 and early < frames // 10
