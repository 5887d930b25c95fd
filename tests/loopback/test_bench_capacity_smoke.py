"""Smoke size of benchmarks/capacity: a real server, a few calls, sane structure (no time bounds)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import capacity


def test_capacity_ramp_smoke(tmp_path: Path) -> None:
    assert capacity.main(["--levels", "2,4", "--hold", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "capacity.json").read_text())
    assert result["benchmark"] == "capacity" and 1 <= len(result["levels"]) <= 2
    first = result["levels"][0]
    assert first["calls"] == 2
    # Every call's packets reach the generator: 50 per second per call, within a few packets.
    assert first["packets_received"] >= 0.9 * first["packets_expected"]
    assert first["server_cpu_percent_of_core"] > 0 and first["setup_ms_p50"] > 0
    assert (tmp_path / "capacity.png").stat().st_size > 10_000
