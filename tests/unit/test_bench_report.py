"""benchmarks/report rewrites only the marked README section, from whatever results exist."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import report


def test_report_replaces_only_the_marked_section(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "capacity.json").write_text(json.dumps({
        "benchmark": "capacity", "mode": "media plane", "calls_per_core": 300,
        "machine": {"cpus": 2, "python": "3.11", "platform": "Linux"},
        "levels": [{"calls": 100, "deviation_ms_p50": 0.2, "deviation_ms_p99": 0.9, "late_frames_at_wire": 0,
                    "server_cpu_percent_of_core": 30.0, "server_cpu_ms_per_call_second": 3.0,
                    "rss_mb_per_call": 0.05, "setup_ms_p50": 5.0, "setup_calls_per_s": 400.0,
                    "generator_loop_lag_ms_p99": 1.0}],
    }))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.START}\nold table\n{report.END}\noutro\n")
    report.update_readme(readme, results)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "old table" not in text
    assert "calls per core ≈ **300**" in text and "| 100 | 0.2 | 0.9 | 0 |" in text
