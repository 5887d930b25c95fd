"""Call setup rate: INVITEs offered at a fixed rate from a configured trunk, the rate limiter at its defaults.

Theory of operation: a real `mediaserver serve` (benchmarks/config/capacity.toml: calls answer
and hold; 127.0.0.1 is the trunk `load`; `[sip.security]` rate_limit_per_s/burst at their
shipped defaults, which a trunk is exempt from) pinned to one core, the load generator to the
other. For each offered rate R, the generator sends INVITE k at `t0 + k / R` on an absolute
schedule (open loop: a slow answer does not slow the offer) for `duration_s`; each answered call
is held `call_hold_s` (its media flowing) and hung up. Every INVITE ends as 200, 503, another
final status, or no final answer within 10 s. With `trunk=False` the config names no trunk, so
the same offer meets the limiter (20/s, burst 40 per source) and the 503 share shows it working.

Reported per rate: the offer actually made (INVITEs sent / seconds), the shares of each outcome,
setup time (INVITE sent -> 200 received, n, p50, p95 where n >= 20, max), and answered calls per
second over the run and in its worst whole second after the first (200 OKs received in it). A
rate is *sustained* when every INVITE was answered 200, setup p95 stayed within 2 s (the answers
kept up with the offer) and the generator made the offer (>= 99 % of R); the result's
`sustained_calls_per_s` is the highest rate sustained, with every lower rate sustained too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.capacity_common import Rule, find_limit, pinning, plot_style, rules_dict, wait_idle
from benchmarks.capacity_media import CONFIG
from benchmarks.loadgen import LoadCall, LoadGenerator
from benchmarks.stats import describe
from tests.support.server import ServerProcess

ANSWER_TIMEOUT_S = 10.0
SETUP_P95_LIMIT_MS = 2000.0  # answers keep up with the offer (a backlog grows setup time without bound)
LATE_ANSWER_WAIT_S = 30.0


@dataclass(frozen=True)
class SetupOptions:
    rates: tuple[int, ...] = (50, 100, 150, 200)
    duration_s: float = 30.0
    call_hold_s: float = 1.0
    trunk: bool = True
    server_cpus: frozenset[int] | None = frozenset({0})
    load_cpus: frozenset[int] | None = frozenset({1})


async def _one(gen: LoadGenerator, hold_s: float) -> LoadCall:
    call = await gen.try_place(ANSWER_TIMEOUT_S)
    if call.status == 0:
        # Counted as no answer; but a late 200 still sets up a call on the server, which must
        # be hung up (else the server never goes idle between rates).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.answered.wait(), LATE_ANSWER_WAIT_S)
        if call.status == 200:
            call.ended = False
            await gen.hang_up_all([call])
        call.status = 0
        gen.forget(call)
        return call
    if call.status == 200:
        await asyncio.sleep(hold_s)
        await gen.hang_up_all([call])
    gen.forget(call)
    return call


async def _offer(server: ServerProcess, rate: int, opts: SetupOptions) -> dict[str, Any]:
    gen = LoadGenerator(("127.0.0.1", server.sip_port), user="idle")
    await gen.start()
    tasks: list[asyncio.Task[LoadCall]] = []
    try:
        t0 = time.monotonic()
        total = int(rate * opts.duration_s)
        for k in range(total):
            delay = t0 + k / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(gen, opts.call_hold_s)))
        offered_s = time.monotonic() - t0
        calls = await asyncio.gather(*tasks)
    finally:
        await gen.stop()
    health = await asyncio.to_thread(wait_idle, server.http_port)
    statuses = [c.status for c in calls]
    n = len(calls)
    setup_ms = [(c.answered_ns - c.invite_sent_ns) / 1e6 for c in calls if c.status == 200]
    first = min(c.invite_sent_ns for c in calls)
    bins: dict[int, int] = {}
    for c in calls:
        if c.status == 200:
            second = int((c.answered_ns - first) / 1e9)
            bins[second] = bins.get(second, 0) + 1
    # Whole seconds of the offer after its first (whose answers are still on their way).
    full = [bins.get(s, 0) for s in range(1, int(opts.duration_s))]
    offered_rate = n / offered_s if offered_s > 0 else 0.0
    row: dict[str, Any] = {
        "offered_calls_per_s": rate,
        "invites_sent": n,
        "offer_made_calls_per_s": round(offered_rate, 1),
        "share_200": round(statuses.count(200) / n, 4),
        "share_503": round(statuses.count(503) / n, 4),
        "share_other_final": round(sum(1 for s in statuses if s not in (0, 200, 503)) / n, 4),
        "share_no_answer": round(statuses.count(0) / n, 4),
        "answered_calls_per_s": round(statuses.count(200) / offered_s, 1) if offered_s > 0 else None,
        "answered_calls_per_s_worst_1s_bin": min(full) if full else None,
        "setup_ms": describe(setup_ms),
        "server_went_idle_after": health["idle"],
    }
    row["rules"] = rules_dict(
        [
            Rule("not_answered_200", n - statuses.count(200), 0),
            Rule("offer_made_share_of_rate", round(offered_rate / rate, 3), 0.99, kind="min"),
            Rule("setup_ms_p95", row["setup_ms"].get("p95", row["setup_ms"].get("max")), SETUP_P95_LIMIT_MS),
        ]
    )
    return row


def _config(tmp: Path, trunk: bool) -> Path:
    if trunk:
        return CONFIG
    idle = CONFIG.parent / "idle.yaml"
    path = tmp / "setup-untrusted.toml"
    path.write_text(f'[routes]\ndefault = "{idle}"\n\n[routes.users]\nidle = "{idle}"\n')
    return path


def run(opts: SetupOptions) -> dict[str, Any]:
    import uvloop

    from benchmarks.ai_harness import provenance

    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="capacity-setup-")))
        # Calls up at once: offer rate x (hold + BYE + answer time), with room.
        ports = int(max(opts.rates) * (opts.call_hold_s + 2.0)) + 50
        server = ServerProcess(
            config=_config(tmp, opts.trunk),
            rtp_base=56000 + (os.getpid() % 8) * 1000,
            rtp_ports=ports,
            log_level="WARNING",
        ).start()
        stack.callback(server.stop)
        assert server.proc is not None
        pins = pinning(
            server.proc.pid,
            set(opts.server_cpus) if opts.server_cpus else None,
            set(opts.load_cpus) if opts.load_cpus else None,
        )
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            for rate in opts.rates:
                row = runner.run(_offer(server, rate, opts))
                rows.append(row)
                if not all(r["holds"] for r in row["rules"].values()):
                    break
    limit = find_limit([{"level": r["offered_calls_per_s"], "repeat": 1, "rules": r["rules"]} for r in rows])
    return {
        "benchmark": "capacity",
        "mode": "setup",
        "schema": 2,
        "what": "INVITEs offered at a fixed rate from one source, answered by idle.yaml (answer + hold)",
        "provenance": provenance(),
        "pinning": pins,
        "server_settings": (
            "shipped defaults (rate limiter 20/s, burst 40 per source); overrides: routes -> idle.yaml"
            + (", [sip.trunks] load = 127.0.0.1 (trunks are not rate limited)" if opts.trunk else ", no trunk")
        ),
        "options": {
            "rates": list(opts.rates),
            "duration_s": opts.duration_s,
            "call_hold_s": opts.call_hold_s,
            "trunk": opts.trunk,
        },
        "definitions": {
            "setup_ms": "INVITE sent -> 200 OK received at the load generator (monotonic clock)",
            "answered_calls_per_s": "INVITEs answered 200 / seconds the offer lasted",
            "answered_calls_per_s_worst_1s_bin": (
                "fewest 200 OKs received in one whole second of the offer, seconds 1 to duration-1 after the 1st INVITE"
            ),
            "no_answer": f"no final response within {ANSWER_TIMEOUT_S:.0f} s",
        },
        "rules": {
            "not_answered_200": "== 0",
            "offer_made_share_of_rate": ">= 0.99 (the generator made the offer)",
            "setup_ms_p95": f"<= {SETUP_P95_LIMIT_MS:.0f} (the max where n < 20): answers keep up with the offer",
        },
        "rates": rows,
        "sustained_calls_per_s": limit["limit"],
        "limit": limit,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    plt = plot_style()
    rows = result["rates"]
    xs = [r["offered_calls_per_s"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax1.plot(xs, xs, "k:", label="offered")
    ax1.plot(xs, [r["answered_calls_per_s"] for r in rows], "o-", label="answered 200 / s")
    ax1.plot(xs, [r["answered_calls_per_s_worst_1s_bin"] for r in rows], "s--", label="worst 1 s bin")
    ax1.set_xlabel("offered INVITEs per second")
    ax1.set_ylabel("calls per second")
    ax1.set_title(
        f"sustained: {result['sustained_calls_per_s']} calls/s for {result['options']['duration_s']:.0f} s", fontsize=9
    )
    ax1.legend(fontsize=8)
    ax2.plot(xs, [r["setup_ms"].get("p50") for r in rows], "o-", label="setup p50")
    ax2.plot(
        xs,
        [r["setup_ms"].get("p95", r["setup_ms"].get("max")) for r in rows],
        "s--",
        label="setup p95 (max when n < 20)",
    )
    ax2.set_xlabel("offered INVITEs per second")
    ax2.set_ylabel("INVITE -> 200 OK (ms)")
    ax2.legend(fontsize=8)
    prov = result["provenance"]
    fig.suptitle(
        f"call setup, {prov.get('commit')}{' (dirty)' if prov.get('dirty') else ''}, {prov.get('cpu_model')}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
