"""Smoke size of benchmarks/soak: a real server, three calls replaced as they end, ten seconds.

Asserts what the run counted (calls placed and completed, no drops, no task left behind after the
last call, the asyncio-task gauge on /metrics) and the JSON's shape; never a time bound.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import soak


def test_soak_smoke_replaces_calls_and_leaves_nothing_behind(tmp_path: Path) -> None:
    argv = ["--calls", "3", "--ai-calls", "0", "--minutes", str(10 / 60), "--call-seconds", "3-4"]
    assert soak.main([*argv, "--sample-seconds", "1", "--name", "smoke", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "smoke.json").read_text())
    assert result["benchmark"] == "soak" and result["commit"] and result["cpu_model"]
    media = result["calls"]["media"]
    # Three slots, calls of 3-4 s in a 10 s run: every slot placed at least a second call.
    assert media["placed"] >= 6 and media["completed"] == media["placed"]
    assert media["setup_failures"] == {} and media["ended_early_by_server"] == 0
    assert result["dropped_calls"] == 0 and result["calls"]["ai"]["placed"] == 0
    wire = result["late_frames_at_wire"]
    assert wire["calls"] == media["completed"] and wire["packets"] > 0 and wire["media_stalls"] == 0
    assert result["server_idle_after_run"] is True
    # The server reports its asyncio tasks (/health and the /metrics gauge); none outlives the calls.
    before, after = result["before_first_call"], result["after_last_call"]
    assert before["asyncio_tasks"] > 0 and after["asyncio_tasks_metric"] > 0
    assert result["leaked_tasks"] == 0
    assert after["open_fds"] > 0 and after["rss_mb"] > 0
    samples = result["samples"]
    assert len(samples) >= 5 and max(s["server_calls"] or 0 for s in samples) >= 1
    assert {"growth_percent", "warmup_ends_s"} <= set(result["memory"])
    assert (tmp_path / "smoke.png").stat().st_size > 10_000


def test_soak_smoke_ai_calls_end_without_a_task_left_behind(tmp_path: Path) -> None:
    """AI calls hung up by the caller cancel the session mid-wait; its pending command `get` went
    on living (a leaked task, then "Task was destroyed but it is pending!" in the log)."""
    argv = ["--calls", "0", "--ai-calls", "1", "--minutes", str(20 / 60), "--call-seconds", "5-6"]
    assert soak.main([*argv, "--sample-seconds", "2", "--name", "ai", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "ai.json").read_text())
    ai = result["calls"]["ai"]
    assert ai["placed"] >= 2 and ai["completed"] == ai["placed"] and result["dropped_calls"] == 0
    assert result["server_idle_after_run"] is True and result["leaked_tasks"] == 0
    assert result["server_errors_logged"] == 0, result["server_error_examples"]
