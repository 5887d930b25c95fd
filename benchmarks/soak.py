"""Soak: hold N concurrent calls for T minutes, replacing calls as they end; watch for leaks.

    python -m benchmarks.soak [--calls 100] [--ai-calls 4] [--minutes 10] [--call-seconds 30-120]
                              [--sample-seconds 5] [--pin-server 0 --pin-load 1] [--name soak]

A real `mediaserver serve` process answers `--calls` idle-audio calls (answer, hold) and
`--ai-calls` calls into the `ai` verb on a scripted LLM (in a thread of this process), whose
callers ask a spoken question every `--talk-every` seconds (so VAD, whisper, the LLM client and
Piper run all along). Each call slot places a call, holds it for a random length drawn from
`--call-seconds` (MIN-MAX, or one number), hangs up and places the next: calls start and end all
through the run, which is what exercises teardown. Every `--sample-seconds` the server's RSS and
open fds (from /proc, read here), its CPU, its live calls and asyncio tasks and ticker late
frames (from its /health) are sampled.

What counts:
* drops: a call the server hung up before its planned end, a setup that failed (non-200 or no
  answer in 10 s); media stalls (a gap of over 1 s between two of a call's packets) separately;
* late frames at the wire: a frame arriving over 20 ms after its due time on the call's 20 ms
  grid (kernel receive timestamps at the load generator; soak_probe.WireLateness); and the
  server ticker's own late frames (`/health` tick.late_frames) over the run;
* leaked tasks and fds: after every call has ended and the server reports no live call, its
  asyncio tasks and fds minus their values before the first call;
* memory growth: warm-up is the first `--warmup` share of the run (default 20 %); growth is the
  median RSS of the last 10 % of the run against the median of the 10 % right after warm-up.

Prints JSON (with provenance: commit, CPU) and writes <name>.json and <name>.png (RSS, fds,
live calls and tasks over time) to --out. The box is shared: results say so, with load averages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.loadgen import LoadCall, LoadGenerator
from benchmarks.progress import seconds
from benchmarks.soak_probe import (
    TASKS,
    TICKER_LATE,
    ProcessProbe,
    WireLateness,
    free_rtp_base,
    patiently,
    pin,
    scrape_metrics,
    server_config,
    speech_payloads,
)
from benchmarks.stats import describe
from tests.support.server import ServerProcess

# Startup loads the TTS engine; on this shared box under load that has taken over a minute.
STARTUP_TIMEOUT_S = 240.0

SETUP_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 40.0  # an un-ACKed 200 lives 32 s (64*T1); nothing here should take that long


def parse_span(text: str) -> tuple[float, float]:
    """`"30-120"` -> (30, 120); `"45"` -> (45, 45)."""
    low, _, high = text.partition("-")
    span = (float(low), float(high or low))
    if not 0 < span[0] <= span[1]:
        raise argparse.ArgumentTypeError(f"call length must be MIN-MAX seconds with 0 < MIN <= MAX, got {text!r}")
    return span


def parse_cpus(text: str | None) -> set[int] | None:
    return {int(c) for c in text.split(",")} if text else None


@dataclass
class CallBook:
    """What happened to every call of the run."""

    placed: int = 0
    completed: int = 0  # held to the planned end (or to the run's end) and hung up by us
    setup_failures: Counter[str] = field(default_factory=Counter)
    early_hangups: list[dict[str, Any]] = field(default_factory=list)  # the server hung up first
    setup_ms: list[float] = field(default_factory=list)
    held_s: list[float] = field(default_factory=list)


class Soak:
    def __init__(self, server: ServerProcess, args: argparse.Namespace, talk: list[bytes]) -> None:
        assert server.proc is not None
        self.server = server
        self.args = args
        self.probe = ProcessProbe(server.proc.pid)
        self.addr = ("127.0.0.1", server.sip_port)
        self.media = LoadGenerator(self.addr, user="idle")
        self.ai = LoadGenerator(self.addr, user="ai")
        self.ai.talk = talk
        self.wire = WireLateness()
        self.books = {"media": CallBook(), "ai": CallBook()}
        self.samples: list[dict[str, Any]] = []
        self.loop_lag_ms: list[float] = []
        self.health_timeouts = 0
        self.fates: dict[str, str] = {}  # Call-ID -> how the call ended on our side

    async def health(self, attempts: int = 1) -> dict[str, Any] | None:
        """The server's /health, or None when it did not answer (a starved server answers late)."""
        for attempt in range(attempts):
            try:
                result: dict[str, Any] = await asyncio.to_thread(self.server.get, "/health")
                return result
            except OSError:
                self.health_timeouts += 1
                if attempt + 1 < attempts:
                    await asyncio.sleep(1.0)
        return None

    async def quiet_tasks(self, reads: int = 5) -> int:
        """The server's asyncio tasks at rest: the least of a few reads, since each HTTP connection
        being served (this read's own, a closing keep-alive) is two tasks of aiohttp's for a while."""
        counts = []
        for _ in range(reads):
            counts.append((await self.health_now())["asyncio_tasks"])
            await asyncio.sleep(0.5)
        return min(counts)

    async def health_now(self) -> dict[str, Any]:
        health = await self.health(attempts=60)
        if health is None:
            raise RuntimeError("the server's /health did not answer for a minute")
        return health

    async def run(self) -> dict[str, Any]:
        args = self.args
        await self.media.start()
        await self.ai.start()
        for gen in (self.media, self.ai):
            gen.record(True)
        before = await self.health_now()
        metrics0 = await patiently(lambda: scrape_metrics(self.server.http_port))
        baseline = {
            "rss_mb": round(self.probe.rss_mb(), 1),
            "open_fds": self.probe.open_fds(),
            "asyncio_tasks": await self.quiet_tasks(),
        }
        self.t0 = time.monotonic()
        self.end = self.t0 + args.minutes * 60
        self.bar = seconds(args.minutes * 60, desc="soak")
        cpu0 = self.probe.cpu_seconds()
        # AI slots first, so that loading the speech engines falls in the warm-up.
        slots = [asyncio.create_task(self._slot(self.ai, "ai", i * 0.5)) for i in range(args.ai_calls)]
        delay0 = 0.5 * args.ai_calls
        slots += [
            asyncio.create_task(self._slot(self.media, "media", delay0 + i / args.ramp_per_s))
            for i in range(args.calls)
        ]
        sampler = asyncio.create_task(self._sample_until_end())
        await asyncio.gather(*slots)
        cpu_s = self.probe.cpu_seconds() - cpu0
        wall_s = time.monotonic() - self.t0
        await sampler
        idle = await self._wait_idle()
        left = [] if idle else await self._calls_left()
        await asyncio.sleep(2.0)  # teardown callbacks scheduled by the last hangups
        after = await self.health_now()
        metrics1 = await patiently(lambda: scrape_metrics(self.server.http_port))
        end = {
            "rss_mb": round(self.probe.rss_mb(), 1),
            "open_fds": self.probe.open_fds(),
            "asyncio_tasks": await self.quiet_tasks(),
            "asyncio_tasks_metric": metrics1[TASKS],
        }
        self.wire.close_all()
        for gen in (self.media, self.ai):
            await gen.stop()
        return {
            "run_seconds": round(wall_s, 1),
            "server_cpu_percent_of_core": round(100 * cpu_s / wall_s, 1),
            "calls": {kind: self._book_view(book) for kind, book in self.books.items()},
            "dropped_calls": sum(len(b.early_hangups) + sum(b.setup_failures.values()) for b in self.books.values()),
            "late_frames_at_wire": self.wire.summary.view(),
            # the ticker's own count (/metrics), ticks that woke over its late threshold
            "server_ticker_late_frames": metrics1[TICKER_LATE] - metrics0[TICKER_LATE],
            "server_ticks": after["tick"]["ticks"] - before["tick"]["ticks"],
            "server_idle_after_run": idle,
            # Calls the server still held after ours had all ended, with what happened on our side.
            "calls_left_on_server": len(left),
            "calls_left_examples": left[:20],
            "before_first_call": baseline,
            "after_last_call": end,
            "leaked_tasks": end["asyncio_tasks"] - baseline["asyncio_tasks"],
            "leaked_fds": end["open_fds"] - baseline["open_fds"],
            "memory": memory_growth(self.samples, args.warmup),
            "generator_loop_lag_ms": describe(self.loop_lag_ms),
            "health_reads_unanswered": self.health_timeouts,
            "samples": self.samples,
        }

    async def _slot(self, gen: LoadGenerator, kind: str, delay_s: float) -> None:
        book = self.books[kind]
        low, high = self.args.call_seconds
        await asyncio.sleep(delay_s)
        while time.monotonic() < self.end - 1.0:
            book.placed += 1
            call = await gen.try_place(timeout=SETUP_TIMEOUT_S)
            if call.status != 200:
                fate = f"status {call.status}" if call.status else "no final answer in 10 s"
                book.setup_failures[fate] += 1
                self.fates[call.call_id] = "setup failed: " + fate
                gen.forget(call)  # a 200 that comes later goes unACKed: the server ends it itself (32 s)
                await asyncio.sleep(1.0)
                continue
            book.setup_ms.append((call.answered_ns - call.invite_sent_ns) / 1e6)
            started = time.monotonic()
            planned = random.uniform(low, high)
            hang_at = min(started + planned, self.end)
            # loadgen marks a server's BYE with a plain flag, not an event: poll it.
            while time.monotonic() < hang_at and not call.ended:  # noqa: ASYNC110
                await asyncio.sleep(min(0.5, max(0.0, hang_at - time.monotonic())))
            held = time.monotonic() - started
            self.fates[call.call_id] = "server hung up" if call.ended else "we hung up (one BYE, not resent)"
            if call.ended:  # the server sent BYE before we meant to hang up: a drop
                book.early_hangups.append(
                    {"call_id": call.call_id, "planned_s": round(planned, 1), "held_s": round(held, 1)}
                )
            else:
                gen.hang_up(call)
                book.completed += 1
                book.held_s.append(held)
            self._retire(gen, call)

    def _retire(self, gen: LoadGenerator, call: LoadCall) -> None:
        self.wire.fold(call.call_id, call.arrivals)
        self.wire.close(call.call_id)
        # Keep the call known a while, so the 200 OK to our BYE (or a resent BYE) still finds it.
        asyncio.get_running_loop().call_later(5.0, gen.forget, call)

    async def _sample_until_end(self) -> None:
        next_report = self.t0 + 60
        while True:
            now = time.monotonic()
            for gen in (self.media, self.ai):
                for call in list(gen.calls.values()):
                    if not call.ended:
                        self.wire.fold(call.call_id, call.arrivals)
                lag = gen.loop_lag_ns[:]
                gen.loop_lag_ns.clear()
                self.loop_lag_ms.extend(v / 1e6 for v in lag)
            health = await self.health() or {}
            sample = {
                "t_s": round(now - self.t0, 1),
                "rss_mb": round(self.probe.rss_mb(), 1),
                "open_fds": self.probe.open_fds(),
                "asyncio_tasks": health.get("asyncio_tasks"),
                "server_calls": health.get("calls"),
                "our_calls": sum(not c.ended for g in (self.media, self.ai) for c in g.calls.values()),
                "server_ticker_late_frames": health.get("tick", {}).get("late_frames"),
            }
            self.samples.append(sample)
            self.bar.update(round(sample["t_s"] - self.bar.n, 1))
            if now >= next_report:
                next_report += 60
                print(f"soak {sample['t_s'] / 60:.0f} min: {json.dumps(sample)}", file=sys.stderr)
            if now >= self.end:
                return
            await asyncio.sleep(min(self.args.sample_seconds, max(0.0, self.end - time.monotonic())))

    async def _calls_left(self) -> list[dict[str, Any]]:
        listing = await patiently(lambda: self.server.get("/calls"))
        return [
            {"call_id": c["call_id"], "state": c["state"], "our_side": self.fates.get(c["call_id"], "unknown")}
            for c in listing["calls"]
        ]

    async def _wait_idle(self) -> bool:
        deadline = time.monotonic() + IDLE_TIMEOUT_S
        while time.monotonic() < deadline:
            health = await self.health()
            if health is not None and health["calls"] == 0 and health["rtp_ports_in_use"] == 0:
                return True
            await asyncio.sleep(0.5)
        return False

    @staticmethod
    def _book_view(book: CallBook) -> dict[str, Any]:
        return {
            "placed": book.placed,
            "completed": book.completed,
            "setup_failures": dict(book.setup_failures),
            "ended_early_by_server": len(book.early_hangups),
            "early_hangups": book.early_hangups[:20],
            # start: INVITE sent; end: 200 OK received (load generator's clock)
            "setup_ms": describe(book.setup_ms),
            "held_s": describe(book.held_s),
        }


