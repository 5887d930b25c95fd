"""What the soak and flood benchmarks read from a running server and from the wire.

Theory of operation:

* `ProcessProbe` reads the server process from the outside: RSS from /proc/<pid>/status,
  open file descriptors by listing /proc/<pid>/fd, CPU from /proc/<pid>/stat. The server's
  own view comes from its `/health` (live calls, asyncio tasks) and `/metrics`
  (`scrape_metrics`: the ticker's late-frame counter, the asyncio task gauge).
* `WireLateness` folds the load generator's per-packet kernel arrival times (loadgen.LoadCall
  .arrivals: (arrival ns, RTP timestamp)) into a constant-memory summary, call by call, so a
  30-minute soak of 100 calls does not keep 9 million tuples. A frame is *late* when it arrives
  more than `LATE_MS` (20 ms, one frame) after its due time; its due time is the call's first
  arrival plus its RTP-timestamp offset, shifted by the call's earliest deviation (so the best
  packet of the call defines "on time", as loadgen.deviations_ms does). Because that shift is
  only known at the end of a call, each call keeps its deviations (float32, 4 bytes a packet)
  until `close`, then they go into one pooled histogram. A gap of more than `STALL_MS` between
  two arrivals is a media stall (the server stopped sending without hanging up).
* `server_config` writes the server's TOML and SWML for these runs into a folder;
  `speech_payloads` is an AI caller's cycle of speech (a question, then silence).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

LATE_MS = 20.0
STALL_MS = 1000.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
_BIN_MS = 0.1
_BINS = 5000  # 0..500 ms in 0.1 ms bins; anything later lands in the last bin


class ProcessProbe:
    """RSS, open fds and CPU seconds of one process, read from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


@dataclass
class _CallWire:
    first_arrival_ns: int = 0
    first_ts: int = 0
    last_ts_raw: int = 0
    last_ts: int = 0  # unwrapped
    last_arrival_ns: int = 0
    max_gap_ms: float = 0.0
    chunks: list[np.ndarray] = field(default_factory=list)


@dataclass
class WireSummary:
    calls: int = 0
    packets: int = 0
    late_frames: int = 0
    calls_with_late_frames: int = 0
    media_stalls: int = 0  # calls with a gap > STALL_MS between two packets
    max_gap_ms: float = 0.0
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(_BINS + 1, np.int64))

    def percentile_ms(self, q: float) -> float | None:
        total = int(self.histogram.sum())
        if not total:
            return None
        rank = int(np.searchsorted(np.cumsum(self.histogram), q / 100 * total))
        return round(min(rank, _BINS) * _BIN_MS, 1)

    def view(self) -> dict[str, Any]:
        """JSON: start event = the frame's due time on the call's 20 ms grid, end event = its kernel
        arrival time at the load generator's socket."""
        return {
            "calls": self.calls,
            "packets": self.packets,
            "late_frames": self.late_frames,
            "late_threshold_ms": LATE_MS,
            "calls_with_late_frames": self.calls_with_late_frames,
            "media_stalls": self.media_stalls,
            "max_gap_between_packets_ms": round(self.max_gap_ms, 1),
            # n is in the millions in any real run: p99 is well supported; p50 is the lower bin edge.
            "deviation_ms_p50": self.percentile_ms(50),
            "deviation_ms_p99": self.percentile_ms(99),
            "deviation_ms_max": self.max_ms(),
        }

    def max_ms(self) -> float | None:
        nonzero = np.nonzero(self.histogram)[0]
        return round(float(nonzero[-1]) * _BIN_MS, 1) if len(nonzero) else None


