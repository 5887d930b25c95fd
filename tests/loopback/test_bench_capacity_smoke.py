"""Smoke sizes of benchmarks/capacity's media and setup modes: a real server, a few calls, the
JSON's shape and facts that do not depend on timing (counts, the pinning applied, the rate
limiter answering 503 to a source that is not a trunk). The ai mode's smoke is in
test_bench_ai_smoke.py with the other speech benchmarks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from benchmarks import capacity

PIN = (os.cpu_count() or 1) >= 2


def _provenance(result: dict[str, Any]) -> None:
    prov = result["provenance"]
    assert prov["commit"] and isinstance(prov["dirty"], bool) and prov["cpu_model"]
    assert result["schema"] == 2 and result["definitions"] and result["rules"]


def test_media_ramp_smoke(tmp_path: Path) -> None:
    args = ["media", "--levels", "2,4", "--repeats", "2", "--hold", "1", "--out", str(tmp_path)]
    before = os.sched_getaffinity(0)
    assert capacity.main(args + ([] if PIN else ["--no-pin"])) == 0
    assert os.sched_getaffinity(0) == before  # the test session gets its CPUs back
    result = json.loads((tmp_path / "capacity.json").read_text())
    assert result["benchmark"] == "capacity" and result["mode"] == "media"
    _provenance(result)
    if PIN:  # the server on CPU 0, this process (the load generator) on CPU 1, as read back
        assert result["pinning"]["applied"] == {"server": [0], "load": [1]}
    rows = result["levels"]
    assert {(r["repeat"], r["level"]) for r in rows} <= {(1, 2), (1, 4), (2, 2), (2, 4)} and rows[0]["level"] == 2
    for row in rows:
        assert row["calls"] == row["level"] and row["setup_failed"] == 0 and row["calls_measured"] == row["calls"]
        # Every call's packets reach the generator: 50 per second per call, within a few packets.
        assert row["packets_received"] >= 0.9 * row["packets_expected"]
        assert row["server_cpu_percent_of_core"] > 0 and row["setup_ms"]["n"] == 2  # two calls added per level
        assert set(row["rules"]) == set(result["rules"])
        assert row["jitter_ms_p50"] <= row["jitter_ms_p99"] <= row["jitter_ms_max"]
    limit = result["limit"]
    assert result["calls_on_one_core"] == limit["limit"] in (0, 2, 4)
    assert limit["reached"] == (limit["broke_at"] is not None) == bool(limit["rules_broken_at_next_level"])
    assert (tmp_path / "capacity.png").stat().st_size > 10_000


def test_setup_rate_smoke_a_trunk_is_not_rate_limited_and_another_source_is(tmp_path: Path) -> None:
    pin = [] if PIN else ["--no-pin"]
    trunk, other = tmp_path / "trunk", tmp_path / "other"
    common = ["setup", "--duration", "2", "--call-hold", "0.2"]
    assert capacity.main([*common, "--rates", "60", "--out", str(trunk), *pin]) == 0
    assert capacity.main([*common, "--rates", "60", "--no-trunk", "--out", str(other), *pin]) == 0
    (row,) = json.loads((trunk / "capacity_setup.json").read_text())["rates"]
    result = json.loads((other / "capacity_setup.json").read_text())
    _provenance(result)
    (limited,) = result["rates"]
    for r in (row, limited):
        assert r["invites_sent"] == 120
        shares = r["share_200"] + r["share_503"] + r["share_other_final"] + r["share_no_answer"]
        assert abs(shares - 1) < 1e-3
    # From the trunk every INVITE is answered 200; from any other source the default limiter
    # (20/s, burst 40) answers part of a 60/s offer with 503.
    assert row["share_200"] == 1.0 and row["share_503"] == 0.0 and row["setup_ms"]["n"] == 120
    assert limited["share_503"] > 0.2 and limited["share_200"] > 0
    assert "no trunk" in result["server_settings"] and result["sustained_calls_per_s"] == 0
    assert (other / "capacity_setup.png").stat().st_size > 10_000