def memory_growth(samples: list[dict[str, Any]], warmup: float) -> dict[str, Any]:
    """Growth of RSS after warm-up: median of the last 10 % of the run vs the 10 % after warm-up."""
    if not samples:
        return {}
    span = samples[-1]["t_s"]
    first = [s["rss_mb"] for s in samples if warmup * span <= s["t_s"] < (warmup + 0.1) * span]
    last = [s["rss_mb"] for s in samples if s["t_s"] >= 0.9 * span]
    after = [s for s in samples if s["t_s"] >= warmup * span]
    out: dict[str, Any] = {
        "warmup_share": warmup,
        "warmup_ends_s": round(warmup * span, 1),
        "first_window_samples": len(first),
        "last_window_samples": len(last),
    }
    if first and last:
        a, b = statistics.median(first), statistics.median(last)
        out |= {
            "first_window_rss_mb_median": round(a, 1),
            "last_window_rss_mb_median": round(b, 1),
            "growth_percent": round(100 * (b - a) / a, 2),
        }
    if len(after) >= 3:
        t = np.array([s["t_s"] for s in after]) / 3600
        slope = np.polyfit(t, np.array([s["rss_mb"] for s in after]), 1)[0]
        out["rss_slope_mb_per_hour_after_warmup"] = round(float(slope), 2)
    return out


