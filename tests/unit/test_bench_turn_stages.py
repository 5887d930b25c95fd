"""benchmarks/turn_stages and the latency summary over a synthetic call log (no server, no clock).

Two turns: a preemptive one (the ASR final and the LLM's first token before the endpoint, the
first audio released at it) and a non-preemptive one (a preemptive reply cancelled at the
endpoint, the played reply started after it). Every stage is measured from the caller's last
speech packet to the stage's own logged event.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import latency
from benchmarks.turn_stages import turn_log, turn_stages

RATE = 16000
T0, T1 = 1000.0, 1010.0  # the caller's last speech packet of each turn (wall seconds)


def _e(ts: float, event: str, **fields: Any) -> dict[str, Any]:
    return {"ts": ts, "event": event, **fields}


EVENTS = [
    _e(998.0, "turn_first_agent_frame", cursor=160, caller_sample=100),  # the greeting
    _e(T0 + 0.05, "turn_speech_ended", caller_sample=16000),
    _e(T0 + 0.25, "turn_asr_final", caller_sample=16000, text="Hello?"),
    _e(T0 + 0.40, "turn_llm_first_token"),
    _e(T0 + 0.48, "turn_tts_synthesized", held=True),
    _e(T0 + 0.50, "turn_check", caller_sample=20000, probability=0.9, ms=120, cpu_ms=95),
    _e(T0 + 0.55, "turn_endpoint", caller_sample=24000, speech_end=16000, reason="end_of_turn", preemptive=True),
    _e(T0 + 0.56, "turn_tts_first_audio", start_mark=16000),  # released at the endpoint
    _e(T0 + 0.57, "turn_first_agent_frame", cursor=16160, caller_sample=24320),
    _e(T1 + 0.06, "turn_speech_ended", caller_sample=176000),
    _e(T1 + 0.30, "turn_asr_final", caller_sample=176000, text="Are you open on Sunday?"),
    _e(T1 + 0.45, "turn_llm_first_token"),  # the preemptive reply, cancelled at the endpoint
    _e(T1 + 0.50, "turn_check", caller_sample=180000, probability=0.3, ms=200),
    _e(T1 + 0.62, "turn_check", caller_sample=184000, probability=0.4, ms=150),
    _e(T1 + 0.70, "turn_endpoint", caller_sample=187200, speech_end=176000, reason="end_of_speech", preemptive=False),
    _e(T1 + 0.95, "turn_llm_first_token"),
    _e(T1 + 1.29, "turn_tts_synthesized", held=False),
    _e(T1 + 1.30, "turn_tts_first_audio", start_mark=40000),
    _e(T1 + 1.32, "turn_first_agent_frame", cursor=40160, caller_sample=204000),
]


def test_preemptive_turn_stages_from_the_callers_last_packet() -> None:
    s = turn_stages(EVENTS, T0, until=T1 - 1)
    assert s is not None
    assert s["path"] == "preemptive" and s["reason"] == "end_of_turn"
    assert s["endpoint_ms"] == pytest.approx(550.0)
    assert s["asr_final_ms"] == pytest.approx(250.0)
    assert s["llm_first_token_ms"] == pytest.approx(400.0)
    assert s["first_agent_frame_ms"] == pytest.approx(570.0) and s["after_endpoint_ms"] == pytest.approx(20.0)
    # Synthesized before the endpoint and held; its release is kept apart.
    assert s["tts_first_audio_ms"] == pytest.approx(480.0) and s["tts_enqueued_ms"] == pytest.approx(560.0)
    assert s["silence_waited_media_ms"] == 500.0  # 8000 samples at 16 kHz
    assert s["server_speech_end_ms"] == pytest.approx(50.0)  # endpoint log time - 500 ms
    assert (s["detector_checks"], s["detector_wall_ms"], s["detector_cpu_ms"]) == (1, 120, 95)


def test_non_preemptive_turn_takes_the_played_replys_events() -> None:
    s = turn_stages(EVENTS, T1)
    assert s is not None and s["path"] == "non-preemptive"
    assert s["endpoint_ms"] == pytest.approx(700.0) and s["silence_waited_media_ms"] == 700.0
    assert s["asr_final_ms"] == pytest.approx(300.0)
    assert s["llm_first_token_ms"] == pytest.approx(950.0)  # not the cancelled reply's token
    assert s["tts_first_audio_ms"] == pytest.approx(1290.0) and s["tts_enqueued_ms"] == pytest.approx(1300.0)
    assert s["first_agent_frame_ms"] == pytest.approx(1320.0)
    # Only the checks since the previous endpoint count for this turn.
    assert (s["detector_checks"], s["detector_wall_ms"]) == (2, 350)


def test_a_missing_stage_is_named_with_the_turns_log() -> None:
    without_audio = [e for e in EVENTS if not (e["event"] == "turn_tts_synthesized" and e["ts"] > T1)]
    s = turn_stages(without_audio, T1)
    assert s is not None and s["missing"] == ["tts_first_audio"] and "tts_first_audio_ms" not in s
    log = turn_log(without_audio, T1)
    assert log[0] == ["turn_speech_ended", 60.0] and ["turn_llm_first_token", 950.0] in log
    assert "missing" not in (turn_stages(EVENTS, T1) or {})


def test_a_turn_answered_by_a_recovery_phrase_is_marked_and_left_out() -> None:
    recovered = [e for e in EVENTS if not (e["event"] == "turn_llm_first_token" and e["ts"] > T0)]
    recovered.insert(6, _e(T0 + 0.3, "ai_failure", kind="empty_transcript", error="no words"))
    s = turn_stages(recovered, T0, until=T1 - 1)
    assert s is not None and s["ai_failure"] == ["empty_transcript"] and s["missing"] == ["llm_first_token"]
    assert "ai_failure" not in (turn_stages(EVENTS, T0, until=T1 - 1) or {})
    turns = [{"voice_to_voice_ms": 600.0, "stages": s}, _turn(500.0, "preemptive")]
    summary = latency.summarize(turns)
    assert summary["turns"] == 1 and summary["answered_by_recovery_phrase"] == 1
    assert summary["voice_to_voice_ms"] == {"n": 1, "p50": 500.0, "max": 500.0}


def test_no_endpoint_in_the_window_is_no_turn() -> None:
    assert turn_stages(EVENTS, T0, until=T0 + 0.5) is None
    assert turn_stages(EVENTS, T1 + 2.0) is None


def _turn(v2v: float, path: str, detector_ms: int = 100) -> dict[str, Any]:
    stages = {"path": path, "endpoint_ms": v2v - 100, "detector_checks": 1, "detector_wall_ms": detector_ms}
    return {"voice_to_voice_ms": v2v, "stages": stages}


def test_summary_splits_paths_and_judges_the_goal_only_with_a_p90() -> None:
    turns = [_turn(400.0 + i, "preemptive") for i in range(8)] + [_turn(900.0, "non-preemptive")] * 2
    case = latency.by_path(turns)
    assert case["all"]["paths"] == {"preemptive": 8, "non-preemptive": 2}
    assert case["all"]["voice_to_voice_ms"]["n"] == 10 and case["all"]["voice_to_voice_ms"]["p90"] == 900.0
    assert case["non-preemptive"]["voice_to_voice_ms"] == {"n": 2, "p50": 900.0, "max": 900.0}
    assert case["preemptive"]["stages_ms"]["endpoint_ms"]["n"] == 8
    assert case["all"]["detector"]["wall_ms_per_turn_mean"] == 100.0
    judged = latency.goal({"PCMU/ttft200": case})
    assert judged["met"] is False and judged["measured"]["p90"] == 900.0
    few = latency.goal({"PCMU/ttft200": latency.by_path(turns[:5])})
    assert few["met"] is None  # n < 10: no p90, not judged
