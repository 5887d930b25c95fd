"""Does inference delay the media clock? A 20 ms ticker on the event loop beside busy inference threads.

    python -m benchmarks.inference_priority [--seconds 8] [--rounds 3] [--nices 0,10,19] [--switch-ms 1]
        [--sched-idle] [--process]

The server's worst case on 2 cores (issue 16): every worker busy at once, the ASR final
(Whisper tiny.en on a ~3 s utterance, `WhisperRecognizer`), a TTS clause (Piper, `PiperTts`)
and the end-of-turn check (smart-turn) each looping in its own thread, while a uvloop event loop
runs a 20 ms ticker on absolute deadlines (as `MediaTicker` does) with `--tick-work-us` of
pure-Python work a tick (the calls' media). Lateness of a tick = when it woke - its deadline.

Each nice level gets its own engines, loaded inside a worker already at that level, so the
threads the engines spawn (CTranslate2's replica worker) inherit it exactly as in the app
(`pipeline/inference_threads.py`). Conditions run interleaved round-robin (the VM's speed drifts,
docs/costs.md), "idle" being the ticker with no inference at all. Reported per condition: ticks
later than 2 ms and 20 ms (a frame), p50/p99/max lateness, and the inference passes a second
(nice must not starve inference either: the loop needs little CPU). A nice level cannot help
with the GIL: a tick that wakes while an inference thread runs Python waits for it to let go,
up to the switch interval (5 ms by default), so `--switch-ms` adds every nice level above 0
again with a shorter `sys.setswitchinterval`; `--sched-idle` adds the highest nice level with the
workers on SCHED_IDLE, which a waking normal thread preempts at once; `--process` adds the
same three loops in a worker process at the highest nice level (no GIL shared with the ticker).

The CPU may be shared with other work: compare conditions within one run; on a quiet box rerun
with the same command. Prints JSON and writes OUT/inference_priority.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import soxr
import uvloop

from benchmarks.progress import progress
from mediaserver.pipeline.inference_threads import inference_executor, single_threaded_blas, thread_nices

CLIP_TEXT = "What time does the pharmacy close on Sunday? I need my prescription today."
CLAUSE_TEXT = "Sure, I can help you with that right away."
FRAME_S = 0.020


class Inference:
    """Whisper, Piper and smart-turn loaded at one nice level, each looped in its own worker."""

    def __init__(self, nice: int, clip16k: np.ndarray, *, idle_policy: bool = False) -> None:
        self.nice = nice
        self.clip = clip16k
        self.pool: ThreadPoolExecutor = inference_executor(3, f"bench-nice{nice}", nice, idle_policy=idle_policy)
        self.asr, self.tts, self.turn = self.pool.submit(self._load).result()
        self.passes = {"asr": 0, "tts": 0, "turn": 0}
        self._stop = threading.Event()
        self._running: list[Future[None]] = []

    @staticmethod
    def _load() -> tuple[Any, Any, Any]:
        from mediaserver.pipeline.engines.piper_tts import PiperTts
        from mediaserver.pipeline.engines.smart_turn import SmartTurnDetector
        from mediaserver.pipeline.engines.whisper_asr import WhisperRecognizer

        return WhisperRecognizer(threads=1), PiperTts(threads=1), SmartTurnDetector(threads=1)

    def start(self) -> None:
        self._stop.clear()
        jobs: dict[str, Callable[[], object]] = {
            "asr": lambda: self.asr.transcribe(self.clip),
            "tts": lambda: list(self.tts.synthesize(CLAUSE_TEXT)),
            "turn": lambda: self.turn.probability(self.clip),
        }
        self._running = [self.pool.submit(self._loop, name, job) for name, job in jobs.items()]

    def _loop(self, name: str, job: Callable[[], object]) -> None:
        while not self._stop.is_set():
            job()
            self.passes[name] += 1

    def stop(self) -> None:
        self._stop.set()
        for future in self._running:
            future.result()

    def thread_nices(self) -> list[int]:
        nices = thread_nices()
        return sorted(nices[t.native_id][1] for t in list(self.pool._threads) if t.native_id in nices)  # noqa: SLF001


class ProcessInference:
    """The same three loops in a child process at `nice`: they share no GIL with the ticker."""

    def __init__(self, nice: int, clip16k: np.ndarray) -> None:
        self.nice = nice
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_inference, args=(child, nice, clip16k), daemon=True)
        self._proc.start()
        ready = self._conn.recv()
        assert ready == "ready", ready
        self.passes = {"asr": 0, "tts": 0, "turn": 0}

    def start(self) -> None:
        self._conn.send("start")

    def stop(self) -> None:
        self._conn.send("stop")
        self.passes = self._conn.recv()

    def thread_nices(self) -> list[int]:
        self._conn.send("nices")
        nices: list[int] = self._conn.recv()
        return nices

    def close(self) -> None:
        self._conn.send("exit")
        self._proc.join(10)


def _serve_inference(conn: Connection, nice: int, clip: np.ndarray) -> None:
    """The child: niced as a whole (its threads inherit it), then looping on command."""
    os.nice(nice)
    single_threaded_blas()
    load = Inference(0, clip)  # nice 0 relative to the child, which is at `nice` already
    conn.send("ready")
    while (command := conn.recv()) != "exit":
        if command == "start":
            load.start()
        elif command == "stop":
            load.stop()
            conn.send(dict(load.passes))
        elif command == "nices":
            conn.send(load.thread_nices())


def _busy(us: float) -> None:
    """Pure-Python work holding the GIL, standing for a tick's media for many calls."""
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


