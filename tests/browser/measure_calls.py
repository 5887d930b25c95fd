"""Measure WebRTC calls against a real server: signalling time, time to first audio, CPU per call.

    python -m tests.browser.measure_calls --calls 1 5 10 [--seconds 10]

For each N, starts `mediaserver serve` (test config), places N concurrent aiortc calls to the
`long` route (the server talks, the callers send a tone), holds them for --seconds, and prints
one JSON line: offer->answer ms (p50/max, includes the server's ICE gathering), answer->first
audible frame ms, the server process's CPU % over the hold, and the ticker's late frames.
Timings are wall-clock on this machine: for reports, never for pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import numpy as np

from tests.browser.aiortc_client import RATE, AiortcCaller
from tests.support.server import ServerProcess


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_call(base: str, hold_s: float, results: list[dict[str, float]]) -> None:
    t = np.arange(RATE * int(hold_s + 5)) / RATE
    caller = AiortcCaller(base, (3000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16))
    start = time.monotonic()
    answer = await caller.call_json("long")
    answered = time.monotonic()
    await caller.heard_audio.wait()
    heard = time.monotonic()
    await asyncio.sleep(hold_s)
    await caller.delete(f"/webrtc/calls/{answer['call_id']}")
    await caller.close()
    results.append({"answer_ms": (answered - start) * 1000, "first_audio_ms": (heard - answered) * 1000})


async def run(n: int, hold_s: float) -> dict[str, object]:
    server = ServerProcess().start()
    try:
        base = f"http://127.0.0.1:{server.http_port}"
        assert server.proc is not None
        before = server.get("/health")["tick"]["late_frames"]
        cpu0, wall0 = cpu_seconds(server.proc.pid), time.monotonic()
        results: list[dict[str, float]] = []
        await asyncio.gather(*(one_call(base, hold_s, results) for _ in range(n)))
        cpu1, wall1 = cpu_seconds(server.proc.pid), time.monotonic()
        late = server.get("/health")["tick"]["late_frames"] - before
    finally:
        server.stop()
    answer = [r["answer_ms"] for r in results]
    first = [r["first_audio_ms"] for r in results]
    return {
        "calls": n,
        "hold_s": hold_s,
        "answer_ms_p50": round(statistics.median(answer), 1),
        "answer_ms_max": round(max(answer), 1),
        "first_audio_ms_p50": round(statistics.median(first), 1),
        "first_audio_ms_max": round(max(first), 1),
        "server_cpu_percent": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 1),
        "late_frames": late,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    for n in args.calls:
        print(json.dumps(asyncio.run(run(n, args.seconds))), flush=True)


if __name__ == "__main__":
    main()
