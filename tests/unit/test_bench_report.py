"""benchmarks/report rewrites only the marked README section, from whatever results exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def _latency_case(n: int, v2v: dict[str, Any], path_n: dict[str, int]) -> dict[str, Any]:
    stages = {
        s: {"n": n, "p50": 100.0, "max": 120.0}
        for s in ("endpoint_ms", "asr_final_ms", "llm_first_token_ms", "first_agent_frame_ms")
    }
    stages["tts_first_audio_ms"] = {"n": path_n["non-preemptive"], "p50": 300.0, "max": 300.0}
    summary = {
        "turns": n,
        "paths": path_n,
        "voice_to_voice_ms": v2v,
        "voice_to_voice_first_packet_ms": {"n": n, "p50": 400.0, "max": 500.0},
        "after_endpoint_wire_ms": {"n": n, "p50": 20.5, "max": 30.0},
        "stages_ms": stages,
        "detector": {"checks_per_turn_mean": 1.5, "wall_ms_per_turn": {"n": n, "p50": 110.0, "max": 150.0}},
    }
    return summary


def test_report_renders_latency_and_bargein_results(tmp_path: Path) -> None:
    big = {"n": 21, "p50": 420.0, "p90": 580.0, "p95": 610.0, "max": 700.0}
    small = {"n": 3, "p50": 812.0, "max": 900.0}
    none = {"n": 0}
    cases = {
        "PCMU/ttft200": {
            "all": _latency_case(21, big, {"preemptive": 18, "non-preemptive": 3}),
            "preemptive": _latency_case(18, big | {"n": 18}, {"preemptive": 18, "non-preemptive": 0}),
            "non-preemptive": _latency_case(3, small, {"preemptive": 0, "non-preemptive": 3}),
        },
        "PCMU/ttft1000": {
            "all": _latency_case(0, none, {"preemptive": 0, "non-preemptive": 0}),
            "preemptive": _latency_case(0, none, {"preemptive": 0, "non-preemptive": 0}),
            "non-preemptive": _latency_case(0, none, {"preemptive": 0, "non-preemptive": 0}),
        },
    }
    results = tmp_path / "results"
    results.mkdir()
    (results / "latency.json").write_text(
        json.dumps(
            {
                "benchmark": "latency",
                "commit": "abc1234",
                "dirty": True,
                "cpu_model": "Test CPU 9000",
                "machine": {"cpus": 2, "python": "3.11", "platform": "Linux"},
                "config_overrides": {},
                "conversations": 7,
                "failed_conversations": 0,
                "overall": cases["PCMU/ttft200"],
                "by_case": cases,
                "goal": {
                    "case": "PCMU/ttft200",
                    "voice_to_voice_p50_ms": 450,
                    "voice_to_voice_p90_ms": 600,
                    "measured": big,
                    "met": True,
                },
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
                "onset_to_last_packet_ms": {"n": 4, "p50": 86.0, "p95": None, "max": 99.0},
                "onset_to_decision_ms": {"p50": 105.0},
                "frames_after_decision": {"total": 0, "cursor_total": 0, "cursor_checked_calls": 4},
                "heard_text_within_one_word": {"n": 4, "share": 1.0},
                "false_barge_in_probes": {"cough": {"calls": 2, "false_barge_ins": 1, "paused_then_resumed": 1}},
            }
        )
    )
    text = report.render(results)
    assert "shipped defaults" in text and "p50 **420.0 ms**, p90 **580.0 ms** (n=21): met" in text
    assert "| PCMU/ttft200 | all | 21 | 420.0 | 580.0 | 610.0 | 400.0 | 20.5 |" in text
    # n < 20: no p95, the max labelled; n < 10: no p90.
    assert "| PCMU/ttft200 | non-preemptive | 3 | 812.0 | – (n<10) | max 900.0 (n=3) |" in text
    assert "| PCMU/ttft1000 | non-preemptive | 0 | – | – | – |" in text
    # A stage seen by fewer turns than the row prints its own n (TTS: non-preemptive replies only).
    assert (
        "| PCMU/ttft200 | all | 21 | 100.0 | 100.0 | 100.0 | 300.0 (n=3) | 100.0 | 420.0 | 110.0 (1.5 checks) |" in text
    )
    assert "| PCMU/ttft200 | preemptive | 18 | 100.0 | 100.0 | 100.0 | – |" in text
    assert "Commit `abc1234` (uncommitted changes), Test CPU 9000, 2 vCPUs" in text
    assert text.startswith("Machine: Test CPU 9000, 2 vCPUs")  # the CPU the result ran on, not this one
    # Four interruptions: no p95, the max stands in and the header says so; no commit recorded.
    assert "max ms (n = 4 < 20: no p95; goal p95 ≤ 120)" in text and "commit not recorded" in text
    assert "| 86.0 | 99.0 | 99.0 | 105.0 | 0 / 0 (4 calls checked) | 1.0 of 4 |" in text
    assert "| cough | 2 | 1 | 1 | – |" in text


def test_report_says_an_old_latency_result_must_be_rerun(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    old = {"benchmark": "latency", "conversations": 1, "overall": {}, "by_case": {}}
    (results / "latency.json").write_text(json.dumps(old))
    text = report.render(results)
    assert "predates stage times measured from the caller's last speech packet" in text and "|" not in text


def test_report_renders_the_asr_contention_medians(tmp_path: Path) -> None:
    result = {
        "benchmark": "asr_contention",
        "commit": "abc1234",
        "cpu_model": "X",
        "speech_s": 2.8,
        "repeats": 5,
        "final_ms_median": {"1_thread": {"alone": 431.8, "with_detector": 515.8, "with_detector_and_partial": 617.3}},
        "detector_ms_median": {"1_thread": 256.3},
    }
    (tmp_path / "asr_contention.json").write_text(json.dumps(result))
    text = report.render(tmp_path)
    assert "| 1 | 431.8 | 515.8 | 617.3 | 256.3 |" in text
    assert "median of 5" in text and "commit abc1234" in text


def test_report_prints_the_bargein_p95_from_20_interruptions_with_the_commit(tmp_path: Path) -> None:
    result: dict[str, Any] = {
        "benchmark": "bargein",
        "commit": "abc1234",
        "cpu_model": "X",
        "interruptions": 50,
        "missed_barge_ins": 0,
        "failed_calls": 0,
        "onset_to_last_packet_ms": {"n": 50, "p50": 86.0, "p95": 97.0, "max": 130.0},
        "onset_to_decision_ms": {"p50": 105.0},
        "frames_after_decision": {"total": 0, "cursor_total": 0, "cursor_checked_calls": 50},
        "heard_text_within_one_word": {"n": 50, "share": 0.98},
        "false_barge_in_probes": {},
    }
    (tmp_path / "bargein.json").write_text(json.dumps(result))
    text = report.render(tmp_path)
    assert "| p95 ms (goal ≤ 120) |" in text and "commit abc1234, X" in text
    assert "| 86.0 | 97.0 | 130.0 | 105.0 | 0 / 0 (50 calls checked) | 0.98 of 50 |" in text


def test_report_renders_the_media_path_per_frame_and_a_result_without_it(tmp_path: Path) -> None:
    cost = {"median_us": 1.0, "p10_us": 1.0, "p90_us": 1.0}
    costs = {"PCMU.encode": cost, "PCMU.decode": cost, "jitter.push+pop": cost}
    result: dict[str, Any] = {"benchmark": "media", "per_frame_cost": costs, "pacing": []}
    (tmp_path / "media.json").write_text(json.dumps(result))
    assert "Jitter buffer push+pop: 1.0 µs." in report.render(tmp_path)  # a result from before the row
    costs["stream.receive+tick.held"] = {**cost, "median_us": 6.9}
    costs["stream.receive+tick.heard"] = {**cost, "median_us": 12.5}
    (tmp_path / "media.json").write_text(json.dumps(result))
    text = report.render(tmp_path)
    assert "6.9 µs when nobody listens to the caller, 12.5 µs when a tap does" in text
    assert "| stream |" not in text  # not mistaken for a codec row


def test_report_renders_the_turn_verdicts_per_voice(tmp_path: Path) -> None:
    summary = {
        "n": {"whole": 3, "paused": 2},
        "model_auc": {"250ms": 0.4, "500ms": 0.25},
        "text_signal": {"whole": {"1": 2, "0": 1, "-1": 0}, "paused": {"1": 0, "0": 1, "-1": 1}},
    }
    result = {
        "benchmark": "turn_verdicts",
        "commit": "abc1234",
        "cpu_model": "X",
        "definitions": {"model_auc": "AUC", "text_signal": "signals"},
        "summary": {"piper": summary, "all": summary},
    }
    (tmp_path / "turn_verdicts.json").write_text(json.dumps(result))
    text = report.render(tmp_path)
    assert "| all | 3 | 2 | 0.4 | 0.25 | 2 / 1 / 0 | 0 / 1 / 1 |" in text
    assert "commit abc1234" in text


def test_report_renders_the_llm_request_cost_per_client(tmp_path: Path) -> None:
    result = {
        "benchmark": "llm_request_cost",
        "commit": "abc1234",
        "cpu_model": "X",
        "definition": "CPU ms of the first step",
        "engine": {"n": 30, "p50_ms": 0.1, "max_ms": 0.2},
        "openai_sdk": {"n": 30, "p50_ms": 0.6, "max_ms": 0.9},
        "sdk_over_engine_p50": 6.0,
    }
    (tmp_path / "llm_request_cost.json").write_text(json.dumps(result))
    text = report.render(tmp_path)
    assert "| engine (aiohttp) | 30 | 0.1 | 0.2 |" in text and "| openai SDK | 30 | 0.6 | 0.9 |" in text
    assert "SDK p50 / engine p50: 6.0" in text and "commit abc1234" in text


def test_report_names_the_speech_engines_run_and_the_first_clause_it_timed(tmp_path: Path) -> None:
    spread = {"median": 1.0, "p10": 1.0, "p90": 1.0, "n": 1}
    result = {
        "benchmark": "asr",
        "commit": "abc1234",
        "cpu_model": "X",
        "asr": {"latency_ms": {"1s.window_10s": spread}, "word_recall": {"window_10s": 0.9}},
        "vad": {"webrtc_us_per_frame": spread, "silero_us_per_frame": spread},
        "tts": {
            "first_clause_text": "Sure,",
            "first_sentence_text": "Sure, I can help.",
            "ttfa_ms": {"first_clause": {**spread, "median": 43.0}, "first_sentence": {**spread, "median": 99.0}},
            "word_end_error_vs_whisper_ms": spread,
        },
    }
    (tmp_path / "asr.json").write_text(json.dumps(result))
    text = report.render(tmp_path)
    assert "`python -m benchmarks.asr`; commit abc1234, X)" in text
    assert "| Piper first clause ('Sure,'), time to first audio | 43 ms |" in text
    assert "| Piper first sentence ('Sure, I can help.'), time to first audio | 99 ms |" in text