async def _ticker(seconds: float, work_us: float) -> list[float]:
    """Lateness (ms) of every 20 ms tick of `seconds` on absolute deadlines."""
    late: list[float] = []
    deadline = time.perf_counter() + FRAME_S
    end = deadline + seconds
    while deadline < end:
        delay = deadline - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        woke = time.perf_counter()
        while deadline <= woke:  # every frame due now is one tick, late by woke - its deadline
            late.append((woke - deadline) * 1000)
            deadline += FRAME_S
        _busy(work_us)
    return late


def _summary(late: list[float]) -> dict[str, Any]:
    arr = np.array(late)
    return {
        "ticks": len(arr),
        "late_over_2ms": int((arr > 2).sum()),
        "late_over_20ms": int((arr > 20).sum()),
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
        "max_ms": round(float(arr.max()), 2),
    }


def _clip16k() -> np.ndarray:
    from mediaserver.pipeline.engines.piper_tts import PiperTts

    tts = PiperTts(threads=1)
    pcm = np.concatenate([c.pcm for c in tts.synthesize(CLIP_TEXT)])
    out: np.ndarray = np.clip(soxr.resample(pcm.astype(np.float32), tts.sample_rate, 16000), -32768, 32767)
    return out.astype(np.int16)


def run(
    seconds: float,
    rounds: int,
    nices: list[int],
    work_us: float,
    switch_ms: list[float],
    sched_idle: bool,
    process: bool = False,
) -> dict[str, Any]:
    single_threaded_blas()  # as the app does: numpy's BLAS pool runs at the loop's priority
    load_before = os.getloadavg()
    default_switch = sys.getswitchinterval()
    clip = _clip16k()
    loads = {n: Inference(n, clip) for n in nices}
    # name -> (the inference running beside the ticker, or None; the GIL switch interval)
    conditions: dict[str, tuple[Inference | ProcessInference | None, float]] = {"idle": (None, default_switch)}
    conditions |= {f"nice_{n}": (load, default_switch) for n, load in loads.items()}
    if sched_idle:  # SCHED_IDLE at the highest nice level: woken normal threads preempt it at once
        conditions[f"nice_{max(nices)}_sched_idle"] = (Inference(max(nices), clip, idle_policy=True), default_switch)
    if process:  # the same loops in a worker process at the highest nice level
        conditions[f"process_nice_{max(nices)}"] = (ProcessInference(max(nices), clip), default_switch)
    niced = [load for n, load in loads.items() if n > 0]
    conditions |= {f"nice_{load.nice}_switch_{ms:g}ms": (load, ms / 1000) for load in niced for ms in switch_ms}
    late: dict[str, list[float]] = {c: [] for c in conditions}
    passes: dict[str, dict[str, int]] = {c: {"asr": 0, "tts": 0, "turn": 0} for c in conditions}
    for _ in progress(range(rounds), desc="rounds"):
        for name, (load, switch_s) in conditions.items():
            sys.setswitchinterval(switch_s)
            if load is not None:
                before = dict(load.passes)
                load.start()
                time.sleep(0.3)  # every worker inside its first pass
            late[name] += uvloop.run(_ticker(seconds, work_us))
            if load is not None:
                load.stop()
                for job, count in load.passes.items():
                    passes[name][job] += count - before[job]
            sys.setswitchinterval(default_switch)
    result: dict[str, Any] = {}
    for name, (load, switch_s) in conditions.items():
        entry = _summary(late[name])
        entry["gil_switch_ms"] = round(switch_s * 1000, 3)
        if load is not None:
            entry["passes_per_s"] = {k: round(v / (seconds * rounds), 2) for k, v in passes[name].items()}
            entry["worker_nices"] = load.thread_nices()
        result[name] = entry
    for load, _ in conditions.values():
        if isinstance(load, ProcessInference):
            load.close()
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "clip_s": round(len(clip) / 16000, 2),
        "seconds_per_run": seconds,
        "rounds": rounds,
        "tick_work_us": work_us,
        "load": "3 threads looping: whisper tiny.en (10 s window) on the clip, piper on a clause, smart-turn",
        "conditions": result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="ticker seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nices", default="0,10,19", help="inference nice levels to compare")
    parser.add_argument("--switch-ms", default="1", help="GIL switch intervals to try at each nice > 0 ('' = none)")
    parser.add_argument("--sched-idle", action="store_true", help="also try SCHED_IDLE inference threads")
    parser.add_argument("--process", action="store_true", help="also run the inference in a worker process")
    parser.add_argument("--tick-work-us", type=float, default=300.0, help="Python work per tick (the calls)")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    nices = [int(n) for n in args.nices.split(",")]
    switches = [float(ms) for ms in args.switch_ms.split(",") if ms]
    report = run(args.seconds, args.rounds, nices, args.tick_work_us, switches, args.sched_idle, args.process)
    text = json.dumps(report, indent=2)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "inference_priority.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
