"""Media-plane capacity: how many idle-audio PCMU calls one server process holds on one core.

Theory of operation: a real `mediaserver serve` (benchmarks/config/capacity.toml: every call
answers and holds, sending 20 ms frames of silence; shipped defaults otherwise, the load
generator's address a configured trunk) is pinned to one core and the load generator
(benchmarks/loadgen.py, this process) to another. Each repeat ramps up through the levels,
adding calls (in batches of 20 INVITEs in flight) to reach each level, lets them settle, then
holds for `hold_s` while the generator records every server packet with its kernel receive
time. After a repeat every call hangs up and the server is let go idle before the next one.

Per level (benchmarks/capacity_wire.py for the wire): late frames (one definition, over 20 ms
after the due time), missing frames, RFC 3550 jitter p99 over calls, the server ticker's own
late count (its 2 ms threshold, named apart), server CPU per call-second, RSS, setup time and
the generator's own loop lag. Rules, checked at every level of every repeat:

* `setup_failed == 0`: every INVITE of the level answered 200;
* `late_frames_at_wire == 0`;
* `missing_frames_at_wire == 0`;
* `jitter_ms_p99 <= 5`;
* `generator_loop_lag_ms_p99 <= 10` and `generator_socket_drops == 0` (SO_RXQ_OVFL): the load
  generator kept up (when one of these breaks, the generator, not the server, was the limit of
  the run; a missing frame counted while the generator dropped packets may be the generator's).

A repeat stops after the first level where a rule breaks (that level is still recorded), unless
`stop_at_break` is off (`--keep-going`): then every level is measured, to see the trend.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.capacity_common import (
    TICKER_LATE_DEFINITION,
    Rule,
    cpu_seconds,
    find_limit,
    level_bar,
    pinning,
    plot_style,
    rss_mb,
    rules_dict,
    scrape,
    slope,
    ticker_late,
    wait_idle,
)
from benchmarks.capacity_wire import JITTER_DEFINITION, LATE_DEFINITION, analyse_call, summarise
from benchmarks.loadgen import LoadCall, LoadGenerator
from benchmarks.stats import describe
from tests.support.server import ServerProcess

CONFIG = Path(__file__).parent / "config" / "capacity.toml"
JITTER_P99_LIMIT_MS = 5.0
GENERATOR_LAG_LIMIT_MS = 10.0
BATCH = 20


@dataclass(frozen=True)
class MediaOptions:
    levels: tuple[int, ...] = (50, 100, 150, 200, 250, 300, 350, 400)
    repeats: int = 3
    hold_s: float = 10.0
    settle_s: float = 1.0
    stop_at_break: bool = True  # end a repeat at the first level that breaks a rule
    server_cpus: frozenset[int] | None = frozenset({0})
    load_cpus: frozenset[int] | None = frozenset({1})


async def _fill(gen: LoadGenerator, active: list[LoadCall], level: int) -> dict[str, Any]:
    """Place calls until `level` are up; returns setup facts of the calls placed."""
    setup_ms: list[float] = []
    failed = 0
    t0 = time.monotonic()
    while len(active) + failed < level:
        batch = min(BATCH, level - len(active) - failed)
        for call in await asyncio.gather(*(gen.try_place() for _ in range(batch))):
            if call.status == 200:
                setup_ms.append((call.answered_ns - call.invite_sent_ns) / 1e6)
                active.append(call)
            else:
                failed += 1
    elapsed = time.monotonic() - t0
    return {
        "setup_failed": failed,
        "setup_ms": describe(setup_ms),
        "setup_calls_per_s": round(len(setup_ms) / elapsed, 1) if elapsed > 0 else None,
    }


async def _level(
    server: ServerProcess, gen: LoadGenerator, active: list[LoadCall], level: int, opts: MediaOptions
) -> dict[str, Any]:
    assert server.proc is not None
    pid = server.proc.pid
    setup = await _fill(gen, active, level)
    await asyncio.sleep(opts.settle_s)  # jitter buffers prime, the first RTCP goes out
    before = scrape(server.http_port)
    gen.record(True)
    drops0 = gen.rtp_socket_drops
    cpu0, wall0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(opts.hold_s)
    cpu, wall = cpu_seconds(pid) - cpu0, time.monotonic() - wall0
    gen.record(False)
    after = scrape(server.http_port)
    wire = summarise([analyse_call(c.arrivals) for c in active])
    lag = np.array(gen.loop_lag_ns, dtype=np.float64) / 1e6
    calls = len(active)
    row: dict[str, Any] = {
        "calls": calls,
        "hold_s": round(wall, 2),
        **setup,
        "late_frames_at_wire": wire["late_frames"],
        "lateness_ms_max": wire["lateness_ms_max"],
        "missing_frames_at_wire": wire["missing_frames"],
        "jitter_ms_p50": wire["jitter_ms_p50"],
        "jitter_ms_p99": wire["jitter_ms_p99"],
        "jitter_ms_max": wire["jitter_ms_max"],
        "calls_measured": wire["calls_measured"],
        "packets_received": wire["packets_received"],
        "packets_expected": int(calls * wall / 0.02),
        "server_ticker_late_frames": int(ticker_late(after) - ticker_late(before)),
        "server_cpu_percent_of_core": round(100 * cpu / wall, 1),
        "server_cpu_ms_per_call_second": round(1000 * cpu / wall / calls, 3) if calls else None,
        "server_rss_mb": round(rss_mb(pid), 1),
        "generator_loop_lag_ms_p99": round(float(np.percentile(lag, 99)), 3) if len(lag) else None,
        "generator_socket_drops": gen.rtp_socket_drops - drops0,
    }
    rules = [
        Rule("setup_failed", setup["setup_failed"], 0),
        Rule("late_frames_at_wire", wire["late_frames"], 0),
        Rule("missing_frames_at_wire", wire["missing_frames"], 0),
        Rule("jitter_ms_p99", wire["jitter_ms_p99"], JITTER_P99_LIMIT_MS),
        Rule("generator_loop_lag_ms_p99", row["generator_loop_lag_ms_p99"], GENERATOR_LAG_LIMIT_MS),
        Rule("generator_socket_drops", row["generator_socket_drops"], 0),
    ]
    row["rules"] = rules_dict(rules)
    return row


async def _ramp(server: ServerProcess, opts: MediaOptions) -> list[dict[str, Any]]:
    gen = LoadGenerator(("127.0.0.1", server.sip_port), user="idle")
    await gen.start()
    rows: list[dict[str, Any]] = []
    try:
        with level_bar(opts.repeats * len(opts.levels), "media levels") as bar:
            for repeat in range(1, opts.repeats + 1):
                active: list[LoadCall] = []
                try:
                    for level in opts.levels:
                        row = {"level": level, "repeat": repeat} | await _level(server, gen, active, level, opts)
                        rows.append(row)
                        print(_brief(row), file=sys.stderr)
                        if bar is not None:
                            bar.update(1)
                        if opts.stop_at_break and not all(r["holds"] for r in row["rules"].values()):
                            break
                finally:
                    await gen.hang_up_all(active)
                    for call in active:
                        gen.forget(call)
                    if not (await asyncio.to_thread(wait_idle, server.http_port))["idle"]:
                        print("server did not go idle after the repeat", file=sys.stderr)
    finally:
        await gen.stop()
    return rows


def _brief(row: dict[str, Any]) -> str:
    broken = [k for k, r in row["rules"].items() if not r["holds"]]
    return (
        f"repeat {row['repeat']} calls {row['calls']}: late {row['late_frames_at_wire']} missing "
        f"{row['missing_frames_at_wire']} jitter p99 {row['jitter_ms_p99']} ms "
        f"cpu {row['server_cpu_percent_of_core']}% "
        f"ticker late {row['server_ticker_late_frames']}" + (f" BROKE {broken}" if broken else "")
    )


def run(opts: MediaOptions) -> dict[str, Any]:
    import uvloop

    from benchmarks.ai_harness import provenance

    server = ServerProcess(
        config=CONFIG, rtp_base=51000 + (os.getpid() % 8) * 1000, rtp_ports=max(opts.levels) + 20, log_level="WARNING"
    ).start()
    try:
        assert server.proc is not None
        # Threads started later (the event loop's executor) inherit the pinned main thread's mask.
        pins = pinning(
            server.proc.pid,
            set(opts.server_cpus) if opts.server_cpus else None,
            set(opts.load_cpus) if opts.load_cpus else None,
        )
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            rows = runner.run(_ramp(server, opts))
    finally:
        server.stop()
    limit = find_limit(rows)
    rss = [(r["calls"], r["server_rss_mb"]) for r in rows]
    cpu = [(r["calls"], r["server_cpu_percent_of_core"]) for r in rows]
    rss_slope = slope([c for c, _ in rss], [m for _, m in rss])
    cpu_slope = slope([c for c, _ in cpu], [p for _, p in cpu])
    return {
        "benchmark": "capacity",
        "mode": "media",
        "schema": 2,
        "what": "idle-audio PCMU calls (answer + hold), one server process: RTP in and out, jitter buffer, G.711",
        "provenance": provenance(),
        "pinning": pins,
        "server_settings": "shipped defaults; overrides: routes -> idle.yaml, [sip.trunks] load = 127.0.0.1",
        "options": {
            "levels": list(opts.levels),
            "repeats": opts.repeats,
            "hold_s": opts.hold_s,
            "settle_s": opts.settle_s,
            "stop_at_break": opts.stop_at_break,
        },
        "definitions": {
            "late_frame_at_wire": LATE_DEFINITION,
            "jitter": JITTER_DEFINITION,
            "server_ticker_late_frames": TICKER_LATE_DEFINITION,
            "server_cpu_ms_per_call_second": (
                "server utime+stime (all threads, /proc/<pid>/stat) over the hold / hold seconds / calls"
            ),
            "rss_mb_per_call": (
                "least-squares slope of the server's VmRSS after each hold against its calls, all levels and repeats"
            ),
            "cpu_percent_per_call": "least-squares slope of server CPU (% of one core) against calls",
            "setup_calls_per_s": "answered calls placed at the level / time to place them, 20 INVITEs in flight",
            "missing_frame_at_wire": "an RTP timestamp between a call's first and last received that no packet carried",
        },
        "rules": {
            "setup_failed": "== 0",
            "late_frames_at_wire": "== 0",
            "missing_frames_at_wire": "== 0",
            "jitter_ms_p99": f"<= {JITTER_P99_LIMIT_MS}",
            "generator_loop_lag_ms_p99": f"<= {GENERATOR_LAG_LIMIT_MS} (the load generator kept up)",
            "generator_socket_drops": "== 0 (no server packet lost in the generator's socket buffer)",
        },
        "levels": rows,
        "calls_on_one_core": limit["limit"],
        "limit": limit,
        "rss_mb_per_call": round(rss_slope, 4) if rss_slope is not None else None,
        "cpu_percent_per_call": round(cpu_slope, 4) if cpu_slope is not None else None,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    plt = plot_style()
    rows = result["levels"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for repeat in sorted({r["repeat"] for r in rows}):
        mine = [r for r in rows if r["repeat"] == repeat]
        xs = [r["calls"] for r in mine]
        ax1.plot(xs, [r["jitter_ms_p99"] for r in mine], "o-", label=f"jitter p99, repeat {repeat}")
        ax1.plot(xs, [r["lateness_ms_max"] for r in mine], "x:", label=f"lateness max, repeat {repeat}")
        ax2.plot(xs, [r["server_cpu_percent_of_core"] for r in mine], "o-", label=f"CPU, repeat {repeat}")
    ax1.axhline(JITTER_P99_LIMIT_MS, color="red", linestyle="--", linewidth=1, label="jitter limit 5 ms")
    ax1.axhline(20.0, color="black", linestyle="--", linewidth=1, label="late: 20 ms")
    ax1.set_yscale("symlog", linthresh=1.0)
    ax1.set_xlabel("concurrent calls (server pinned to one core)")
    ax1.set_ylabel("ms at the wire (kernel receive time)")
    ax1.legend(fontsize=7)
    lim = result["limit"]
    broke = ", ".join(lim["rules_broken_at_next_level"]) or "none"
    title = f"calls on one core: {result['calls_on_one_core']}; broke at {lim['broke_at']}: {broke}"
    ax1.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=8)
    ax2.set_xlabel("concurrent calls")
    ax2.set_ylabel("server CPU, % of one core")
    ax2.set_title(f"RSS {result['rss_mb_per_call']} MB/call; CPU {result['cpu_percent_per_call']} %/call", fontsize=9)
    ax2.legend(fontsize=7)
    prov = result["provenance"]
    fig.suptitle(
        f"media capacity, {prov.get('commit')}{' (dirty)' if prov.get('dirty') else ''}, {prov.get('cpu_model')}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
