"""Capacity of one server process: ramp concurrent calls until pacing degrades at the wire.

    python -m benchmarks.capacity [--levels 25,50,100,200,300,400] [--hold 5] [--out benchmarks/results]

A real `mediaserver serve` process (one event loop, so one core) answers every call with an
idle-audio SWML document (answer, then hold), so what is measured is the media plane: RTP in
and out, jitter buffer, G.711 decode and encode, the 20 ms ticker. The load generator
(benchmarks/loadgen.py) holds all calls from one process, sends 50 packets a second per call
and timestamps the server's packets in the kernel. At each level it reports the deviation of
the server's packets from their 20 ms grid (p50/p99/max), frames later than one frame, the
server's CPU (share of one core, and per call), its RSS growth per call, call setup time, and
the generator's own loop lag. The ramp stops at the first level where p99 exceeds 2 ms or any
frame is late; "calls per core" is the last level before that.

    python -m benchmarks.capacity --mode ai [--levels 1,2,4,6,8,12] [--hold 10]

With ASR+TTS (`--mode ai`, written to capacity_ai.json/png): every call goes to the `ai` verb
(scripted LLM, answering at once, in a thread of this process) and every caller speaks a
question every 4 s (espeak-ng, staggered per call), so each call runs VAD, whisper ASR passes,
an LLM request and Piper TTS on top of the media plane. Per level it also reports the turns the
server completed during the hold and the mean in-server voice-to-voice time (caller's last
voiced sample -> reply's first frame sent, from the `/metrics` histograms), which shows where
the engines, not the ticker, give out first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.loadgen import LoadGenerator
from mscodecs import make_codec
from tests.support.server import ServerProcess

CONFIG = Path(__file__).parent / "config" / "capacity.toml"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _scrape(server: ServerProcess) -> dict[str, float]:
    """The server's /metrics samples by name and labels (Prometheus text format)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _turn_stats(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    count = delta('mediaserver_turn_stage_seconds_count{stage="first_agent_frame"}')
    total = delta('mediaserver_turn_stage_seconds_sum{stage="first_agent_frame"}')
    return {
        "turns_completed": int(delta("mediaserver_turns_total")),
        "voice_to_voice_server_ms_mean": round(1000 * total / count, 1) if count else None,
    }


def speech_payloads(cycle_s: float = 4.0) -> list[bytes]:
    """PCMU payloads of one caller cycle: a spoken question, then silence to `cycle_s`."""
    from benchmarks.ai_harness import espeak_8k

    pcm = espeak_8k("Are you open on Sunday?")
    total = int(cycle_s * 8000)
    pcm = np.concatenate([pcm[:total], np.zeros(max(0, total - len(pcm)), np.int16)])
    codec = make_codec("PCMU")
    return [codec.encode(pcm[i : i + 160]) for i in range(0, total - 159, 160)]


