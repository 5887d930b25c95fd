"""Smoke sizes of benchmarks/latency, benchmarks/bargein and the ASR+TTS capacity ramp.

Real server process, real speech, a call or two each: the runners work end to end, their JSON
has the documented structure and the numbers are sane (ordering, counts); never a time bound.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bargein, capacity, latency


def test_latency_smoke_measures_every_turn_at_the_wire_and_in_the_server(tmp_path: Path) -> None:
    assert latency.main(["--ttft-ms", "0", "--codecs", "opus", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "latency.json").read_text())
    assert result["benchmark"] == "latency" and result["failed_conversations"] == 0
    assert result["commit"] and isinstance(result["dirty"], bool) and result["cpu_model"]
    assert result["config_overrides"] == {}  # the shipped defaults, nothing set to flatter the numbers
    (call,) = result["calls"]
    assert call["codec"] == "opus" and [t["question"] for t in call["turns"]] == list(latency.QUESTIONS)
    assert call["live_view_turns"] == len(latency.QUESTIONS)  # GET /calls/{id} timing view, live
    for turn in call["turns"]:
        s = turn["stages"]
        assert s["path"] in latency.PATHS
        if s.get("ai_failure"):  # a recovery phrase (say, "Hello?" heard as nothing): no LLM token
            continue
        assert "missing" not in s, turn.get("log")  # every stage's event was found
        tts = s["tts_first_audio_ms"] if s["path"] == "non-preemptive" else s["tts_enqueued_ms"]
        # One process's log, in causal order; every stage after the caller's last packet.
        assert 0 < s["endpoint_ms"] <= s["first_agent_frame_ms"]
        assert 0 < s["asr_final_ms"] <= s["llm_first_token_ms"] <= tts <= s["first_agent_frame_ms"]
        assert turn["after_endpoint_wire_ms"] > 0
        assert turn["voice_to_voice_ms"] >= turn["voice_to_voice_first_packet_ms"] > s["endpoint_ms"]
    case = result["by_case"]["opus/ttft0"]
    v2v = case["all"]["voice_to_voice_ms"]
    replies = case["all"]["turns"]
    assert replies + case["all"]["answered_by_recovery_phrase"] == 3 and replies >= 1
    assert v2v["n"] == replies and "p90" not in v2v and "p95" not in v2v and "max" in v2v  # n < 10
    assert sum(case["all"]["paths"].values()) == replies
    assert case["all"]["stages_ms"]["endpoint_ms"]["n"] == replies
    assert result["goal"]["met"] is None  # no PCMU/ttft200 turns: not judged
    assert result["generator_loop_lag_ms"]["samples"] > 0
    assert (tmp_path / "latency.png").stat().st_size > 10_000


def test_bargein_smoke_counts_no_frame_after_the_decision(tmp_path: Path) -> None:
    assert bargein.main(["--calls", "1", "--false-calls", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bargein.json").read_text())
    assert result["benchmark"] == "bargein" and result["interruptions"] == 1 and result["missed_barge_ins"] == 0
    assert result["commit"] and result["cpu_model"]  # what it ran on
    assert result["onset_to_last_packet_ms"]["p95"] is None  # n < 20: no p95, the max stands in
    (call,) = result["calls"]
    assert call["onset_to_last_packet_ms"] > 0 and call["frames_after_decision"] == 0
    assert call.get("cursor_frames_after_decision", 0) == 0
    assert call["heard_words_server"] >= 1 and "heard_text_wire" in call
    assert set(result["false_barge_in_probes"]) == {"backchannel", "cough", "noise_burst"}
    assert all(p["calls"] == 1 for p in result["false_barge_in_probes"].values())
    assert (tmp_path / "bargein.png").stat().st_size > 10_000


def test_capacity_with_asr_and_tts_smoke(tmp_path: Path) -> None:
    assert capacity.main(["ai", "--levels", "1", "--repeats", "1", "--hold", "4", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "capacity_ai.json").read_text())
    assert result["benchmark"] == "capacity" and result["mode"] == "ai" and result["schema"] == 2
    assert result["provenance"]["commit"] and result["provenance"]["cpu_model"]
    (level,) = result["levels"]
    assert level["calls"] == 1 and level["setup_failed"] == 0 and level["greetings_heard"] == 1
    # The caller spoke at least one turn after the greeting; each turn is a reply or a missed one.
    v2v = level["voice_to_voice_ms"]
    assert level["turns"] >= 1 and v2v["n"] + level["missed_replies"] == level["turns"]
    assert "p95" not in v2v  # n < 20: the max stands in, named as such
    assert level["packets_received"] > 0 and set(level["rules"]) == set(result["rules"])
    assert (tmp_path / "capacity_ai.png").stat().st_size > 10_000
