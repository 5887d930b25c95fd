"""Per-turn timings and Prometheus metrics folded from call events (mediaserver.metrics)."""

from __future__ import annotations

from typing import Any

from mediaserver.events import CallEnded, TurnSpeechEnded
from mediaserver.kernel.eventbus import LOG, BusEvent, EventBus
from mediaserver.logs import CallEventLog
from mediaserver.metrics import CALLER_RATE, Metrics, turn_timings


def _ev(event: str, ts: float, **fields: Any) -> dict[str, Any]:
    return {"ts": ts, "event": event, **fields}


# One turn: the caller stops at sample 32000 (2.0 s), endpoint 700 ms later, the reply's first
# frame leaves 60 ms after the endpoint; ASR/LLM/TTS log times follow the speech-ended event.
TURN = [
    _ev("turn_speech_started", 100.0, caller_sample=16000, decided_at=16480),
    _ev("turn_speech_ended", 101.2, caller_sample=32000),
    _ev("turn_asr_final", 101.5, caller_sample=32000, text="are you open"),
    _ev("turn_llm_first_token", 101.6),
    _ev("turn_tts_first_audio", 101.75, start_mark=0),
    _ev("turn_endpoint", 101.9, caller_sample=32000 + 700 * 16, speech_end=32000, reason="silence", preemptive=True),
    _ev("turn_first_agent_frame", 101.96, caller_sample=32000 + 760 * 16, cursor=320),
]
BARGE = [
    _ev("turn_speech_started", 104.0, caller_sample=64000, decided_at=64000 + 90 * 16),
    _ev("barge_paused", 104.1, caller_sample=64000 + 100 * 16, cursor=48000),
    _ev(
        "barge_flushed",
        104.6,
        caller_sample=64000 + 600 * 16,
        cursor=48000,
        heard_text="Thanks for",
        heard_words=2,
        total_words=5,
    ),
]


def test_turn_view_uses_the_media_clock_for_sample_stages() -> None:
    view = turn_timings(TURN + BARGE)
    assert view["caller_rate"] == CALLER_RATE
    (turn,) = view["turns"]
    assert turn["endpoint_ms"] == 700.0
    assert turn["first_agent_frame_ms"] == 760.0  # caller's last voiced sample -> reply's first frame
    assert turn["after_endpoint_ms"] == 60.0
    assert turn["preemptive"] is True
    # Off-tick stages come from log time after the speech-ended event, even before the endpoint.
    assert turn["asr_final_ms"] == 300.0 and turn["llm_first_token_ms"] == 400.0 and turn["tts_first_audio_ms"] == 550.0
    (barge,) = view["barge_ins"]
    assert barge["decision_ms"] == 100.0 and barge["outcome"] == "flushed" and barge["heard_words"] == 2


def test_barge_in_that_resumes_is_not_a_flush() -> None:
    view = turn_timings([BARGE[0], BARGE[1], _ev("barge_resumed", 104.5, caller_sample=70000, cursor=48000)])
    assert [b["outcome"] for b in view["barge_ins"]] == ["resumed"]


def test_events_without_samples_are_ignored_not_crashed_on() -> None:
    view = turn_timings([_ev("turn_endpoint", 1.0), _ev("turn_first_agent_frame", 1.1), _ev("barge_flushed", 2.0)])
    assert view["turns"] == [] and view["barge_ins"] == []


def _sample(text: str, line: str) -> float:
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    raise AssertionError(f"{line} not in the exposition")


def test_metrics_observe_every_call_through_the_event_bus() -> None:
    metrics = Metrics()
    metrics.gauge("mediaserver_calls_active", "calls", lambda: 3)
    metrics.counter("mediaserver_calls_started", "calls", lambda: 7)
    bus = EventBus()
    listener = bus.listen(lambda e: metrics.observe(e.call_id, e.data), kinds=[LOG])  # as the app wires it
    try:
        for call_id in ("a", "b"):
            log = CallEventLog(call_id, bus=bus)
            for entry in TURN + BARGE:
                fields = {k: v for k, v in entry.items() if k not in ("ts", "event")}
                log.record(entry["event"], **fields)
            log.emit(CallEnded(cause="NORMAL", packets_in=0, packets_out=0))
    finally:
        listener.close()
    body, content_type = metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert _sample(text, 'mediaserver_turn_stage_seconds_count{stage="endpoint"}') == 2
    assert _sample(text, 'mediaserver_turn_stage_seconds_sum{stage="after_endpoint"}') == 0.12
    assert _sample(text, 'mediaserver_turn_stage_seconds_bucket{le="0.06",stage="after_endpoint"}') == 2
    assert _sample(text, 'mediaserver_turn_stage_seconds_bucket{le="0.04",stage="after_endpoint"}') == 0
    assert _sample(text, 'mediaserver_barge_ins_total{outcome="flushed"}') == 2
    assert _sample(text, "mediaserver_barge_decision_seconds_count") == 2
    assert _sample(text, "mediaserver_calls_active") == 3
    assert _sample(text, "mediaserver_calls_started_total") == 7 and "_created" not in text
    assert metrics._timelines == {}  # call_ended drops the call's timeline


def test_a_failing_observer_does_not_break_the_call() -> None:
    def broken(event: BusEvent) -> None:
        raise RuntimeError("bug")

    bus = EventBus()
    listener = bus.listen(broken)
    try:
        log = CallEventLog("c", bus=bus)
        log.emit(TurnSpeechEnded(caller_sample=1))
    finally:
        listener.close()
    assert log.events[-1]["event"] == "turn_speech_ended"
