"""Floods, measured: what an INVITE flood, a REGISTER/OPTIONS flood and garbage UDP do to live calls.

    python -m benchmarks.floods [--live-calls 50] [--seconds 20] [--rate 5000]
                                [--phases quiet,invite,register_options,garbage]
                                [--pin-server 0 --pin-flood 1] [--name floods]

A real `mediaserver serve` process with the shipped SIP security settings (per-source limit of
20 new out-of-dialog requests a second, burst 40, answered 503 + Retry-After beyond it) and a
port range the size of the shipped one (500 calls) holds `--live-calls` idle-audio calls from a
load generator on 127.0.0.1 (set up below the limit). Then, phase by phase, a flooder in its
own process (benchmarks/flood_sender.py, from 127.0.0.2) sends `--rate` datagrams a second for
`--seconds`: `quiet` sends nothing (the control: what this busy box does to the live calls
anyway), `invite` new INVITEs never ACKed, `register_options` REGISTERs and OPTIONS, `garbage`
random bytes to the SIP port and to the RTP port range. Per phase:

* the flood: rate asked and sent, the final status every request got (share answered 503);
* the live calls: late frames at the wire (a frame arriving over 20 ms after its due time on
  the call's 20 ms grid, kernel receive stamps at the load generator, relative to the call's
  best packet within the phase), media stalls (over 1 s without a packet), dropped calls (the
  server hung up), and the server ticker's own late frames and its CPU over the phase.

Before each phase the server is let settle until only the live calls are left (an INVITE
flood's admitted calls end 32 s after their unanswered 200 OK); dropped live calls are
replaced then. Prints JSON (with provenance) and writes <name>.json and <name>.png to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.loadgen import LoadCall, LoadGenerator
from benchmarks.progress import progress
from benchmarks.soak_probe import (
    TICKER_LATE,
    ProcessProbe,
    WireLateness,
    free_rtp_base,
    patiently,
    pin,
    scrape_metrics,
    server_config,
)
from tests.support.server import ServerProcess

# Startup loads the TTS engine; on this shared box under load that has taken over a minute.
STARTUP_TIMEOUT_S = 240.0

REPO = Path(__file__).resolve().parents[1]
PHASES = ("quiet", "invite", "register_options", "garbage")
SETTLE_TIMEOUT_S = 45.0
SETUP_PER_S = 10.0  # below the shipped per-source limit (20/s), so the live calls all get in


class Floods:
    def __init__(self, server: ServerProcess, args: argparse.Namespace) -> None:
        assert server.proc is not None
        self.server = server
        self.args = args
        self.probe = ProcessProbe(server.proc.pid)
        self.gen = LoadGenerator(("127.0.0.1", server.sip_port), user="idle")
        self.live: list[LoadCall] = []
        self.setup_failures: list[str] = []
        self.flood_cpus: list[int] | None = None

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await patiently(lambda: self.server.get("/health"))
        return result

    async def fill(self) -> None:
        """Place live calls up to --live-calls, below the per-source rate limit."""
        while len(self.live) < self.args.live_calls:
            call = await self.gen.try_place(timeout=10.0)
            if call.status == 200:
                self.live.append(call)
            else:
                self.gen.forget(call)
                self.setup_failures.append(f"status {call.status}" if call.status else "no final answer in 10 s")
                if len(self.setup_failures) > 3 * self.args.live_calls:
                    raise RuntimeError(f"cannot set up live calls: {self.setup_failures[-3:]}")
            await asyncio.sleep(1 / SETUP_PER_S)

    async def settle(self) -> dict[str, Any]:
        """Wait until the server holds only our live calls; replace live calls it dropped."""
        started = time.monotonic()
        while True:
            health = await self.health()
            ours = sum(not c.ended for c in self.live)
            if health["calls"] <= ours or time.monotonic() - started > SETTLE_TIMEOUT_S:
                break
            await asyncio.sleep(0.5)
        self.live = [c for c in self.live if not c.ended]
        await self.fill()
        await asyncio.sleep(1.0)  # jitter buffers of new calls prime
        return {"settle_s": round(time.monotonic() - started, 1), "server_calls_before": health["calls"]}

    async def run(self) -> dict[str, Any]:
        await self.gen.start()
        self.gen.record(True)
        await self.fill()
        await asyncio.sleep(1.0)
        phases = []
        for name in progress(self.args.phases, desc="flood phases"):
            settled = await self.settle()
            phases.append({"phase": name, **settled, **(await self.phase(name))})
            print(json.dumps(phases[-1]), file=sys.stderr)
        for call in self.live:
            self.gen.hang_up(call)
        await asyncio.sleep(0.5)
        await self.gen.stop()
        return {"phases": phases, "live_call_setup_failures": len(self.setup_failures)}

    async def phase(self, name: str) -> dict[str, Any]:
        wire = WireLateness()
        calls = list(self.live)
        for call in calls:
            call.arrivals.clear()
        metrics0 = await patiently(lambda: scrape_metrics(self.server.http_port))
        cpu0, t0 = self.probe.cpu_seconds(), time.monotonic()
        flood = None
        if name == "quiet":
            await self._hold(wire, calls, asyncio.ensure_future(asyncio.sleep(self.args.seconds)))
        else:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "benchmarks.flood_sender",
                "--kind",
                name,
                "--target",
                f"127.0.0.1:{self.server.sip_port}",
                "--rate",
                str(self.args.rate),
                "--seconds",
                str(self.args.seconds),
                "--rtp-range",
                f"{self.server.rtp_range[0]}-{self.server.rtp_range[1]}",
                stdout=subprocess.PIPE,
                cwd=REPO,
            )
            self.flood_cpus = pin(proc.pid, _cpus(self.args.pin_flood))
            # The live calls are measured from the phase's start to the flooder's exit, which
            # includes its start-up (about a second) and its 1 s wait for the last answers.
            flooding = asyncio.ensure_future(proc.communicate())
            await self._hold(wire, calls, flooding)
            stdout, _ = flooding.result()
            flood = json.loads(stdout.decode().strip().splitlines()[-1])
        wall = time.monotonic() - t0
        cpu = self.probe.cpu_seconds() - cpu0
        health = await self.health()
        metrics = await patiently(lambda: scrape_metrics(self.server.http_port))
        dropped = [c for c in calls if c.ended]
        for call in calls:
            wire.fold(call.call_id, call.arrivals)
        wire.close_all()
        return {
            "seconds": round(wall, 1),
            "flood": flood,
            "live_calls": len(calls),
            "dropped_live_calls": len(dropped),
            "live_calls_wire": wire.summary.view(),
            # the ticker's own count (/metrics), ticks that woke over its late threshold
            "server_ticker_late_frames": metrics[TICKER_LATE] - metrics0[TICKER_LATE],
            "server_calls_at_end": health["calls"],
            "server_cpu_percent_of_core": round(100 * cpu / wall, 1),
            "server_rss_mb_at_end": round(self.probe.rss_mb(), 1),
        }

    async def _hold(self, wire: WireLateness, calls: list[LoadCall], until: asyncio.Future[Any]) -> None:
        """Fold the live calls' arrivals once a second until `until` is done."""
        while not until.done():
            await asyncio.wait([until], timeout=1.0)
            for call in calls:
                wire.fold(call.call_id, call.arrivals)


