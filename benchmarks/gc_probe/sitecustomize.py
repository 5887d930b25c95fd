"""A probe of the cyclic garbage collector inside a benchmark's server process.

    PYTHONPATH=benchmarks/gc_probe python -m benchmarks.capacity setup --rates 100 --duration 20

Python imports `sitecustomize` at startup from the path; this one acts only in a process whose
arguments hold `serve` (the server, not the load generator). Every collection is timed with
`gc.callbacks`; every 2 s `/tmp/gc_probe.<pid>.txt` is rewritten with, per generation, the
count and the longest pass, then every pass over 3 ms as (unix time, generation, ms, objects
collected). A full (generation 2) pass stops the event loop, so every call's media, for its
whole length: the figure to watch under call churn (issue 16).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from typing import Any

if "serve" in sys.argv:
    _started: list[float] = [0.0]
    _passes: list[tuple[float, int, float, int]] = []

    def _timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
        else:
            ms = (time.perf_counter() - _started[0]) * 1000
            _passes.append((round(time.time(), 3), info["generation"], round(ms, 2), info["collected"]))

    def _write() -> None:
        while True:
            time.sleep(2)
            lines = []
            for generation in range(3):
                mine = [ms for _, g, ms, _ in _passes if g == generation]
                if mine:
                    lines.append(f"gen{generation} passes={len(mine)} longest_ms={max(mine)}")
            lines += [str(p) for p in _passes if p[2] > 3]
            with open(f"/tmp/gc_probe.{os.getpid()}.txt", "w") as out:
                out.write("\n".join(lines) + "\n")

    gc.callbacks.append(_timed)
    threading.Thread(target=_write, daemon=True, name="gc-probe").start()
