"""Pieces every capacity mode shares: CPU pinning, reading the server from /proc and /metrics,
finding the limit of a ramp, and writing the result.

Theory of operation:

* Pinning (`pin_process`): the server goes on one core and the load generator (this process,
  every thread it has and any it starts later) on another, with sched_setaffinity on every
  thread of each process (`/proc/<pid>/task`), which is what `taskset -a -p` does. What was
  actually applied is read back with sched_getaffinity and recorded, since a container's
  cpuset can refuse a core.
* Server cost from outside: CPU seconds are utime + stime of /proc/<pid>/stat (all threads),
  so "CPU per call-second" includes the inference threads when there are any; RSS is VmRSS.
* The limit of a ramp (`find_limit`): each level of each repeat has its rules checked (a rule
  is a name, a measured value and a bound). "Calls on one core" is the highest level L such that
  every level up to L held every rule in every repeat that measured it; the level above L is
  where it broke, and the rules that broke there are named with the repeats they broke in.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
RESULTS = Path(__file__).parent / "results"


# -- pinning -------------------------------------------------------------------------------------
def pin_process(pid: int, cpus: set[int]) -> list[int]:
    """Pin every thread of `pid` to `cpus`; returns the affinity the main thread has afterwards."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except (ProcessLookupError, FileNotFoundError):
            continue  # a thread that ended meanwhile
    return sorted(os.sched_getaffinity(pid))


def pinning(server_pid: int, server_cpus: set[int] | None, load_cpus: set[int] | None) -> dict[str, Any]:
    """Apply the pinning asked for (None: leave that side alone) and record what applies now."""
    out: dict[str, Any] = {"requested": {"server": sorted(server_cpus or []), "load": sorted(load_cpus or [])}}
    if server_cpus:
        pin_process(server_pid, server_cpus)
    if load_cpus:
        pin_process(os.getpid(), load_cpus)
    out["applied"] = {
        "server": sorted(os.sched_getaffinity(server_pid)),
        "load": sorted(os.sched_getaffinity(os.getpid())),
    }
    return out


# -- the server from outside ---------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, every thread


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scrape(http_port: int) -> dict[str, float]:
    """The server's /metrics samples by name and labels (Prometheus text format)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def wait_idle(http_port: int, timeout_s: float = 60.0) -> dict[str, Any]:
    """Wait until the server has no call and every RTP port is back (a busy server may answer
    /health slowly: a timed-out request is asked again, until `timeout_s`); the last /health
    answer with `idle` saying whether it got there."""
    deadline = time.monotonic() + timeout_s
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=10) as response:
                health = json.loads(response.read())
        except OSError:
            continue
        if health.get("calls") == 0 and health.get("rtp_ports_in_use") == 0:
            return health | {"idle": True}
        time.sleep(0.2)
    # Not raised: the levels measured so far are still worth writing; the result says so.
    return health | {"idle": False}


TICKER_LATE = "mediaserver_ticker_late_frames"


def ticker_late(metrics: dict[str, float]) -> float:
    """The server ticker's late-frame counter from a scrape (a Prometheus counter is exposed with `_total`)."""
    return metrics.get(f"{TICKER_LATE}_total", metrics.get(TICKER_LATE, 0.0))


TICKER_LATE_DEFINITION = (
    "the server's own count (/metrics mediaserver_ticker_late_frames_total): frames its pacer sent more "
    "than the pacer's late threshold (2 ms by default) after their deadline; not the wire's definition"
)


def slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of ys on xs (None with fewer than two distinct xs)."""
    if len(set(xs)) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


# -- rules and the limit -------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    name: str
    value: float | None
    bound: float
    kind: str = "max"  # "max": value <= bound holds; "min": value >= bound holds

    def holds(self) -> bool:
        if self.value is None:
            return False
        return self.value <= self.bound if self.kind == "max" else self.value >= self.bound

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "bound": self.bound, "kind": self.kind, "holds": self.holds()}


def rules_dict(rules: Sequence[Rule]) -> dict[str, Any]:
    return {r.name: r.as_dict() for r in rules}


def find_limit(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The highest level held in every repeat (and every level below it), and what broke above it.

    `runs` are level rows with "level", "repeat" and "rules" ({name: {"holds": ...}})."""
    levels = sorted({r["level"] for r in runs})
    limit = 0
    broke_at: int | None = None
    for level in levels:
        rows = [r for r in runs if r["level"] == level]
        if all(all(rule["holds"] for rule in r["rules"].values()) for r in rows):
            limit = level
            continue
        broke_at = level
        break
    broken: dict[str, list[int]] = {}
    if broke_at is not None:
        for r in runs:
            if r["level"] == broke_at:
                for name, rule in r["rules"].items():
                    if not rule["holds"]:
                        broken.setdefault(name, []).append(r["repeat"])
    return {
        "limit": limit,
        "broke_at": broke_at,
        "rules_broken_at_next_level": broken,  # rule -> repeats it broke in
        "reached": broke_at is not None,
    }


def level_bar(total: int, desc: str) -> Any:
    """A progress bar over levels (benchmarks/progress.py), or a stand-in yielding None without it."""
    try:
        from benchmarks.progress import progress
    except ImportError:  # the progress module is optional
        return contextlib.nullcontext(None)
    return progress(total=total, desc=desc, unit="level")


def write_result(result: dict[str, Any], out: Path, stem: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.json"
    path.write_text(json.dumps(result, indent=2))
    return path


def plot_style() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
