"""The capacity benchmark's arithmetic: late and missing frames at the wire, and where a ramp's limit lies."""

from __future__ import annotations

from typing import Any

from benchmarks.capacity_common import Rule, find_limit, rules_dict, slope, ticker_late
from benchmarks.capacity_wire import analyse_call, summarise

MS = 1_000_000


def _stream(
    n: int, late_ms: dict[int, float] | None = None, drop: set[int] | None = None, ts0: int = 2**32 - 160 * 3
) -> list[tuple[int, int]]:
    """Packets k = 0..n-1 of a 20 ms PCMU stream, some late, some never sent; timestamps wrap once."""
    late_ms, drop = late_ms or {}, drop or set()
    return [
        (1_000 * MS + k * 20 * MS + int(late_ms.get(k, 0) * MS), (ts0 + 160 * k) % 2**32)
        for k in range(n)
        if k not in drop
    ]


def test_a_frame_over_20_ms_after_its_due_time_is_late_and_one_at_20_is_not() -> None:
    wire = analyse_call(_stream(50, late_ms={10: 25.0, 20: 20.0, 30: 5.0}))
    assert wire.packets == 50 and wire.late_frames == 1 and wire.lateness_ms_max == 25.0
    assert wire.missing_frames == 0 and wire.jitter_ms_max > 0


def test_due_times_follow_the_best_packet_not_the_first() -> None:
    # The first packet is 30 ms late; every other packet is on time: only the first is late.
    wire = analyse_call(_stream(50, late_ms={0: 30.0}))
    assert wire.late_frames == 1 and wire.lateness_ms_max == 30.0


def test_a_skipped_timestamp_is_missing_not_late() -> None:
    wire = analyse_call(_stream(50, drop={7, 8}))
    assert wire.missing_frames == 2 and wire.late_frames == 0 and wire.jitter_ms_max == 0.0


def test_a_stream_whose_timestamps_sit_half_a_frame_off_the_grid_misses_nothing() -> None:
    # Initial timestamps are random (RFC 3550): ts0 = 80 mod 160 once made every ts / 160 end
    # in .5, and rounding half to even counted 250 of 500 frames of such a call as missing.
    for ts0 in (80, 160 * 1000 + 80, 2**32 - 80):
        wire = analyse_call(_stream(500, ts0=ts0))
        assert wire.missing_frames == 0, ts0
    assert analyse_call(_stream(500, drop={100}, ts0=80)).missing_frames == 1


def test_summary_pools_calls() -> None:
    level = summarise([analyse_call(_stream(50, late_ms={3: 40.0})), analyse_call(_stream(50)), analyse_call([])])
    assert level["calls_measured"] == 2 and level["calls_silent"] == 1
    assert level["late_frames"] == 1 and level["packets_received"] == 100
    assert level["jitter_ms_p99"] == level["jitter_ms_max"] > level["jitter_ms_p50"] == 0.0


def _row(level: int, repeat: int, late: int, jitter: float) -> dict[str, Any]:
    rules = [Rule("late_frames_at_wire", late, 0), Rule("jitter_ms_p99", jitter, 5.0)]
    return {"level": level, "repeat": repeat, "rules": rules_dict(rules)}


def test_the_limit_is_the_last_level_held_in_every_repeat_and_names_what_broke_next() -> None:
    rows = [
        _row(100, 1, 0, 1.0),
        _row(100, 2, 0, 1.0),
        _row(200, 1, 0, 2.0),
        _row(200, 2, 0, 6.0),  # one repeat breaks the jitter rule at 200
        _row(300, 1, 3, 1.0),  # a later level that passes in no repeat does not count either way
    ]
    limit = find_limit(rows)
    assert limit == {
        "limit": 100,
        "broke_at": 200,
        "rules_broken_at_next_level": {"jitter_ms_p99": [2]},
        "reached": True,
    }
    assert find_limit(rows[:2]) == {"limit": 100, "broke_at": None, "rules_broken_at_next_level": {}, "reached": False}


def test_a_rule_with_no_measurement_does_not_hold() -> None:
    assert not Rule("jitter_ms_p99", None, 5.0).holds()
    assert Rule("offer_made", 0.995, 0.99, kind="min").holds() and not Rule("offer_made", 0.9, 0.99, kind="min").holds()


def test_slope_is_the_least_squares_fit() -> None:
    assert slope([50, 100, 150], [110.0, 115.0, 120.0]) == 0.1
    assert slope([50, 50], [1.0, 2.0]) is None


def test_the_ticker_count_is_read_under_its_exposed_counter_name() -> None:
    assert ticker_late({"mediaserver_ticker_late_frames_total": 5.0, "other": 1.0}) == 5.0
    assert ticker_late({}) == 0.0
