"""Voice-turn latency and barge-in at the wire, over loopback SIP, with the scripted LLM.

    python -m benchmarks.latency_ai [--calls 12] [--ttft-ms 150] [--eos-ms 1000] [--out benchmarks/results]

Each call: the agent greets with a long scripted reply; the caller (espeak-ng "Wait, are you open
on Sunday" over PCMU) barges in after a random 0.8-3.0 s of agent audio; the agent's next reply
(the scripted LLM answers every request with the same long text after a fixed time to first
token) is measured from the server's endpoint decision, then the caller hangs up.
Measured, all at the caller's socket on this host:

* endpoint -> first agent packet: `turn_endpoint` (server event, wall clock) to the arrival of
  the reply's first RTP packet (the talkspurt's marker bit) after it (goal p50 <= 40 ms, p95 <=
  150 ms when the TTFT is below the endpoint silence, which lets the reply be prepared
  preemptively); also reported to the first packet louder than -44 dBFS peak (Piper's leading
  silence comes first);
* barge-in onset -> last agent packet: the first caller frame sent with speech energy (peak above
  -32 dBFS) to the arrival of the last agent packet that is not digital silence (goal p95 <= 120 ms);
* heard-text accuracy: the received agent audio up to the cut is transcribed (whisper tiny.en)
  and its word count compared with the words the server kept in the LLM history; a barge-in
  counts as right when they differ by at most one word (goal >= 95 %).

The caller, server and config helpers live in benchmarks/ai_harness.py (shared with
benchmarks/latency.py and benchmarks/bargein.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# Re-exported: the loopback conversation test drives the same caller.
from benchmarks.ai_harness import (
    AGENT_LEVEL,
    AI_SWML,
    AiCaller,
    call_events,
    cough,
    espeak_8k,
    mono_to_wall,
    write_config,
)
from benchmarks.ai_harness import pct as _pct
from benchmarks.ai_harness import server as _server
from benchmarks.progress import progress

__all__ = ["AGENT_LEVEL", "AI_SWML", "AiCaller", "call_events", "cough", "espeak_8k", "mono_to_wall", "write_config"]

# ---- the benchmark --------------------------------------------------------------------------------

LONG_REPLY = (
    "Thanks for calling the test line. We are open from nine in the morning until five in the "
    "evening from Monday to Friday, and from ten until two on Saturday. We are closed on Sunday "
    "and on public holidays, but you can always leave a message on our website."
)


async def one_call(sip_port: int, log_dir: Path, rng: random.Random, interrupt: np.ndarray) -> dict[str, Any]:
    caller = AiCaller(("127.0.0.1", sip_port), user="ai")
    await caller.open()
    offset = mono_to_wall()
    said = 0
    try:
        answer = await caller.call()
        if answer.status != 200:
            return {"call_id": caller.call_id, "error": f"call answered {answer.status}"}
        await caller.start_media()
        await caller.wait_agent(speaking_ms=int(rng.uniform(800, 3000)))
        said = len(caller.sent_speech_ns)
        caller.say(interrupt)
        await caller.until_said()
        await caller.wait_agent(speaking_ms=300, since_ns=time.monotonic_ns())  # the next reply has started
        await caller.stop_media()
        await caller.hangup()
    except (TimeoutError, AssertionError) as exc:
        failure: str | None = f"{type(exc).__name__}: {exc}"
    else:
        failure = None
    finally:
        with contextlib.suppress(Exception):
            await caller.stop_media()
        caller.close()
    await asyncio.sleep(0.3)
    events = call_events(log_dir, caller.call_id)
    onset_ns = caller.sent_speech_ns[said] if len(caller.sent_speech_ns) > said else None
    result: dict[str, Any] = {"call_id": caller.call_id}
    if failure:
        result["error"] = failure
    start_ts = events[0]["ts"] if events else 0.0
    result["timeline"] = [
        (e["event"], round(e["ts"] - start_ts, 3), e.get("text") or e.get("reason") or "")
        for e in events
        if e["event"].startswith(("turn_", "barge_", "ai_"))
    ]
    # A paused or idle agent sends digital silence (PCMU 0xFF decodes to 0): any other sample is
    # agent audio, quiet or not.
    packets = caller.agent_packets(level=0)
    frames = caller.agent_frames()
    if onset_ns is not None:
        # The last agent audio packet before the first silent gap that follows the barge onset.
        last = None
        for t, audio in packets:
            if t < onset_ns:
                continue
            if audio:
                last = t
            elif last is not None or t > onset_ns + 1_000_000_000:
                break
        result["barge_ms"] = (last - onset_ns) / 1e6 if last else 0.0
        paused = [e for e in events if e["event"] == "barge_paused"]
        if paused:  # where the time goes: caller onset -> server decision -> last packet
            result["barge_decision_ms"] = round((paused[0]["ts"] - offset) * 1e3 - onset_ns / 1e6, 1)
        flushed = [e for e in events if e["event"] == "barge_flushed"]
        if flushed:
            first_audio = next(t for t, a in packets if a)
            heard_audio = caller.agent_audio(first_audio - 1, last or onset_ns)
            result["heard_words_server"] = flushed[0]["heard_words"]
            result["heard_text_server"] = flushed[0]["heard_text"]
            result["heard_audio"] = heard_audio
    endpoints = [e for e in events if e["event"] == "turn_endpoint"]
    gaps, audible = [], []
    for endpoint in endpoints:
        at_ns = (endpoint["ts"] - offset) * 1e9
        # The reply's first packet carries the RTP marker (first frame of a talkspurt).
        first = [t for t, _, marker in frames if marker and t >= at_ns]
        loud = [t for t, peak, _ in frames if peak > AGENT_LEVEL and t >= at_ns]
        if first:
            gaps.append((first[0] - at_ns) / 1e6)
        if loud:
            audible.append((loud[0] - at_ns) / 1e6)
    result["endpoint_ms"] = gaps
    result["endpoint_audible_ms"] = audible
    result["preemptive"] = [e.get("preemptive") for e in endpoints]
    return result


async def run(calls: int, ttft_ms: int, out: Path, seed: int = 1, eos_ms: int = 1000) -> dict[str, Any]:
    from tests.support.llm_server import ScriptedLlmServer, Turn
    from tests.support.speech import transcribe, words, write_wav

    rng = random.Random(seed)
    interrupt = espeak_8k("Wait, are you open on Sunday")
    script = [Turn(text=LONG_REPLY, ttft_s=ttft_ms / 1000, token_delay_s=0.01)]
    results = []
    with tempfile.TemporaryDirectory(prefix="latency-ai-") as tmp_name:
        tmp = Path(tmp_name)
        async with ScriptedLlmServer(script, loop_script=True) as llm:
            config = write_config(tmp, llm.base_url, eos_ms=eos_ms)
            with _server(config) as server:
                for i in progress(range(calls), desc="calls"):
                    result = await one_call(server.sip_port, tmp, rng, interrupt)
                    audio = result.pop("heard_audio", None)
                    if audio is not None and len(audio):
                        wav = write_wav(tmp / f"heard{i}.wav", audio, 8000)
                        result["heard_words_wire"] = len(words(transcribe(wav)))
                    results.append(result)
                    print(json.dumps({k: v for k, v in result.items() if k != "timeline"}), file=sys.stderr)
                lag = server.get("/health").get("loop_lag_ms")
    endpoint = [g for r in results for g in r.get("endpoint_ms", [])]
    audible = [g for r in results for g in r.get("endpoint_audible_ms", [])]
    barge = [r["barge_ms"] for r in results if r.get("barge_ms")]
    heard = [r for r in results if "heard_words_wire" in r]
    right = [r for r in heard if abs(r["heard_words_wire"] - r["heard_words_server"]) <= 1]
    summary = {
        "calls": calls,
        "failed_calls": sum(1 for r in results if "error" in r),
        "ttft_ms": ttft_ms,
        "end_of_speech_timeout_ms": eos_ms,
        "endpoint_to_first_packet_ms": {
            "n": len(endpoint),
            "p50": _pct(endpoint, 0.5),
            "p95": _pct(endpoint, 0.95),
            "max": round(max(endpoint), 1) if endpoint else None,
        },
        "endpoint_to_first_audible_packet_ms": {"p50": _pct(audible, 0.5), "p95": _pct(audible, 0.95)},
        "barge_onset_to_last_packet_ms": {
            "n": len(barge),
            "p50": _pct(barge, 0.5),
            "p95": _pct(barge, 0.95),
            "max": round(max(barge), 1) if barge else None,
        },
        "heard_text_within_one_word": {"n": len(heard), "share": round(len(right) / len(heard), 3) if heard else None},
        "server_loop_lag_ms": lag,
        "goals": {"endpoint_p50_ms": 40, "endpoint_p95_ms": 150, "barge_p95_ms": 120, "heard_share": 0.95},
        "host": os.uname().nodename,
    }
    _write(out, {"summary": summary, "calls": results}, endpoint, barge, ttft_ms)
    return summary


def _write(out: Path, data: dict[str, Any], endpoint: list[float], barge: list[float], ttft_ms: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latency_ai.json").write_text(json.dumps(data, indent=2))
    _plot(endpoint, barge, out / "latency_ai.png", ttft_ms)


def _plot(endpoint: list[float], barge: list[float], path: Path, ttft_ms: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, values, title, goal in (
        (axes[0], endpoint, "endpoint decision -> first agent packet", 150),
        (axes[1], barge, "barge-in onset -> last agent packet", 120),
    ):
        if values:
            ax.hist(values, bins=20, color="tab:blue")
        ax.axvline(goal, color="tab:red", linestyle="--", label=f"goal p95 {goal} ms")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("ms at the caller's socket")
        ax.legend()
    fig.suptitle(f"AI turn latency over loopback SIP (scripted LLM, TTFT {ttft_ms} ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--ttft-ms", type=int, default=150)
    parser.add_argument("--eos-ms", type=int, default=1000, help="end_of_speech_timeout of the ai verb")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    summary = asyncio.run(run(args.calls, args.ttft_ms, args.out, eos_ms=args.eos_ms))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
