"""Media-plane micro benchmarks and pacing under load; prints JSON, writes a PNG beside it.

    python -m benchmarks.media [--seconds 10] [--calls 1,50,200] [--out benchmarks/results]

1. Per-frame cost (µs) of each codec's encode and decode and of the jitter buffer push+pop,
   measured in interleaved batches (the VM's speed drifts; see docs/costs.md).
2. Pacing: N answered calls playing idle audio (silence frames, real RTP over loopback UDP to
   a sink socket) in one process on the real clock, driven by the kernel's MediaTicker under
   uvloop. Reports the ticker's deviation from the 20 ms grid (p50/p99/max), frames later
   than 2 ms, frames skipped, and the CPU the process used per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mediaserver.clock import MonotonicClock
from mediaserver.kernel.call import Call
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.tick import MediaTicker
from mediaserver.logs import CallEventLog
from mediaserver.rtp.jitter import JitterBuffer
from mediaserver.rtp.packet import RtpPacket, pack_rtp
from mscodecs import make_codec

CODECS = [("PCMU", 8000), ("PCMA", 8000), ("G722", 8000), ("opus", 48000), ("L16", 16000)]


def _speechlike(samples: int, rate: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(samples) / rate
    voiced = np.sin(2 * np.pi * 140 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (6000 * voiced + rng.normal(0, 800, samples)).astype(np.int16)


def _per_call_us(fn: Callable[[], object], batch: int) -> float:
    start = time.perf_counter()
    for _ in range(batch):
        fn()
    return (time.perf_counter() - start) / batch * 1e6


def codec_costs(rounds: int = 11) -> dict[str, dict[str, float]]:
    benches: dict[str, tuple[Callable[[], object], int]] = {}
    for name, clock in CODECS:
        codec = make_codec(name, clock)
        frame = codec.sample_rate // 50
        pcm = _speechlike(frame, codec.sample_rate)
        payload = codec.encode(pcm)
        batch = 2000 if name in ("PCMU", "PCMA", "L16") else 300
        benches[f"{name}.encode"] = (lambda c=codec, p=pcm: c.encode(p), batch)
        benches[f"{name}.decode"] = (lambda c=codec, b=payload: c.decode(b), batch)
    jb = JitterBuffer(8000, 160, depth_frames=3)
    state = {"seq": 0}
    payload = bytes(160)

    def jitter_push_pop() -> None:
        seq = state["seq"]
        jb.push(RtpPacket(0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, 1, payload), seq * 20_000_000)
        jb.pop()
        state["seq"] = seq + 1

    benches["jitter.push+pop"] = (jitter_push_pop, 5000)
    # One call's whole media path per 20 ms frame (PCMU): the peer's packet parsed, checked and
    # buffered, then the tick: a frame out of the jitter buffer, one packet of silence out.
    # "held": nobody listens (answer + hold, the capacity run's calls); "heard": a tap listens,
    # so every frame is decoded (an AI or recording call's inbound side).
    voice = make_codec("PCMU", 8000).encode(_speechlike(160, 8000))
    for label, listen in (("held", False), ("heard", True)):
        stream = MediaStream(MediaParams("PCMU", 0, 8000, 101), "bench", rng=random.Random(1))
        if listen:
            stream.taps.inbound.subscribe(lambda frame: None, name="bench")
        clock = {"n": 0}

        def frame_pair(s: MediaStream = stream, c: dict[str, int] = clock) -> None:
            n = c["n"]  # a continuous stream: sequence and timestamp follow the frame count
            s.receive_datagram(pack_rtp(0, n & 0xFFFF, (n * 160) & 0xFFFFFFFF, 7, voice, False), n * 20_000_000)
            s.tick(n * 20_000_000 + 1, 0.0)
            c["n"] = n + 1

        benches[f"stream.receive+tick.{label}"] = (frame_pair, 5000)
    samples: dict[str, list[float]] = {k: [] for k in benches}
    for _ in range(rounds):  # interleaved, so a slow phase of the VM hits every item alike
        for key, (fn, batch) in benches.items():
            samples[key].append(_per_call_us(fn, batch))
    return {
        k: {
            "median_us": round(statistics.median(v), 2),
            "p10_us": round(float(np.percentile(v, 10)), 2),
            "p90_us": round(float(np.percentile(v, 90)), 2),
        }
        for k, v in samples.items()
    }


class _NullSignal:
    def ring(self) -> None: ...
    def answer(self) -> None: ...
    def hangup(self) -> None: ...


async def pacing(calls: int, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sink.setblocking(False)
    sink_addr = sink.getsockname()
    received = 0

    def drain() -> None:
        nonlocal received
        while True:
            try:
                sink.recv(2048)
                received += 1
            except BlockingIOError:
                return

    loop.add_reader(sink.fileno(), drain)
    ticker = MediaTicker(MonotonicClock())
    transports = []
    for i in range(calls):
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        transports.append(transport)
        media = MediaStream(MediaParams("PCMU", 0, 8000, 101), "bench", rng=random.Random(i))
        call = Call(
            f"bench-{i}",
            from_uri="sip:a@b",
            to_uri="sip:c@d",
            media=media,
            signal=_NullSignal(),
            send_media=lambda d, t=transport: t.sendto(d, sink_addr),
            event_log=CallEventLog(f"bench-{i}"),
        )
        call.answer()
        ticker.add(call)
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(0.5)  # warm-up: first RTCP, allocator, caches
    pacer = ticker.pacer
    ticks0, late0, skipped0 = pacer.stats.ticks, pacer.stats.late_frames, pacer.stats.skipped_frames
    hist0 = len(pacer.stats.deviations_ns())
    ticker.work_ns.clear()
    received0 = received
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    devs = np.array(pacer.stats.deviations_ns()[hist0:], dtype=np.float64) / 1e6
    work = np.array(ticker.work_ns, dtype=np.float64) / 1e6
    # Worst send of a tick = its wakeup deviation + the time to run every call before it.
    send = devs[-len(work) :] + work if len(work) and len(devs) >= len(work) else devs
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    loop.remove_reader(sink.fileno())
    sink.close()
    for t in transports:
        t.close()
    ticks = pacer.stats.ticks - ticks0
    return {
        "calls": calls,
        "seconds": round(wall, 2),
        "ticks": ticks,
        "deviation_ms_p50": round(float(np.percentile(devs, 50)), 3) if len(devs) else None,
        "deviation_ms_p99": round(float(np.percentile(devs, 99)), 3) if len(devs) else None,
        "deviation_ms_max": round(float(devs.max()), 3) if len(devs) else None,
        "tick_work_ms_p50": round(float(np.percentile(work, 50)), 3) if len(work) else None,
        "tick_work_ms_p99": round(float(np.percentile(work, 99)), 3) if len(work) else None,
        "last_send_deviation_ms_p99": round(float(np.percentile(send, 99)), 3) if len(send) else None,
        "late_frames": pacer.stats.late_frames - late0,
        "skipped_frames": pacer.stats.skipped_frames - skipped0,
        "packets_received_by_sink": received - received0,
        "packets_expected": calls * int(round(wall / 0.02)),
        "cpu_percent_of_one_core": round(100 * cpu / wall, 1),
        "cpu_ms_per_call_second": round(1000 * cpu / wall / calls, 3),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(result["per_frame_cost"])
    ax1.barh(names, [result["per_frame_cost"][n]["median_us"] for n in names], color="#4477aa")
    ax1.set_xscale("log")
    ax1.set_xlabel("µs per 20 ms frame (median, log scale)")
    ax1.set_title("Per-frame cost")
    runs = result["pacing"]
    xs = [str(r["calls"]) for r in runs]
    idx = np.arange(len(xs))
    width = 0.27
    ax2.bar(idx - width, [r["deviation_ms_p50"] for r in runs], width, label="wakeup p50")
    ax2.bar(idx, [r["deviation_ms_p99"] for r in runs], width, label="wakeup p99")
    ax2.bar(idx + width, [r["last_send_deviation_ms_p99"] for r in runs], width, label="last send of tick p99")
    for i, r in enumerate(runs):
        label = f"late {r['late_frames']}\ncpu {r['cpu_percent_of_one_core']}%"
        ax2.annotate(label, (i, r["last_send_deviation_ms_p99"]), ha="center", va="bottom", fontsize=8)
    ax2.set_xticks(idx, xs)
    ax2.set_xlabel("concurrent idle-audio calls (PCMU, one process, uvloop)")
    ax2.set_ylabel("tick deviation from the 20 ms grid (ms)")
    ax2.set_title("Pacing")
    ax2.legend()
    fig.suptitle(f"media plane on {result['machine']['cpus']} CPUs, {result['machine']['python']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="pacing run length per call count")
    parser.add_argument("--calls", default="1,50,200", help="comma-separated call counts")
    parser.add_argument("--rounds", type=int, default=11, help="interleaved rounds of the codec timings")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"), help="folder for JSON and PNG")
    args = parser.parse_args(argv)
    import uvloop

    print("measuring codec and jitter-buffer cost…", file=sys.stderr)
    costs = codec_costs(args.rounds)
    runs = []
    for n in [int(x) for x in args.calls.split(",")]:
        print(f"pacing with {n} calls for {args.seconds} s…", file=sys.stderr)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runs.append(runner.run(pacing(n, args.seconds)))
    result = {
        "benchmark": "media",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "per_frame_cost": costs,
        "pacing": runs,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "media.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "media.png")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
