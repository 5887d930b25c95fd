"""benchmarks/send_spread.py: its noise-free model and a tiny real-clock run."""

from __future__ import annotations

import asyncio

from benchmarks.send_spread import model_level, run_level


def test_the_model_shows_the_last_send_of_a_phase_late_by_its_calls_work() -> None:
    bunched = model_level(300, 1, cost_us=15.0, periods=10)
    spread = model_level(300, 10, cost_us=15.0, periods=10)
    assert bunched["lateness_ms_max"] == 4.5  # 300 calls x 15 µs, back to back
    assert spread["lateness_ms_max"] == 0.45  # 30 calls a phase
    assert spread["sends_over_2ms_late_percent"] == 0.0 < bunched["sends_over_2ms_late_percent"]


def test_a_real_run_records_every_send_against_its_own_deadline() -> None:
    row = asyncio.run(run_level(5, 10, seconds=0.2, warmup_s=0.05))
    assert row["calls"] == 5 and row["phases"] == 10 and row["sends"] > 0
    assert row["lateness_ms_p50"] is not None and row["lateness_ms_p50"] >= 0