class WireLateness:
    """Per-call deviation from the 20 ms grid at the wire, folded as packets arrive."""

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self._calls: dict[str, _CallWire] = {}
        self.summary = WireSummary()

    def fold(self, call_id: str, arrivals: list[tuple[int, int]]) -> None:
        """Take (and clear) a call's new arrivals."""
        if not arrivals:
            return
        batch = np.array(arrivals, dtype=np.int64)
        arrivals.clear()
        state = self._calls.get(call_id)
        if state is None:
            state = self._calls[call_id] = _CallWire(
                first_arrival_ns=int(batch[0, 0]),
                first_ts=int(batch[0, 1]),
                last_ts_raw=int(batch[0, 1]),
                last_ts=int(batch[0, 1]),
                last_arrival_ns=int(batch[0, 0]),
            )
        raw = batch[:, 1]
        steps = np.diff(np.concatenate(([state.last_ts_raw], raw))) % (1 << 32)
        steps[steps >= 1 << 31] -= 1 << 32  # an old packet arriving late steps backwards
        stamps = state.last_ts + np.cumsum(steps)
        arrival = batch[:, 0]
        gaps = np.diff(np.concatenate(([state.last_arrival_ns], arrival)))
        state.max_gap_ms = max(state.max_gap_ms, float(gaps.max()) / 1e6)
        state.last_ts_raw, state.last_ts, state.last_arrival_ns = int(raw[-1]), int(stamps[-1]), int(arrival[-1])
        ideal_ns = (stamps - state.first_ts) * (1e9 / self.clock_rate)
        state.chunks.append(((arrival - state.first_arrival_ns) - ideal_ns).astype(np.float32) / 1e6)

    def close(self, call_id: str) -> None:
        """The call ended: shift its deviations by its best packet and add them to the summary."""
        state = self._calls.pop(call_id, None)
        if state is None or not state.chunks:
            return
        dev = np.concatenate(state.chunks)
        dev -= dev.min()
        late = int((dev > LATE_MS).sum())
        s = self.summary
        s.calls += 1
        s.packets += len(dev)
        s.late_frames += late
        s.calls_with_late_frames += late > 0
        s.media_stalls += state.max_gap_ms > STALL_MS
        s.max_gap_ms = max(s.max_gap_ms, state.max_gap_ms)
        s.histogram += np.bincount(np.minimum((dev / _BIN_MS).astype(np.int64), _BINS), minlength=_BINS + 1)

    def close_all(self) -> None:
        for call_id in list(self._calls):
            self.close(call_id)


def scrape_metrics(http_port: int) -> dict[str, float]:
    """The server's /metrics samples by name (with labels), from the Prometheus text format."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


T = TypeVar("T")


async def patiently(read: Callable[[], T], attempts: int = 60) -> T:
    """`read()` (a blocking HTTP read of the server) in a thread, retried once a second while it
    fails: a server starved of CPU on a shared box can take longer than a read's 5 s timeout."""
    for attempt in range(attempts):
        try:
            return await asyncio.to_thread(read)
        except OSError:
            if attempt + 1 == attempts:
                raise
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


TICKER_LATE = "mediaserver_ticker_late_frames_total"
TASKS = "mediaserver_asyncio_tasks"


def free_rtp_base(ports: int, low: int = 40000, high: int = 60000) -> int:
    """An even base port from which `2 * ports` UDP ports are all free now (other benchmarks and
    test servers on this box take their own ranges; a taken port would turn into a 503)."""
    bases = list(range(low, high - 2 * ports, 500))
    random.shuffle(bases)
    for base in bases:
        held: list[socket.socket] = []
        try:
            for port in range(base, base + 2 * ports + 2):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no free range of {2 * ports} UDP ports between {low} and {high}")


IDLE_SWML = """# Answer and hold: silence frames until the caller hangs up.
sections:
  main:
    - answer: {}
    - sleep: -1
"""


def server_config(folder: Path, *, llm_url: str | None, rate_limit: bool) -> Path:
    """The server's config for a soak or flood run: user `idle` answers and holds, user `ai` goes
    to the `ai` verb on the scripted LLM at `llm_url`, anything else to the idle route. With
    `rate_limit` false, the per-source limiter is off (one load generator is one source address);
    with it true, the shipped default stays (the floods measure it)."""
    from benchmarks.ai_harness import AI_SWML

    (folder / "idle.yaml").write_text(IDLE_SWML)
    text = '[routes]\ndefault = "idle.yaml"\n\n[routes.users]\nidle = "idle.yaml"\n'
    if llm_url is not None:
        (folder / "ai.yaml").write_text(AI_SWML.format(params="          {}"))
        text = f'[llm]\nbase_url = "{llm_url}"\nmodel = "scripted"\n\n' + text + 'ai = "ai.yaml"\n'
    if not rate_limit:
        text += "\n[sip.security]\nrate_limit_per_s = 0\n"
    config = folder / "server.toml"
    config.write_text(text)
    return config


def speech_payloads(cycle_s: float) -> list[bytes]:
    """PCMU payloads of one AI caller's cycle: a spoken question, then silence to `cycle_s`."""
    from benchmarks.ai_harness import espeak_8k
    from mscodecs import make_codec

    pcm = espeak_8k("Are you open on Sunday?")
    total = int(cycle_s * 8000)
    pcm = np.concatenate([pcm[:total], np.zeros(max(0, total - len(pcm)), np.int16)])
    codec = make_codec("PCMU")
    return [codec.encode(pcm[i : i + 160]) for i in range(0, total - 159, 160)]


def pin(pid: int, cpus: set[int] | None) -> list[int]:
    """Pin a process to `cpus` (None: leave it); returns the CPUs it may run on."""
    if cpus:
        os.sched_setaffinity(pid, cpus)
    return sorted(os.sched_getaffinity(pid))
