from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaserver.rtp.pacer import Pacer, PacerStats

MS = 1_000_000
F = 20 * MS
START = 5_000 * MS


def test_early_wakeup_sends_nothing_and_records_nothing() -> None:
    p = Pacer(START)
    assert p.next_deadline_ns == START
    assert p.on_wakeup(START - 1) == 0
    assert (p.stats.ticks, p.stats.early_wakeups, p.next_deadline_ns) == (0, 1, START)


def test_on_time_wakeups_send_one_frame_each() -> None:
    p = Pacer(START)
    assert [p.on_wakeup(START + k * F) for k in range(4)] == [1, 1, 1, 1]
    assert p.next_deadline_ns == START + 4 * F
    assert (p.stats.ticks, p.stats.frames, p.stats.late_frames) == (4, 4, 0)


def test_lateness_does_not_drift_the_grid() -> None:
    p = Pacer(START)
    for k in range(1000):
        assert p.on_wakeup(START + k * F + 1 * MS) == 1  # every timer fires 1 ms late
    assert p.next_deadline_ns == START + 1000 * F
    assert p.stats.late_frames == 0  # 1 ms is within the 2 ms threshold
    assert p.stats.percentile(50) == 1.0


def test_late_wakeup_catches_up_and_counts_late_frames() -> None:
    p = Pacer(START)
    assert p.on_wakeup(START + 3 * MS) == 1
    assert p.stats.late_frames == 1
    # Deadlines F, 2F, 3F are due at 3F + 5 ms: frames late by 45, 25 and 5 ms.
    assert p.on_wakeup(START + F + 45 * MS) == 3
    assert p.stats.late_frames == 4
    assert p.next_deadline_ns == START + 4 * F
    # 41 ms late: frames late by 41, 21 and 1 ms; the newest is within the threshold.
    assert p.on_wakeup(START + 4 * F + 41 * MS) == 3
    assert p.stats.late_frames == 6
    assert p.last_skipped == 0


def test_long_stall_skips_the_oldest_frames() -> None:
    p = Pacer(START, max_catchup_frames=5)
    assert p.on_wakeup(START + 200 * MS) == 5  # 11 deadlines passed
    assert (p.last_skipped, p.stats.skipped_frames, p.stats.frames) == (6, 6, 5)
    assert p.next_deadline_ns == START + 11 * F  # still on the grid, in the future
    assert p.frame_index == 11
    assert p.on_wakeup(START + 11 * F) == 1
    assert p.last_skipped == 0


def test_percentiles_in_ms_from_the_ring() -> None:
    p = Pacer(0)
    for k, dev in enumerate([0, 1, 2, 3]):
        p.on_wakeup(k * F + dev * MS)
    assert p.stats.percentile(50) == 1.5
    assert p.stats.percentile(100) == 3.0
    assert p.stats.max_deviation_ns == 3 * MS
    assert Pacer(0).stats.percentile(99) == 0.0
    with pytest.raises(ValueError, match="outside 0..100"):
        p.stats.percentile(101)


def test_ring_is_bounded() -> None:
    stats = PacerStats(history=3)
    for v in range(5):
        stats.record(v)
    assert stats.deviations_ns().tolist() == [2, 3, 4]
    assert stats.ticks == 5
    assert stats.percentile(0) == 2 / MS


def test_late_threshold_is_configurable() -> None:
    p = Pacer(0, late_threshold_ns=500_000)
    p.on_wakeup(600_000)
    assert p.stats.late_frames == 1


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="frame_ns"):
        Pacer(0, frame_ns=0)
    with pytest.raises(ValueError, match="max_catchup_frames"):
        Pacer(0, max_catchup_frames=0)


@given(st.lists(st.integers(0, 300 * MS), min_size=1, max_size=50), st.integers(1, 8))
def test_frames_sent_plus_skipped_equals_deadlines_passed(delays: list[int], catchup: int) -> None:
    p = Pacer(0, max_catchup_frames=catchup)
    now = 0
    index = 0  # a brute-force model of the grid
    late = 0
    for delay in delays:
        now += delay
        sent = p.on_wakeup(now)
        passed = list(range(index, now // F + 1))
        model_sent = passed[-catchup:]
        index += len(passed)
        late += sum(1 for k in model_sent if now - k * F > 2 * MS)
        assert sent == len(model_sent)
        assert p.next_deadline_ns == index * F > now
        assert p.stats.late_frames == late
    assert p.stats.frames + p.stats.skipped_frames == p.frame_index == now // F + 1


def test_resume_at_skips_idle_deadlines_unrecorded_and_keeps_the_grid() -> None:
    p = Pacer(START)
    p.resume_at(START + 5 * F + 1)  # slept through 6 deadlines nobody was owed
    assert p.next_deadline_ns == START + 6 * F
    assert (p.stats.ticks, p.stats.skipped_frames, p.stats.late_frames) == (0, 0, 0)
    p.resume_at(START)  # already ahead: nothing moves
    assert p.next_deadline_ns == START + 6 * F
    assert p.on_wakeup(START + 6 * F) == 1 and p.stats.late_frames == 0


def test_pacers_can_share_one_stats() -> None:
    shared = PacerStats()
    a, b = Pacer(START, stats=shared), Pacer(START + 2 * MS, stats=shared)
    assert a.on_wakeup(START) == 1 and b.on_wakeup(START + 5 * MS) == 1
    assert a.stats is b.stats is shared
    assert (shared.ticks, shared.frames, shared.late_frames, shared.max_deviation_ns) == (2, 2, 1, 3 * MS)
