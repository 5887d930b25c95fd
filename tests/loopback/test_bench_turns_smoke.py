"""Smoke size of benchmarks/turns: 2 whole + 2 paused caller turns over loopback SIP.

Real server process, real speech: the runner works end to end and its JSON has the documented
fields and counts; never the values (rates and latencies are what the benchmark measures).
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import turns


def test_turns_smoke_reports_every_field_and_counts_each_kind(tmp_path: Path) -> None:
    assert turns.main(["--turns", "4", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "turns.json").read_text())
    assert result["benchmark"] == "turns" and result["codec"] == "PCMU" and result["ttft_ms"] == 200
    assert result["n"] == {"whole": 2, "paused": 2} and result["failed_calls"] == 0
    assert len(set(result["voices"])) >= 2
    fc = result["false_cutoff"]
    assert fc["n"] == 2 and {"false_cutoffs", "rate", "wilson95"} <= set(fc)
    assert set(result["false_cutoff_by_pause_s"]) == {"0.5-0.8s", "0.8-1.1s", "1.1-1.5s"}
    assert sum(b["n"] for b in result["false_cutoff_by_pause_s"].values()) == 2
    v2v = result["voice_to_voice_ms"]
    assert "p50" in v2v and "max_(n<10, no p90)" in v2v  # n < 10: the max, labelled, not a p90
    assert set(result["missed_answers"]) == {"whole", "paused"}
    assert result["commit"] and result["cpu_model"]
    paused = [t for t in result["turn_rows"] if t["kind"] == "paused"]
    assert all(0.5 <= t["pause_s"] <= 1.5 and "false_cutoff" in t for t in paused)
    whole = [t for t in result["turn_rows"] if t["kind"] == "whole"]
    assert all(t["stages"]["endpoint_ms"] > 0 for t in whole)  # where each whole turn's gap went
    stages = result["whole_turn_stages_ms"]
    assert stages["n"] == 2 and stages["endpoint_ms"]["n"] == 2 and sum(stages["endpoint_reasons"].values()) == 2
    assert (tmp_path / "turns.png").stat().st_size > 10_000
