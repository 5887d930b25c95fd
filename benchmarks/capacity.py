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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.loadgen import LoadGenerator
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


async def _ramp(server: ServerProcess, levels: list[int], hold_s: float) -> list[dict[str, Any]]:
    assert server.proc is not None
    pid = server.proc.pid
    gen = LoadGenerator(("127.0.0.1", server.sip_port), user="idle")
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
            gen.record(True)
            cpu0, wall0 = _cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(hold_s)
            cpu, wall = _cpu_seconds(pid) - cpu0, time.monotonic() - wall0
            gen.record(False)
            health = server.get("/health")
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
            }
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
            if (row["deviation_ms_p99"] or 0) > 2.0 or row["late_frames_at_wire"] > 0:
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
    parser.add_argument("--levels", default="25,50,100,200,300,400", help="concurrent call counts to ramp through")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds measured at each level")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    server = ServerProcess(config=CONFIG, rtp_ports=max(levels) + 20, log_level="WARNING").start()
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            rows = runner.run(_ramp(server, levels, args.hold))
    finally:
        server.stop()
    ok = [r["calls"] for r in rows if (r["deviation_ms_p99"] or 0) <= 2.0 and r["late_frames_at_wire"] == 0]
    result = {
        "benchmark": "capacity",
        "mode": "media plane (RTP, jitter buffer, G.711, ticker)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "levels": rows,
        "calls_per_core": max(ok) if ok else 0,
        "limit_reached": len(ok) < len(rows),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "capacity.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "capacity.png")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
