"""Voice-to-voice latency at the wire: conversations over loopback SIP with the scripted LLM.

    python -m benchmarks.latency [--ttft-ms 0,200,500] [--codecs PCMU,opus] [--repeat 1]
                                 [--eos-ms 700] [--out benchmarks/results]

Theory of operation: one real `mediaserver serve` process answers every call with the `ai` verb;
the scripted LLM runs in this process and answers every request with a short reply after the
chosen time to first token (changed between conversations, so one server serves all of them).
For each codec and TTFT, one conversation: the caller waits out the greeting, then asks three
questions of different lengths (espeak-ng speech, 8 kHz, resampled for opus), each after the
agent's previous reply has ended. Per turn, all at the caller's socket on this host:

* voice-to-voice: the caller's last speech frame sent -> the reply's first audible agent packet
  received (peak above -44 dBFS), and -> the reply's first packet (the talkspurt's marker bit);
* after the endpoint: the server's `turn_endpoint` event (wall time) -> the reply's first packet
  (goal p50 <= 40 ms); the rest of voice-to-voice is the endpoint silence (`end_of_speech_timeout`);
* per-stage medians from the server's own per-turn events (mediaserver.metrics.turn_timings over
  the call log): speech end -> endpoint, ASR final, LLM first token, TTS first audio, first
  agent frame sent; the first conversation's live `GET /calls/{id}` view is checked against it.

Progress goes to stderr, the summary JSON to stdout and benchmarks/results/latency.json, a plot
to latency.png. The generator's own loop lag is reported (`generator_loop_lag_ms`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ai_harness import (
    AGENT_LEVEL,
    AiCaller,
    LoopLag,
    call_events,
    espeak_8k,
    median,
    mono_to_wall,
    pct,
    write_config,
)
from benchmarks.ai_harness import server as run_server
from mediaserver.metrics import turn_timings

QUESTIONS = {
    "short": "Hello?",
    "medium": "Are you open on Sunday?",
    "long": "Hi, I would like to know whether you are open on Sunday afternoon, and until what time.",
}
REPLY = "Yes, we are open until two."
STAGES = (
    "endpoint_ms",
    "asr_final_ms",
    "llm_first_token_ms",
    "tts_first_audio_ms",
    "first_agent_frame_ms",
    "after_endpoint_ms",
)


async def conversation(
    sip_port: int, codec: str, log_dir: Path, speech: dict[str, np.ndarray], live_view: Any = None
) -> dict[str, Any]:
    """One call: greeting, then each question once; per-turn wire times and server timings."""
    caller = AiCaller(("127.0.0.1", sip_port), user="ai", codec=codec)
    await caller.open()
    offset = mono_to_wall()
    turns: list[dict[str, Any]] = []
    failure = None
    live = None
    try:
        answer = await caller.call()
        if answer.status != 200:
            raise AssertionError(f"call answered {answer.status}")
        await caller.start_media()
        await caller.wait_agent(speaking_ms=300, silent_ms=600)  # the greeting
        for length, pcm in speech.items():
            spoken = len(caller.sent_speech_ns)
            caller.say(pcm)
            await caller.until_said()
            last_speech = caller.sent_speech_ns[-1] if len(caller.sent_speech_ns) > spoken else None
            await caller.wait_agent(speaking_ms=300, silent_ms=600, since_ns=time.monotonic_ns())
            turns.append({"question": length, "last_speech_ns": last_speech})
        if live_view is not None:  # the live per-turn view, while the call is up
            path = "/calls/" + urllib.parse.quote(caller.call_id, safe="")
            live = (await asyncio.to_thread(live_view, path)).get("timing")
        await caller.stop_media()
        await caller.hangup()
    except (TimeoutError, AssertionError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(Exception):
            await caller.stop_media()
        caller.close()
    await asyncio.sleep(0.3)  # the server's last events reach the log
    events = call_events(log_dir, caller.call_id)
    timing = turn_timings(events)
    endpoints = [(e["ts"] - offset) * 1e9 for e in events if e["event"] == "turn_endpoint"]
    frames = caller.agent_frames()
    # Turn 0 is the greeting (no caller speech before it); questions follow in order.
    server_turns = timing["turns"]
    for i, turn in enumerate(turns):
        last = turn.pop("last_speech_ns")
        at = [t for t in endpoints if last is not None and t > last]
        first = [t for t, _, marker in frames if marker and last is not None and t > last]
        loud = [t for t, peak, _ in frames if peak > AGENT_LEVEL and last is not None and t > last]
        if last is not None and first:
            turn["voice_to_voice_first_packet_ms"] = round((first[0] - last) / 1e6, 1)
        if last is not None and loud:
            turn["voice_to_voice_ms"] = round((loud[0] - last) / 1e6, 1)
        if at:
            after = [t for t, _, marker in frames if marker and t >= at[0]]
            if after:
                turn["after_endpoint_wire_ms"] = round((after[0] - at[0]) / 1e6, 1)
            turn["last_speech_to_endpoint_ms"] = round((at[0] - last) / 1e6, 1)
        if i < len(server_turns):
            turn["server"] = server_turns[i]
    result: dict[str, Any] = {"call_id": caller.call_id, "codec": codec, "turns": turns}
    if failure:
        result["error"] = failure
    if live is not None:
        result["live_view_turns"] = len(live.get("turns", []))
    return result


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Percentiles of the wire measures and medians of the server's stages over some turns."""
    turns = [t for r in rows for t in r["turns"]]
    out: dict[str, Any] = {"turns": len(turns)}
    for key in (
        "voice_to_voice_ms",
        "voice_to_voice_first_packet_ms",
        "after_endpoint_wire_ms",
        "last_speech_to_endpoint_ms",
    ):
        values = [t[key] for t in turns if key in t]
        out[key] = {"n": len(values), "p50": pct(values, 0.5), "p95": pct(values, 0.95)}
    out["server_stage_median_ms"] = {
        s: median([t["server"][s] for t in turns if s in t.get("server", {})]) for s in STAGES
    }
    return out