def _cpus(text: str | None) -> set[int] | None:
    return {int(c) for c in text.split(",")} if text else None


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = result["phases"]
    names = [p["phase"] for p in phases]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    wire = [p["live_calls_wire"]["late_frames"] for p in phases]
    ticker = [p["server_ticker_late_frames"] for p in phases]
    x = range(len(names))
    ax1.bar([i - 0.2 for i in x], wire, 0.4, label="late frames at the wire (live calls)")
    ax1.bar([i + 0.2 for i in x], ticker, 0.4, label="server ticker late frames")
    for i, p in enumerate(phases):
        ax1.annotate(f"drops {p['dropped_live_calls']}", (i, max(wire[i], ticker[i])), ha="center", va="bottom")
    ax1.set_xticks(list(x), names)
    ax1.set_ylabel("frames")
    ax1.set_title(f"{result['config']['live_calls']} live calls, {result['config']['seconds']} s per phase")
    ax1.legend(fontsize=8)
    shares = [(p["flood"] or {}).get("share_503") or 0 for p in phases]
    rates = [(p["flood"] or {}).get("rate_sent_per_s") or 0 for p in phases]
    ax2.bar(list(x), [100 * s for s in shares], color="#aa3377")
    for i, r in enumerate(rates):
        ax2.annotate(f"{r:.0f}/s sent", (i, 100 * shares[i]), ha="center", va="bottom", fontsize=8)
    ax2.set_xticks(list(x), names)
    ax2.set_ylabel("% of flood datagrams answered 503")
    ax2.set_ylim(0, 110)
    ax2.set_title("flood answered 503")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--live-calls", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=5000.0, help="flood datagrams a second")
    parser.add_argument("--phases", type=lambda s: s.split(","), default=list(PHASES))
    parser.add_argument("--rtp-ports", type=int, default=500, help="server RTP ports (calls); shipped: 500")
    parser.add_argument("--pin-server", help="CPUs for the server process, e.g. 0")
    parser.add_argument("--pin-flood", help="CPUs for the flooder process, e.g. 1")
    parser.add_argument("--pin-load", help="CPUs for this process (live calls), e.g. 1")
    parser.add_argument("--name", default="floods")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; choose from {PHASES}")
    from benchmarks.ai_harness import provenance

    load_avg_start = os.getloadavg()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="floods-")))
        server = ServerProcess(
            config=server_config(tmp, llm_url=None, rate_limit=True),
            rtp_base=free_rtp_base(args.rtp_ports),
            rtp_ports=args.rtp_ports,
            log_level="WARNING",
        ).start(timeout=STARTUP_TIMEOUT_S)
        stack.callback(server.stop)
        assert server.proc is not None
        server_cpus = pin(server.proc.pid, _cpus(args.pin_server))
        load_cpus = pin(os.getpid(), _cpus(args.pin_load))
        import uvloop

        floods = Floods(server, args)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            measured = runner.run(floods.run())
        exit_code = server.stop()
        problems = [r for r in server.records() if r.get("level") in ("ERROR", "CRITICAL")]
    result = {
        "benchmark": "floods",
        **provenance(),
        # What else ran: the 1-minute load average before and after (this box has os.cpu_count() CPUs).
        "box": f"{os.cpu_count()} CPUs; load average {load_avg_start[0]:.1f} before the run, "
        f"{os.getloadavg()[0]:.1f} after",
        "load_average_1_5_15": {"start": load_avg_start, "end": os.getloadavg()},
        "config": {
            "live_calls": args.live_calls,
            "seconds": args.seconds,
            "rate_asked_per_s": args.rate,
            "server_rate_limit": "shipped default: 20/s per source, burst 40",
            "server_rtp_ports": args.rtp_ports,
            "flooder": "separate process (benchmarks/flood_sender.py) from 127.0.0.2; live calls from 127.0.0.1",
            "pinning": {"server": server_cpus, "load": load_cpus, "flooder": floods.flood_cpus},
        },
        **measured,
        "server_exit_code": exit_code,
        "server_errors_logged": len(problems),
        "server_error_examples": [p.get("msg") for p in problems[:5]],
        "goal": {
            phase["phase"]: {
                "no_late_frame": phase["live_calls_wire"]["late_frames"] == 0,
                "no_drop": phase["dropped_live_calls"] == 0,
            }
            for phase in measured["phases"]
        },
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    plot(result, out / f"{args.name}.png")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
