"""Stage times of one caller turn from the server's call log, each from the caller's last speech packet.

Theory of operation: the benchmark's caller knows when it sent its last speech packet (a 20 ms
frame with energy, `AiCaller.sent_speech_ns`, on this host's monotonic clock, turned into wall
time); the server logs every turn milestone with its wall time (`ts`, same host). Every stage
is that one start event -> the stage's own logged event, so the columns share a zero and add up
to the voice-to-voice time at the wire:

* endpoint: `turn_endpoint` (the decision; the first one after the caller's last packet);
* ASR final: `turn_asr_final` of that utterance (its `caller_sample` is the endpoint's
  `speech_end`); it may come before the endpoint (then a preemptive reply started on it);
* LLM first token: the last `turn_llm_first_token` between the ASR final and the first agent
  frame (a preemptive reply cancelled at the endpoint logged an earlier one);
* TTS first audio: the last `turn_tts_synthesized` in the same window, logged when the reply's
  first chunk is synthesized, on both paths (`tts_first_audio_ms`). A preemptive reply then holds
  that chunk until the endpoint releases it; the release (`turn_tts_first_audio`, the chunk queued
  for playout) is kept apart as `tts_enqueued_ms`;
* first agent frame: `turn_first_agent_frame` (the reply's first frame left in a tick).

The path is the endpoint's `preemptive` flag: a preemptive reply existed at the decision and was
released in the tick; otherwise the reply started at (or after) the endpoint. Also kept: the
silence the server waited on its own 16 kHz media clock (`silence_waited_media_ms`), the
server's speech end put on the wall clock through the endpoint event
(`server_speech_end_ms`: how far the server's last voiced sample lags the caller's last speech
packet), and the end-of-turn detector's checks since the previous endpoint (count and the sum
of their logged `ms`, wall time of each inference including its wait for the detector's worker,
and of their `cpu_ms`, the worker thread's CPU time; checks dropped unanswered are not
logged). A turn answered by a recovery phrase (an `ai_failure` after the caller's last packet:
empty transcript, LLM timeout...) is marked `ai_failure`; a stage whose event is not in the log is named in `missing`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mediaserver.metrics import CALLER_RATE

STAGES = ("endpoint", "asr_final", "llm_first_token", "tts_first_audio", "first_agent_frame")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _ts(entry: dict[str, Any]) -> float:
    return float(entry["ts"])


def turn_stages(events: Sequence[dict[str, Any]], last_speech: float, until: float = math.inf) -> dict[str, Any] | None:
    """Stage times (ms after `last_speech`, wall seconds) of the turn the first endpoint after
    `last_speech` (and at or before `until`) decided; None when no endpoint came."""
    endpoints = [i for i, e in enumerate(events) if e.get("event") == "turn_endpoint"]
    mine = next((i for i in endpoints if last_speech < _ts(events[i]) <= until), None)
    if mine is None:
        return None
    endpoint = events[mine]
    at, speech_end, decided = _ts(endpoint), int(endpoint["speech_end"]), int(endpoint["caller_sample"])
    earlier = [int(events[i]["caller_sample"]) for i in endpoints if i < mine]
    since = earlier[-1] if earlier else -1
    speech_end_wall = at - (decided - speech_end) / CALLER_RATE
    path = "preemptive" if endpoint.get("preemptive") else "non-preemptive"
    out: dict[str, Any] = {
        "path": path,
        "reason": endpoint.get("reason"),
        "endpoint_ms": _ms(at - last_speech),
        "silence_waited_media_ms": _ms((decided - speech_end) / CALLER_RATE),
        "server_speech_end_ms": _ms(speech_end_wall - last_speech),
    }
    asr = next((e for e in events if e.get("event") == "turn_asr_final" and e.get("caller_sample") == speech_end), None)
    if asr is not None:
        out["asr_final_ms"] = _ms(_ts(asr) - last_speech)
        out["asr_text"] = asr.get("text")
    frame = next((e for e in events[mine:] if e.get("event") == "turn_first_agent_frame" and _ts(e) <= until), None)
    lo = _ts(asr) if asr is not None else speech_end_wall
    hi = _ts(frame) if frame is not None else until

    def last(name: str) -> dict[str, Any] | None:
        found = [e for e in events if e.get("event") == name and lo <= _ts(e) <= hi]
        return found[-1] if found else None

    # A failure (an empty transcript, an LLM timeout...) is answered by a recovery phrase: its
    # audio is logged like a reply's, without an LLM token. Such a turn is not a reply.
    failures = [e.get("kind") for e in events if e.get("event") == "ai_failure" and last_speech < _ts(e) <= hi]
    if failures:
        out["ai_failure"] = failures
    token, synthesized = last("turn_llm_first_token"), last("turn_tts_synthesized")
    queued = last("turn_tts_first_audio")
    if token is not None:
        out["llm_first_token_ms"] = _ms(_ts(token) - last_speech)
    if synthesized is not None:
        out["tts_first_audio_ms"] = _ms(_ts(synthesized) - last_speech)
    if queued is not None:
        out["tts_enqueued_ms"] = _ms(_ts(queued) - last_speech)
    if frame is not None:
        out["first_agent_frame_ms"] = _ms(_ts(frame) - last_speech)
        out["after_endpoint_ms"] = _ms(_ts(frame) - at)
    checks = [
        e for e in events if e.get("event") == "turn_check" and since < int(e.get("caller_sample", -1)) <= decided
    ]
    out["detector_checks"] = len(checks)
    out["detector_wall_ms"] = sum(int(e.get("ms", 0)) for e in checks)
    out["detector_cpu_ms"] = sum(int(e.get("cpu_ms", 0)) for e in checks)
    missing = [s for s in STAGES if f"{s}_ms" not in out]
    if missing:  # said, not guessed: the summaries count each stage's own n
        out["missing"] = missing
    return out


def turn_log(events: Sequence[dict[str, Any]], last_speech: float, until: float = math.inf) -> list[list[Any]]:
    """[event, ms after `last_speech`] of every turn milestone from 2 s before the caller's last
    packet to `until` (and the `ai_` events): kept with a turn whose stages are incomplete, to see why."""
    return [
        [e["event"], _ms(_ts(e) - last_speech)]
        for e in events
        if str(e.get("event", "")).startswith(("turn_", "barge_", "ai_")) and last_speech - 2 <= _ts(e) <= until
    ]
