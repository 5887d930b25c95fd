"""Percentiles that a sample can support, for benchmark summaries and the README tables.

Theory of operation: a percentile of a few samples is mostly the largest sample under another
name, so `describe` gives only what n supports: the median always (n >= 1), p90 from
`P90_MIN_N` samples, p95 from `P95_MIN_N`; the max is always there, under its own name, so a
table that has no p95 prints the max and says so (`tail`). Percentiles are nearest-rank: the
smallest sample with at least q of the samples at or below it, so every value printed is a
measured one (no interpolation between two turns).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

P90_MIN_N = 10
P95_MIN_N = 20


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-quantile (0 < q <= 1) of a non-empty sample."""
    if not values:
        raise ValueError("no samples")
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])


def describe(values: Sequence[float]) -> dict[str, Any]:
    """`{"n", "p50", "p90"?, "p95"?, "max"}` (ms, 0.1 resolution): p90 only where n >= 10, p95
    only where n >= 20; `{"n": 0}` for no samples."""
    n = len(values)
    out: dict[str, Any] = {"n": n}
    if not n:
        return out
    out["p50"] = round(nearest_rank(values, 0.5), 1)
    if n >= P90_MIN_N:
        out["p90"] = round(nearest_rank(values, 0.9), 1)
    if n >= P95_MIN_N:
        out["p95"] = round(nearest_rank(values, 0.95), 1)
    out["max"] = round(float(max(values)), 1)
    return out


def tail(summary: dict[str, Any], q: str = "p95") -> str | None:
    """The table cell for a tail percentile: its value, else the max labelled with n (None: no data)."""
    if q in summary:
        return str(summary[q])
    if not summary.get("n"):
        return None
    return f"max {summary['max']} (n={summary['n']})"