async def run(ttfts: list[int], codecs: list[str], repeat: int, eos_ms: int) -> dict[str, Any]:
    from tests.support.llm_server import ScriptedLlmServer, Turn

    speech = {k: espeak_8k(v) for k, v in QUESTIONS.items()}
    rows: list[dict[str, Any]] = []
    lag = LoopLag()
    with tempfile.TemporaryDirectory(prefix="latency-") as tmp_name:
        tmp = Path(tmp_name)
        async with ScriptedLlmServer([Turn(text=REPLY)], loop_script=True) as llm:
            config = write_config(tmp, llm.base_url, eos_ms=eos_ms)
            with run_server(config) as server:
                lag.start()
                for _ in range(repeat):
                    for codec in codecs:
                        for ttft in ttfts:
                            llm.script, llm._next = [Turn(text=REPLY, ttft_s=ttft / 1000, token_delay_s=0.01)], 0
                            row = await conversation(
                                server.sip_port, codec, tmp, speech, live_view=server.get if not rows else None
                            )
                            row["ttft_ms"] = ttft
                            rows.append(row)
                            brief = [{k: v for k, v in t.items() if k != "server"} for t in row["turns"]]
                            print(
                                json.dumps(
                                    {"codec": codec, "ttft_ms": ttft, "error": row.get("error"), "turns": brief}
                                ),
                                file=sys.stderr,
                            )
                server_lag = server.get("/health").get("loop_lag_ms")
                generator_lag = await lag.stop()
    by = {
        f"{c}/ttft{t}": summarize([r for r in rows if r["codec"] == c and r["ttft_ms"] == t])
        for c in codecs
        for t in ttfts
    }
    overall = summarize(rows)
    return {
        "benchmark": "latency",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "conversations": len(rows),
        "failed_conversations": sum(1 for r in rows if "error" in r),
        "end_of_speech_timeout_ms": eos_ms,
        "ttft_ms": ttfts,
        "codecs": codecs,
        "overall": overall,
        "by_case": by,
        "goals": {"after_endpoint_p50_ms": 40},
        "server_loop_lag_ms": server_lag,
        "generator_loop_lag_ms": generator_lag,
        "calls": rows,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(result["by_case"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    v2v = [result["by_case"][c]["voice_to_voice_ms"]["p50"] for c in cases]
    after = [result["by_case"][c]["after_endpoint_wire_ms"]["p50"] for c in cases]
    x = np.arange(len(cases))
    ax1.bar(x - 0.2, v2v, 0.4, label="voice-to-voice p50 (last caller packet → first audible agent packet)")
    ax1.bar(x + 0.2, after, 0.4, label="after endpoint p50 (decision → first agent packet)")
    ax1.axhline(40, color="red", linestyle="--", linewidth=1, label="40 ms goal (after endpoint)")
    ax1.set_xticks(x, cases, rotation=20, fontsize=8)
    ax1.set_ylabel("ms at the caller's socket")
    ax1.legend(fontsize=7)
    ax1.set_title("Per codec and LLM time to first token")
    stages = result["overall"]["server_stage_median_ms"]
    names = [s for s in stages if stages[s] is not None]
    ax2.barh(names, [stages[s] for s in names], color="#228833")
    ax2.set_xlabel("median ms after the caller's last voiced sample (after_endpoint: after the decision)")
    ax2.set_title("Server stages (all turns)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ttft-ms", default="0,200,500", help="scripted LLM times to first token")
    parser.add_argument("--codecs", default="PCMU,opus")
    parser.add_argument("--repeat", type=int, default=1, help="conversations per codec and TTFT")
    parser.add_argument("--eos-ms", type=int, default=700, help="end_of_speech_timeout of the ai verb")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    result = asyncio.run(
        run([int(x) for x in args.ttft_ms.split(",")], args.codecs.split(","), args.repeat, args.eos_ms)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / "latency.png")
    print(json.dumps({k: v for k, v in result.items() if k != "calls"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
