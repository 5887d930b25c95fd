"""benchmarks/stats: percentiles only where n supports them (p90 from 10 samples, p95 from 20)."""

from __future__ import annotations

import pytest

from benchmarks.stats import describe, nearest_rank, tail


def test_no_samples_give_only_n() -> None:
    assert describe([]) == {"n": 0}
    assert tail(describe([])) is None


def test_below_ten_samples_the_median_and_the_max_only() -> None:
    s = describe([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0])
    assert s == {"n": 9, "p50": 5.0, "max": 9.0}
    assert tail(s) == "max 9.0 (n=9)"  # no p95: the max, labelled, with its n


def test_p90_from_ten_samples_p95_from_twenty() -> None:
    ten = describe([float(x) for x in range(1, 11)])
    assert ten["p90"] == 9.0 and "p95" not in ten and ten["max"] == 10.0
    assert tail(ten) == "max 10.0 (n=10)"
    twenty = describe([float(x) for x in range(20, 0, -1)])
    assert (twenty["p50"], twenty["p90"], twenty["p95"], twenty["max"]) == (10.0, 18.0, 19.0, 20.0)
    assert tail(twenty) == "19.0"
    assert tail(twenty, "p90") == "18.0"


def test_nearest_rank_is_a_measured_value() -> None:
    assert nearest_rank([10.0, 20.0], 0.5) == 10.0  # never 15: no interpolation between two turns
    assert nearest_rank([10.0, 20.0], 0.51) == 20.0
    assert nearest_rank([3.0], 0.95) == 3.0
    with pytest.raises(ValueError):
        nearest_rank([], 0.5)
    with pytest.raises(ValueError):
        nearest_rank([1.0], 0.0)