def _series(samples: list[dict[str, Any]], key: str) -> list[float]:
    """A sampled value over time; NaN where /health did not answer (a gap in the line)."""
    return [float("nan") if s[key] is None else float(s[key]) for s in samples]


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    minutes = [s["t_s"] / 60 for s in samples]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    mem = result["memory"]
    for ax in (ax1, ax2, ax3):
        ax.axvspan(0, mem.get("warmup_ends_s", 0) / 60, color="#dddddd", label="warm-up")
    ax1.plot(minutes, [s["rss_mb"] for s in samples], color="#228833")
    if "first_window_rss_mb_median" in mem:
        base = mem["first_window_rss_mb_median"]
        ax1.axhline(base, color="#888888", linewidth=1, linestyle=":", label="median after warm-up")
        ax1.axhline(1.05 * base, color="red", linewidth=1, linestyle="--", label="+5 % (goal)")
        ax1.legend(loc="lower right", fontsize=8)
    ax1.set_ylabel("server RSS (MB)")
    growth = mem.get("growth_percent")
    ax1.set_title(
        f"{result['config']['calls']} media + {result['config']['ai_calls']} AI calls, "
        f"RSS growth after warm-up {growth} %, drops {result['dropped_calls']}"
    )
    ax2.plot(minutes, [s["open_fds"] for s in samples], color="#4477aa")
    ax2.set_ylabel("server open fds")
    ax3.plot(minutes, _series(samples, "server_calls"), label="live calls (server)", color="#aa3377")
    ax3.plot(minutes, _series(samples, "asyncio_tasks"), label="asyncio tasks (server)", color="#ccbb44")
    ax3.set_ylabel("count")
    ax3.set_xlabel("minutes since the first call")
    ax3.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100, help="concurrent idle-audio calls")
    parser.add_argument("--ai-calls", type=int, default=4, help="concurrent calls into the ai verb (scripted LLM)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--call-seconds", type=parse_span, default=(30.0, 120.0), help="call length, MIN-MAX or one number"
    )
    parser.add_argument("--talk-every", type=float, default=8.0, help="AI callers ask a question this often (s)")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.2, help="share of the run left out of the growth figure")
    parser.add_argument("--ramp-per-s", type=float, default=10.0, help="call slots started per second at the start")
    parser.add_argument("--pin-server", help="CPUs for the server process, e.g. 0")
    parser.add_argument("--pin-load", help="CPUs for this process (load generator, scripted LLM), e.g. 1")
    parser.add_argument("--name", default="soak", help="file name of the JSON and PNG")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    from benchmarks.ai_harness import provenance

    load_avg_start = os.getloadavg()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        llm_url, talk = None, []
        if args.ai_calls:
            from tests.support.llm_server import ScriptedLlmServer, Turn

            llm = stack.enter_context(
                ScriptedLlmServer([Turn(text="Yes, we are open until two.")], loop_script=True).running()
            )
            llm_url, talk = llm.base_url, speech_payloads(args.talk_every)
        ports = args.calls + args.ai_calls + 40
        server = ServerProcess(
            config=server_config(tmp, llm_url=llm_url, rate_limit=False),
            rtp_base=free_rtp_base(ports),
            rtp_ports=ports,
            log_level="WARNING",
        ).start(timeout=STARTUP_TIMEOUT_S)
        stack.callback(server.stop)
        assert server.proc is not None
        pinning = {
            "server": pin(server.proc.pid, parse_cpus(args.pin_server)),
            "load": pin(os.getpid(), parse_cpus(args.pin_load)),
        }
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            measured = runner.run(Soak(server, args, talk).run())
        exit_code = server.stop()
        problems = [r for r in server.records() if r.get("level") in ("ERROR", "CRITICAL")]
    result = {
        "benchmark": "soak",
        **provenance(),
        # What else ran: the 1-minute load average before and after (this box has os.cpu_count() CPUs).
        "box": f"{os.cpu_count()} CPUs; load average {load_avg_start[0]:.1f} before the run, "
        f"{os.getloadavg()[0]:.1f} after",
        "load_average_1_5_15": {"start": load_avg_start, "end": os.getloadavg()},
        "config": {
            "calls": args.calls,
            "ai_calls": args.ai_calls,
            "minutes": args.minutes,
            "call_seconds": list(args.call_seconds),
            "ai_caller_talks_every_s": args.talk_every if args.ai_calls else None,
            "sample_seconds": args.sample_seconds,
            "server_rate_limit": "off (one generator is one source address)",
            "pinning": pinning,
        },
        **{k: v for k, v in measured.items() if k != "samples"},
        "server_exit_code": exit_code,
        "server_errors_logged": len(problems),
        "server_error_examples": [p.get("msg") for p in problems[:5]],
        "goal": {
            "no_drops": measured["dropped_calls"] == 0,
            "memory_growth_under_5_percent": (measured["memory"].get("growth_percent") or 0) < 5,
            "no_leaked_tasks": measured["leaked_tasks"] <= 0,
        },
        "samples": measured["samples"],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    plot(result, out / f"{args.name}.png")
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
