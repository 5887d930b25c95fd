"""RFC 3550 §6.4.1 interarrival jitter against hand-worked streams."""

from __future__ import annotations

import pytest

from benchmarks.jitter import JitterEstimator, stream_jitter


def test_hand_worked_stream() -> None:
    # 8 kHz, 20 ms frames: timestamps step 160. Arrivals (in timestamp units) 0, 160, 330, 480, 640:
    # the third packet is 10 units (1.25 ms) late, then the stream is back on its grid.
    # transit = 0, 0, 10, 0, 0 -> |D| = 0, 10, 10, 0
    # J: 0 -> 0 -> 10/16 = 0.625 -> 0.625 + (10 - 0.625)/16 = 1.2109375 -> 1.2109375 * 15/16 = 1.13525390625
    est = JitterEstimator(8000)
    values = [est.update(a, s) for a, s in [(0, 0), (160, 160), (330, 320), (480, 480), (640, 640)]]
    assert values == [0.0, 0.0, 0.625, 1.2109375, 1.13525390625]
    assert est.max_units == 1.2109375
    assert est.jitter_ms == pytest.approx(1.13525390625 / 8)  # 8 units per ms at 8 kHz
    assert est.packets == 5


def test_constant_delay_is_no_jitter() -> None:
    # A fixed transit time (network delay, clock offset) never shows as jitter.
    est = stream_jitter([5_000_000_000 + k * 20_000_000 for k in range(50)], [999 + 160 * k for k in range(50)], 8000)
    assert est.jitter_units == pytest.approx(0.0, abs=1e-6) and est.max_units == pytest.approx(0.0, abs=1e-6)


def test_alternating_delay_converges_to_its_step() -> None:
    # Every other packet 2 ms late: |D| is 2 ms at every packet, so J converges to 2 ms.
    arrivals = [k * 20_000_000 + (2_000_000 if k % 2 else 0) for k in range(400)]
    est = stream_jitter(arrivals, [160 * k for k in range(400)], 8000)
    assert est.jitter_ms == pytest.approx(2.0, rel=1e-6)
