"""Barge-in at the wire: interruptions at random points, coughs and backchannels, heard text.

    python -m benchmarks.bargein [--calls 50] [--false-calls 2] [--ttft-ms 150] [--out benchmarks/results]

Theory of operation: one real `mediaserver serve` process answers every call with the `ai` verb
and the scripted LLM (in this process) greets with a long reply. Two kinds of calls:

* interruptions (`--calls`): after a random 0.8-3.0 s of agent speech the caller says "Wait, are
  you open on Sunday" (espeak-ng, PCMU). Measured at the caller's socket: barge-in onset (first
  caller frame sent with speech energy) -> the last agent packet that is not digital silence
  (goal p95 <= 120 ms); frames sent after the server's decision, two ways: (a) agent audio
  packets that arrived after the server logged `barge_paused` (the decision tick; inbound runs
  before outbound in a tick, so the decision tick's own frame must already be silence), and (b)
  the pause's `cursor` (queued samples played when it paused) against the queued-audio frames
  the caller received before the agent went quiet (skipped when the playout under-ran, which
  inserts idle frames the cursor does not count); both must be 0. Heard-text accuracy: the agent
  audio received up to the cut is transcribed (whisper tiny.en) and its word count compared with
  the words the server kept in the LLM history (`barge_flushed.heard_words`), right within one word.
* false barge-in probes (`--false-calls` each): a backchannel ("uh-huh"), a cough, and a 300 ms
  noise burst during agent speech. A false barge-in is a flushed reply (the agent stopped for
  good); a pause that resumed is reported separately (audible as a short gap).

Progress on stderr, summary JSON on stdout and benchmarks/results/bargein.json, plot bargein.png;
the generator's own loop lag is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ai_harness import (
    AiCaller,
    LoopLag,
    call_events,
    cough,
    espeak_8k,
    mono_to_wall,
    pct,
    provenance,
    write_config,
)
from benchmarks.ai_harness import server as run_server
from benchmarks.progress import progress
from benchmarks.stats import P95_MIN_N

LONG_REPLY = (
    "Thanks for calling the test line. We are open from nine in the morning until five in the "
    "evening from Monday to Friday, and from ten until two on Saturday. We are closed on Sunday "
    "and on public holidays, but you can always leave a message on our website."
)
FRAME = 160  # PCMU samples per packet
SLACK_NS = 2_000_000  # clock alignment between the server's log time and our monotonic clock


def noise_burst(ms: int = 300, seed: int = 9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, 8000 * ms // 1000) * 6000).astype(np.int16)


async def _call(sip_port: int, rng: random.Random, stimulus: np.ndarray, *, reply_after: bool) -> dict[str, Any]:
    """Place a call, play `stimulus` during the greeting; return the caller and what it saw."""
    caller = AiCaller(("127.0.0.1", sip_port), user="ai")
    await caller.open()
    offset = mono_to_wall()
    said, failure = 0, None
    try:
        answer = await caller.call()
        if answer.status != 200:
            raise AssertionError(f"call answered {answer.status}")
        await caller.start_media()
        await caller.wait_agent(speaking_ms=int(rng.uniform(800, 3000)))
        said = len(caller.sent_speech_ns)
        caller.say(stimulus)
        await caller.until_said()
        if reply_after:
            await caller.wait_agent(speaking_ms=300, since_ns=time.monotonic_ns())  # the next reply started
        else:
            await asyncio.sleep(2.0)  # a false barge-in would have flushed by now
        await caller.stop_media()
        await caller.hangup()
    except (TimeoutError, AssertionError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(Exception):
            await caller.stop_media()
        caller.close()
    onset = caller.sent_speech_ns[said] if len(caller.sent_speech_ns) > said else None
    return {"caller": caller, "offset": offset, "onset_ns": onset, "error": failure}


def measure_interrupt(
    caller: AiCaller, events: list[dict[str, Any]], offset: float, onset_ns: int | None
) -> dict[str, Any]:
    """Wire-side barge-in numbers of one interrupted call (see the module docstring)."""
    out: dict[str, Any] = {}
    frames = caller.agent_frames()  # (arrival ns, peak, marker); digital silence has peak 0
    paused = [e for e in events if e["event"] == "barge_paused"]
    flushed = [e for e in events if e["event"] == "barge_flushed"]
    if onset_ns is None or not paused:
        out["missed"] = True
        return out
    last = None
    for t, peak, _ in frames:
        if t < onset_ns:
            continue
        if peak > 0:
            last = t
        elif last is not None or t > onset_ns + 1_000_000_000:
            break
    out["onset_to_last_packet_ms"] = round((last - onset_ns) / 1e6, 1) if last else 0.0
    decision_ns = (paused[0]["ts"] - offset) * 1e9
    out["onset_to_decision_ms"] = round((decision_ns - onset_ns) / 1e6, 1)
    # The next reply starts a new talkspurt: only packets before it belong to the cut reply.
    next_reply = next((t for t, _, m in frames if m and t > decision_ns), math.inf)
    out["frames_after_decision"] = sum(
        1 for t, peak, _ in frames if decision_ns - SLACK_NS < t < next_reply and peak > 0
    )
    # Cursor check: queued-audio frames received from the greeting's first frame to the cut.
    first = next((i for i, (_, _, m) in enumerate(frames) if m), None)
    cursor = paused[0].get("cursor")
    if first is not None and isinstance(cursor, int):
        cut = [i for i, (t, peak, _) in enumerate(frames) if peak > 0 and t < next_reply]
        spurts = sum(1 for t, _, m in frames[first : cut[-1] + 1] if m) if cut else 0
        if cut and spurts == 1:
            out["cursor_frames_after_decision"] = (cut[-1] - first + 1) - math.ceil(cursor / FRAME)
        else:
            out["cursor_check"] = "skipped: the playout under-ran (more than one talkspurt)"
    if flushed:
        first_audio = next((t for t, peak, _ in frames if peak > 0), None)
        if first_audio is not None:
            out["heard_audio"] = caller.agent_audio(first_audio - 1, last or onset_ns)
        out["heard_words_server"] = flushed[0].get("heard_words")
        out["heard_text_server"] = flushed[0].get("heard_text")
    return out


async def run(calls: int, false_calls: int, ttft_ms: int, eos_ms: int, seed: int = 1) -> dict[str, Any]:
    from tests.support.llm_server import ScriptedLlmServer, Turn
    from tests.support.speech import transcribe, words, write_wav

    rng = random.Random(seed)
    interrupt = espeak_8k("Wait, are you open on Sunday")
    probes = {"backchannel": espeak_8k("uh-huh"), "cough": cough(), "noise_burst": noise_burst()}
    script = [Turn(text=LONG_REPLY, ttft_s=ttft_ms / 1000, token_delay_s=0.01)]
    interrupts: list[dict[str, Any]] = []
    false_rows: list[dict[str, Any]] = []
    lag = LoopLag()
    with tempfile.TemporaryDirectory(prefix="bargein-") as tmp_name:
        tmp = Path(tmp_name)
        async with ScriptedLlmServer(script, loop_script=True) as llm:
            config = write_config(tmp, llm.base_url, eos_ms=eos_ms)
            with run_server(config) as server:
                lag.start()
                for i in progress(range(calls), desc="interruptions"):
                    seen = await _call(server.sip_port, rng, interrupt, reply_after=True)
                    await asyncio.sleep(0.3)
                    events = call_events(tmp, seen["caller"].call_id)
                    row = measure_interrupt(seen["caller"], events, seen["offset"], seen["onset_ns"])
                    row["error"] = seen["error"]
                    interrupts.append(row)
                    print(
                        json.dumps({"interrupt": i, **{k: v for k, v in row.items() if k != "heard_audio"}}),
                        file=sys.stderr,
                    )
                for kind, pcm in probes.items():
                    for _ in progress(range(false_calls), desc=f"{kind} probes"):
                        seen = await _call(server.sip_port, rng, pcm, reply_after=False)
                        await asyncio.sleep(0.3)
                        log = call_events(tmp, seen["caller"].call_id)
                        events = [e["event"] for e in log]
                        row = {
                            "probe": kind,
                            "paused": events.count("barge_paused"),
                            "resumed": events.count("barge_resumed"),
                            "flushed": events.count("barge_flushed"),
                            "pause_ms": _pause_ms(log),
                            "error": seen["error"],
                        }
                        false_rows.append(row)
                        print(json.dumps(row), file=sys.stderr)
                server_lag = server.get("/health").get("loop_lag_ms")
                generator_lag = await lag.stop()
        # Whisper runs after the calls: it would stall the generator's loop while calls are live.
        for i, row in enumerate(interrupts):
            audio = row.pop("heard_audio", None)
            if audio is not None and len(audio):
                wav = write_wav(tmp / f"heard{i}.wav", audio, 8000)
                row["heard_text_wire"] = transcribe(wav)
                row["heard_words_wire"] = len(words(row["heard_text_wire"]))
                print(
                    json.dumps(
                        {
                            "interrupt": i,
                            "heard_text_wire": row["heard_text_wire"],
                            "heard_text_server": row.get("heard_text_server"),
                        }
                    ),
                    file=sys.stderr,
                )
    return summarize(interrupts, false_rows, ttft_ms, eos_ms, server_lag, generator_lag)


def _pause_ms(log: list[dict[str, Any]]) -> float | None:
    """How long the agent stayed paused before resuming (the audible gap of a false start), ms."""
    paused = next((e for e in log if e["event"] == "barge_paused"), None)
    resumed = next((e for e in log if e["event"] == "barge_resumed"), None)
    if paused is None or resumed is None:
        return None
    return round((resumed["caller_sample"] - paused["caller_sample"]) / 16, 1)  # 16 kHz caller clock


def summarize(
    interrupts: list[dict[str, Any]],
    false_rows: list[dict[str, Any]],
    ttft_ms: int,
    eos_ms: int,
    server_lag: Any,
    generator_lag: Any,
) -> dict[str, Any]:
    barge = [r["onset_to_last_packet_ms"] for r in interrupts if "onset_to_last_packet_ms" in r]
    decision = [r["onset_to_decision_ms"] for r in interrupts if "onset_to_decision_ms" in r]
    heard = [r for r in interrupts if "heard_words_wire" in r and r.get("heard_words_server") is not None]
    right = [r for r in heard if abs(r["heard_words_wire"] - r["heard_words_server"]) <= 1]
    cursor = [r["cursor_frames_after_decision"] for r in interrupts if "cursor_frames_after_decision" in r]
    probes: dict[str, Any] = {}
    for row in false_rows:
        p = probes.setdefault(
            row["probe"], {"calls": 0, "false_barge_ins": 0, "paused_then_resumed": 0, "max_pause_ms": None}
        )
        p["calls"] += 1
        if row.get("pause_ms") is not None:
            p["max_pause_ms"] = max(p["max_pause_ms"] or 0.0, row["pause_ms"])
        p["false_barge_ins"] += 1 if row["flushed"] else 0
        p["paused_then_resumed"] += 1 if row["paused"] and not row["flushed"] else 0
    return {
        "benchmark": "bargein",
        **provenance(),  # the commit and CPU the result ran on
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "interruptions": len(interrupts),
        "missed_barge_ins": sum(1 for r in interrupts if r.get("missed")),
        "failed_calls": sum(1 for r in interrupts + false_rows if r.get("error")),
        "ttft_ms": ttft_ms,
        "end_of_speech_timeout_ms": eos_ms,
        "onset_to_last_packet_ms": {
            "n": len(barge),
            "p50": pct(barge, 0.5),
            "p95": pct(barge, 0.95) if len(barge) >= P95_MIN_N else None,  # the max stands in below
            "max": round(max(barge), 1) if barge else None,
        },
        "onset_to_decision_ms": {
            "n": len(decision),
            "p50": pct(decision, 0.5),
            "p95": pct(decision, 0.95) if len(decision) >= P95_MIN_N else None,
        },
        "frames_after_decision": {
            "total": sum(r.get("frames_after_decision", 0) for r in interrupts),
            "cursor_total": sum(cursor),
            "cursor_checked_calls": len(cursor),
        },
        "heard_text_within_one_word": {"n": len(heard), "share": round(len(right) / len(heard), 3) if heard else None},
        "false_barge_in_probes": probes,
        "goals": {"onset_to_last_packet_p95_ms": 120, "frames_after_decision": 0},
        "server_loop_lag_ms": server_lag,
        "generator_loop_lag_ms": generator_lag,
        "calls": interrupts,
        "probe_calls": false_rows,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    rows = [r for r in result["calls"] if "onset_to_last_packet_ms" in r]
    ax1.scatter([r["onset_to_decision_ms"] for r in rows], [r["onset_to_last_packet_ms"] for r in rows])
    ax1.axhline(120, color="red", linestyle="--", linewidth=1, label="120 ms goal (p95)")
    ax1.set_xlabel("onset → server decision (ms)")
    ax1.set_ylabel("onset → last agent packet at the wire (ms)")
    ax1.set_title(f"Interruptions (frames after decision: {result['frames_after_decision']['total']})")
    ax1.legend()
    probes = result["false_barge_in_probes"]
    names = list(probes)
    x = np.arange(len(names))
    ax2.bar(x - 0.2, [probes[n]["false_barge_ins"] for n in names], 0.4, label="false barge-in (flushed)")
    ax2.bar(x + 0.2, [probes[n]["paused_then_resumed"] for n in names], 0.4, label="paused, then resumed")
    ax2.set_xticks(x, [f"{n} ({probes[n]['calls']} calls)" for n in names])
    ax2.set_title("Coughs and backchannels during agent speech")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=50, help="interrupted calls (the goal is judged over 50)")
    parser.add_argument("--false-calls", type=int, default=2, help="calls per false barge-in probe")
    parser.add_argument("--ttft-ms", type=int, default=150)
    parser.add_argument("--eos-ms", type=int, default=700)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.calls, args.false_calls, args.ttft_ms, args.eos_ms))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bargein.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / "bargein.png")
    print(json.dumps({k: v for k, v in result.items() if k not in ("calls", "probe_calls")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
