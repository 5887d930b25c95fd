"""benchmarks/report rewrites only the marked README section, from whatever results exist."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import report


def test_report_replaces_only_the_marked_section(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "capacity.json").write_text(
        json.dumps(
            {
                "benchmark": "capacity",
                "mode": "media plane",
                "calls_per_core": 300,
                "machine": {"cpus": 2, "python": "3.11", "platform": "Linux"},
                "levels": [
                    {
                        "calls": 100,
                        "deviation_ms_p50": 0.2,
                        "deviation_ms_p99": 0.9,
                        "late_frames_at_wire": 0,
                        "server_cpu_percent_of_core": 30.0,
                        "server_cpu_ms_per_call_second": 3.0,
                        "rss_mb_per_call": 0.05,
                        "setup_ms_p50": 5.0,
                        "setup_calls_per_s": 400.0,
                        "generator_loop_lag_ms_p99": 1.0,
                    }
                ],
            }
        )
    )
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.START}\nold table\n{report.END}\noutro\n")
    report.update_readme(readme, results)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "old table" not in text
    assert "calls per core ≈ **300**" in text and "| 100 | 0.2 | 0.9 | 0 |" in text


def test_report_renders_latency_and_bargein_results(tmp_path: Path) -> None:
    stages = {
        s: 10.0
        for s in (
            "endpoint_ms",
            "asr_final_ms",
            "llm_first_token_ms",
            "tts_first_audio_ms",
            "first_agent_frame_ms",
            "after_endpoint_ms",
        )
    }
    case = {
        "turns": 3,
        "voice_to_voice_ms": {"p50": 812.0, "p95": 900.0},
        "after_endpoint_wire_ms": {"p50": 20.5, "p95": 21.0},
        "server_stage_median_ms": stages,
    }
    results = tmp_path / "results"
    results.mkdir()
    (results / "latency.json").write_text(
        json.dumps(
            {
                "benchmark": "latency",
                "conversations": 1,
                "failed_conversations": 0,
                "end_of_speech_timeout_ms": 700,
                "overall": {"turns": 3, **case},
                "by_case": {"PCMU/ttft0": case},
                "generator_loop_lag_ms": {"p99_ms": 2.0},
            }
        )
    )
    (results / "bargein.json").write_text(
        json.dumps(
            {
                "benchmark": "bargein",
                "interruptions": 4,
                "missed_barge_ins": 0,
                "failed_calls": 0,
                "onset_to_last_packet_ms": {"p50": 86.0, "p95": 97.0, "max": 99.0},
                "onset_to_decision_ms": {"p50": 105.0},
                "frames_after_decision": {"total": 0, "cursor_total": 0, "cursor_checked_calls": 4},
                "heard_text_within_one_word": {"n": 4, "share": 1.0},
                "false_barge_in_probes": {"cough": {"calls": 2, "false_barge_ins": 1, "paused_then_resumed": 1}},
            }
        )
    )
    text = report.render(results)
    assert "after-endpoint p50 **20.5 ms**" in text and "| PCMU/ttft0 | 3 | 812.0 | 900.0 | 20.5 |" in text
    assert "| 86.0 | 97.0 | 99.0 | 105.0 | 0 / 0 (4 calls checked) | 1.0 of 4 |" in text
    assert "| cough | 2 | 1 | 1 | – |" in text
