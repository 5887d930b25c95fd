"""When each call's frame leaves inside the 20 ms period: bunched (1 send phase) or spread (10).

    python -m benchmarks.send_spread [--calls 100,200,300] [--phases 1,10] [--seconds 5] [--out FILE]

N idle PCMU calls (a real `MediaStream` each, encoding silence, one UDP socket each, sending to a
sink socket over loopback) are driven by the kernel's `MediaTicker` on the real clock under
uvloop, once per phase count, levels interleaved so that the box's drift hits both alike. For
every frame sent it records the send instant (just after `sendto`) and the frame's own deadline
(`MediaTicker.frame_deadline_ns`) and reports:

* lateness of a send against its own deadline (p50/p99/max, ms): what a call's peer sees as
  the send error; with one phase the last call of a period is late by the whole period's work;
* per period, the spread of the send instants (last minus first, ms) and the most sends that
  left within any one millisecond (the burst the sockets and the peer's NIC see);
* per-call jitter: each call's lateness minus its own minimum, pooled (p99, ms): the deviation
  from the call's own 20 ms grid, which is what the capacity run's 2 ms p99 rule measures.

Numbers on a shared or busy machine are noisy: compare the two phase counts of one run only.
`--model-us C` adds a deterministic model beside them: the same ticker on a manual clock where
each call's tick costs exactly C µs, so the effect of the phases shows without the box's noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mediaserver.clock import ManualClock, MonotonicClock
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.tick import FRAME_NS, MediaTicker

NS_PER_MS = 1_000_000


class SpreadCall:
    """A ticker target that sends one idle frame per tick and notes when it left."""

    def __init__(self, index: int, ticker: MediaTicker, transport: asyncio.DatagramTransport, sink: Any) -> None:
        self.media = MediaStream(MediaParams("PCMU", 0, 8000, 101), "bench", rng=random.Random(index))
        self.ticker = ticker
        self.transport = transport
        self.sink = sink
        self.recording = False
        self.sends: list[tuple[int, int]] = []  # (own deadline, sent) in ns

    def on_tick(self, now_ns: int, unix_time: float) -> None:
        for datagram in self.media.tick(now_ns, unix_time):
            self.transport.sendto(datagram, self.sink)
        if self.recording:
            self.sends.append((self.ticker.frame_deadline_ns, time.monotonic_ns()))

    def on_frames_skipped(self, frames: int) -> None:
        self.media.skip_frames(frames)


def _pct(values: np.ndarray, p: float) -> float | None:
    return round(float(np.percentile(values, p)), 3) if len(values) else None


async def run_level(calls: int, phases: int, seconds: float, warmup_s: float = 0.5) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sink.setblocking(False)

    def drain() -> None:
        while True:
            try:
                sink.recv(2048)
            except BlockingIOError:
                return

    loop.add_reader(sink.fileno(), drain)
    ticker = MediaTicker(MonotonicClock(), phases=phases)
    transports: list[asyncio.DatagramTransport] = []
    fakes: list[SpreadCall] = []
    for i in range(calls):
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        transports.append(transport)
        fake = SpreadCall(i, ticker, transport, sink.getsockname())
        fakes.append(fake)
        ticker.add(fake)
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(warmup_s)  # first RTCP, allocator, caches
    stats0 = (ticker.stats.late_frames, ticker.stats.skipped_frames)
    for fake in fakes:
        fake.recording = True
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    for fake in fakes:
        fake.recording = False
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    loop.remove_reader(sink.fileno())
    sink.close()
    for transport in transports:
        transport.close()

    sends = np.array([s for fake in fakes for s in fake.sends], dtype=np.int64)
    deadlines, sent = sends[:, 0], sends[:, 1]
    lateness_ms = (sent - deadlines) / NS_PER_MS
    # Period k of a send: the 20 ms period of the grid its deadline falls in.
    start = int(deadlines.min())
    period = (deadlines - start) // FRAME_NS
    spreads, bursts, period_max_late = [], [], []
    order = np.argsort(period, kind="stable")
    bounds = np.flatnonzero(np.diff(period[order])) + 1
    for chunk in np.split(order, bounds):
        times = sent[chunk]
        spreads.append((times.max() - times.min()) / NS_PER_MS)
        bursts.append(max(Counter((times // NS_PER_MS).tolist()).values()))
        period_max_late.append(lateness_ms[chunk].max())
    jitter = np.concatenate(
        [
            (np.array([s - d for d, s in fake.sends]) - min(s - d for d, s in fake.sends)) / NS_PER_MS
            for fake in fakes
            if fake.sends
        ]
    )
    return {
        "calls": calls,
        "phases": phases,
        "seconds": round(wall, 2),
        "sends": int(len(sends)),
        "sends_expected": calls * int(round(wall * 1e9 / FRAME_NS)),
        "lateness_ms_p50": _pct(lateness_ms, 50),
        "lateness_ms_p99": _pct(lateness_ms, 99),
        "lateness_ms_max": round(float(lateness_ms.max()), 3),
        "period_max_lateness_ms_p50": _pct(np.array(period_max_late), 50),
        "period_max_lateness_ms_p99": _pct(np.array(period_max_late), 99),
        "period_spread_ms_p50": _pct(np.array(spreads), 50),
        "period_max_sends_in_1ms_p50": _pct(np.array(bursts, dtype=np.float64), 50),
        "per_call_jitter_ms_p99": _pct(jitter, 99),
        "ticker_late_frames": ticker.stats.late_frames - stats0[0],
        "ticker_skipped_frames": ticker.stats.skipped_frames - stats0[1],
        "cpu_percent_of_one_core": round(100 * cpu / wall, 1),
    }


class _ModelCall:
    """A target whose tick costs exactly `cost_ns` of the manual clock."""

    def __init__(self, ticker: MediaTicker, clock: ManualClock, cost_ns: int) -> None:
        self.ticker, self.clock, self.cost_ns = ticker, clock, cost_ns
        self.sends: list[tuple[int, int]] = []

    def on_tick(self, now_ns: int, unix_time: float) -> None:
        self.clock.advance(self.cost_ns)
        self.sends.append((self.ticker.frame_deadline_ns, self.clock.now_ns()))

    def on_frames_skipped(self, frames: int) -> None:
        pass


def model_level(calls: int, phases: int, cost_us: float, periods: int = 100) -> dict[str, Any]:
    """The ticker on a manual clock, each tick costing cost_us: send lateness with no noise."""
    clock = ManualClock()
    ticker = MediaTicker(clock, phases=phases)
    fakes = [_ModelCall(ticker, clock, int(cost_us * 1000)) for _ in range(calls)]
    for fake in fakes:
        ticker.add(fake)
    end = clock.now_ns() + periods * FRAME_NS
    while ticker.next_deadline_ns <= end:
        clock.set(max(clock.now_ns(), ticker.next_deadline_ns))
        ticker.run_due(clock.now_ns())
    late = np.array([(s - d) / NS_PER_MS for fake in fakes for d, s in fake.sends])
    return {
        "calls": calls,
        "phases": phases,
        "tick_cost_us": cost_us,
        "lateness_ms_p50": _pct(late, 50),
        "lateness_ms_p99": _pct(late, 99),
        "lateness_ms_max": round(float(late.max()), 3),
        "sends_over_2ms_late_percent": round(100 * float((late > 2.0).mean()), 2),
    }


async def main_async(
    levels: list[int], phase_counts: list[int], seconds: float, model_us: float | None = None
) -> dict[str, Any]:
    rows = []
    for calls in levels:
        for phases in phase_counts:  # interleaved: both phase counts see the same box, minutes apart at most
            row = await run_level(calls, phases, seconds)
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
    return {
        "benchmark": "send_spread",
        "command": " ".join(["python -m benchmarks.send_spread", *sys.argv[1:]]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "note": "real clock on a possibly shared box: noisy; compare phase counts within one run",
        "levels": rows,
        "model": [model_level(c, p, model_us) for c in levels for p in phase_counts] if model_us else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="100,200,300", help="comma-separated call counts")
    parser.add_argument("--phases", default="1,10", help="comma-separated send phase counts (1 = all at once)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--model-us", type=float, default=None, help="also model a tick costing this many µs a call")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()  # the server's loop (mediaserver/cli.py)
    except ImportError:
        pass
    result = asyncio.run(
        main_async(
            [int(c) for c in args.calls.split(",")],
            [int(p) for p in args.phases.split(",")],
            args.seconds,
            args.model_us,
        )
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