async def _ramp(
    server: ServerProcess,
    levels: list[int],
    hold_s: float,
    user: str = "idle",
    talk: list[bytes] | None = None,
    stop_on_degrade: bool = True,
) -> list[dict[str, Any]]:
    assert server.proc is not None
    pid = server.proc.pid
    gen = LoadGenerator(("127.0.0.1", server.sip_port), user=user)
    gen.talk = talk or []
    await gen.start()
    baseline_rss = _rss_mb(pid)
    results: list[dict[str, Any]] = []
    active = []
    try:
        for level in levels:
            setup_ms = []
            t0 = time.monotonic()
            while len(active) < level:
                batch = min(20, level - len(active))
                calls = await asyncio.gather(*(gen.place() for _ in range(batch)))
                for call in calls:
                    setup_ms.append((call.answered_ns - call.invite_sent_ns) / 1e6)
                active.extend(calls)
            setup_rate = len(setup_ms) / max(1e-9, time.monotonic() - t0)
            await asyncio.sleep(1.0)  # let jitter buffers prime and the first RTCP go out
            health0 = server.get("/health")
            metrics0 = _scrape(server) if talk else {}
            gen.record(True)
            cpu0, wall0 = _cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(hold_s)
            cpu, wall = _cpu_seconds(pid) - cpu0, time.monotonic() - wall0
            gen.record(False)
            health = server.get("/health")
            turns = _turn_stats(metrics0, _scrape(server)) if talk else {}
            dev = gen.deviations_ms()
            lag = np.array(gen.loop_lag_ns, dtype=np.float64) / 1e6
            row = {
                "calls": level,
                "deviation_ms_p50": round(float(np.percentile(dev, 50)), 3) if len(dev) else None,
                "deviation_ms_p99": round(float(np.percentile(dev, 99)), 3) if len(dev) else None,
                "deviation_ms_max": round(float(dev.max()), 3) if len(dev) else None,
                "late_frames_at_wire": int((dev > 20.0).sum()),
                "server_ticker_late_frames": health["tick"]["late_frames"] - health0["tick"]["late_frames"],
                "packets_received": gen.packets_received(),
                "packets_expected": int(level * wall / 0.02),
                "server_cpu_percent_of_core": round(100 * cpu / wall, 1),
                "server_cpu_ms_per_call_second": round(1000 * cpu / wall / level, 3),
                "server_rss_mb": round(_rss_mb(pid), 1),
                "rss_mb_per_call": round((_rss_mb(pid) - baseline_rss) / level, 3),
                "setup_ms_p50": round(float(np.percentile(setup_ms, 50)), 2) if setup_ms else None,
                "setup_calls_per_s": round(setup_rate, 1),
                "generator_loop_lag_ms_p99": round(float(np.percentile(lag, 99)), 3) if len(lag) else None,
                **turns,
            }
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
            degraded = (row["deviation_ms_p99"] or 0) > 2.0 or row["late_frames_at_wire"] > 0
            # With ASR+TTS the few levels are all run: how pacing and replies degrade is the point.
            if degraded and (stop_on_degrade or row["packets_received"] < 0.5 * row["packets_expected"]):
                break
    finally:
        for call in active:
            gen.hang_up(call)
        await asyncio.sleep(0.5)
        await gen.stop()
    return results


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["levels"]
    calls = [r["calls"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax1.plot(calls, [r["deviation_ms_p50"] for r in rows], "o-", label="p50")
    ax1.plot(calls, [r["deviation_ms_p99"] for r in rows], "o-", label="p99")
    ax1.axhline(2.0, color="red", linestyle="--", linewidth=1, label="2 ms limit")
    ax1.set_xlabel("concurrent calls (one server process)")
    ax1.set_ylabel("server packet deviation from 20 ms grid at the wire (ms)")
    ax1.legend()
    ax1.set_title("Pacing under load")
    ax2.plot(calls, [r["server_cpu_percent_of_core"] for r in rows], "o-", color="#aa3377", label="server CPU %")
    ax2.set_xlabel("concurrent calls")
    ax2.set_ylabel("% of one core")
    ax3 = ax2.twinx()
    ax3.plot(calls, [r["server_rss_mb"] for r in rows], "s--", color="#228833", label="RSS MB")
    ax3.set_ylabel("server RSS (MB)")
    ax2.set_title(f"calls per core ≈ {result['calls_per_core']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--mode",
        choices=("media", "ai"),
        default="media",
        help="media plane only, or with ASR+TTS (calls into the ai verb, callers speaking)",
    )
    parser.add_argument(
        "--levels",
        help="concurrent call counts to ramp through (default 25,50,100,200,300,400; with --mode ai 1,2,4,6,8,12)",
    )
    parser.add_argument("--hold", type=float, help="seconds measured at each level (default 5; ai 10)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    ai = args.mode == "ai"
    levels = [int(x) for x in (args.levels or ("1,2,4,6,8,12" if ai else "25,50,100,200,300,400")).split(",")]
    hold = args.hold if args.hold is not None else (10.0 if ai else 5.0)
    with contextlib.ExitStack() as stack:
        config, talk = CONFIG, None
        if ai:
            from benchmarks.ai_harness import write_config
            from tests.support.llm_server import ScriptedLlmServer, Turn

            llm = stack.enter_context(
                ScriptedLlmServer([Turn(text="Yes, we are open until two.")], loop_script=True).running()
            )
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="capacity-ai-")))
            config, talk = write_config(tmp, llm.base_url), speech_payloads()
        # RTP ports above the test servers' 30000-50000 ranges, so a suite running beside us
        # cannot take ports this ramp needs (a busy port pool answers 503).
        server = ServerProcess(
            config=config, rtp_base=51000 + (os.getpid() % 8) * 1000, rtp_ports=max(levels) + 20, log_level="WARNING"
        ).start()
        try:
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                rows = runner.run(
                    _ramp(server, levels, hold, user="ai" if ai else "idle", talk=talk, stop_on_degrade=not ai)
                )
        finally:
            server.stop()
    ok = [r["calls"] for r in rows if (r["deviation_ms_p99"] or 0) <= 2.0 and r["late_frames_at_wire"] == 0]
    degrades = next((r["calls"] for r in rows if r["calls"] not in ok), None)
    result = {
        "benchmark": "capacity",
        "mode": (
            "with ASR+TTS (ai verb, every caller speaking; VAD, whisper, scripted LLM, Piper)"
            if ai
            else "media plane (RTP, jitter buffer, G.711, ticker)"
        ),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "levels": rows,
        # The last level before the first degraded one (a later level that happens to pass does not count).
        "calls_per_core": max((c for c in ok if c < (degrades or math.inf)), default=0),
        "pacing_degrades_at_calls": degrades,
        "limit_reached": len(ok) < len(rows),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "capacity_ai" if ai else "capacity"
    (out / f"{name}.json").write_text(json.dumps(result, indent=2))
    plot(result, out / f"{name}.png")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
