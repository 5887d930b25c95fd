"""Shared pieces of the AI benchmarks at the wire (latency_ai, latency, bargein).

Theory of operation: `AiCaller` is a `SipCaller` that streams paced 20 ms RTP frames for the
whole call (silence unless told to speak, in the negotiated codec: PCMU 8 kHz or opus 48 kHz;
caller audio is given at 8 kHz and resampled), records the monotonic send time of every frame
with caller energy, and can wait on what the agent does (speaking so long, then silent so long)
by decoding the packets it received. A benchmark starts a real `mediaserver serve` process
(`server`) whose config (`write_config`) routes every call to the `ai` verb with the scripted
LLM (tests/support/llm_server.py) running in the benchmark's own event loop, and leaves every
other setting at its shipped default (a benchmark that overrides one says so with `overrides`);
the server's per-call event log (`call_events`) carries wall times, which `mono_to_wall` lines
up with the caller's monotonic packet times (same host). `LoopLag` measures the generator's own
event loop lag, so that a slow generator is reported instead of being blamed on the server;
`provenance` records the commit and the CPU a result ran on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.sipclient import OFFER_CODECS, SipCaller
from mediaserver.rtp.packet import RtpPacket
from mscodecs import make_codec

FRAME = 160  # caller audio is given at 8 kHz, 20 ms frames
AGENT_LEVEL = 200  # peak amplitude that counts as agent audio (PCMU silence decodes to 0..8)
CALLER_LEVEL = 800


class AiCaller(SipCaller):
    """A caller that streams 20 ms frames for the whole call and reacts to the agent."""

    async def start_media(self) -> None:
        self._outbox: list[np.ndarray] = []
        self.sent_speech_ns: list[int] = []  # monotonic send time of every frame with caller energy
        self._sender = asyncio.create_task(self._send_loop())

    async def _send_loop(self) -> None:
        assert self.remote_rtp is not None and self._rtp.transport is not None
        codec = make_codec(self.codec)
        pt, rtpmap = OFFER_CODECS[self.codec]
        step = int(rtpmap.split("/")[1]) // 50  # RTP clock units per 20 ms
        ratio = codec.sample_rate // 8000  # 8 kHz caller audio -> the codec's rate (1 or 6)
        seq, ts, ssrc = random.getrandbits(16), random.getrandbits(32), random.getrandbits(32)
        start = time.monotonic()
        silence = np.zeros(FRAME, dtype=np.int16)
        n = 0
        while True:
            pcm = self._outbox.pop(0) if self._outbox else silence
            if pcm.ndim != 1 or len(pcm) != FRAME:
                raise ValueError(f"caller frames must be {FRAME} mono samples, got shape {pcm.shape}")
            wire = pcm if ratio == 1 else _upsample(pcm, ratio)
            self._rtp.transport.sendto(RtpPacket(pt, seq, ts, ssrc, codec.encode(wire)).serialize(), self.remote_rtp)
            if np.abs(pcm.astype(np.int32)).max() > CALLER_LEVEL:
                self.sent_speech_ns.append(time.monotonic_ns())
            seq, ts, n = (seq + 1) & 0xFFFF, (ts + step) & 0xFFFFFFFF, n + 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))

    def say(self, pcm: np.ndarray) -> int:
        """Queue caller audio (8 kHz); returns how many 20 ms frames it fills."""
        frames = [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]
        self._outbox.extend(np.ascontiguousarray(f, dtype=np.int16) for f in frames)
        return len(frames)

    async def until_said(self) -> None:
        while self._outbox:  # noqa: ASYNC110 - the sender drains the list on its own 20 ms grid
            await asyncio.sleep(0.02)

    async def stop_media(self) -> None:
        if not hasattr(self, "_sender"):
            return
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender

    # -- what the agent does ---------------------------------------------------------------
    def agent_packets(self, since_ns: int = 0, level: int = AGENT_LEVEL) -> list[tuple[int, bool]]:
        """(arrival ns, carries audio louder than `level`) for each agent packet since a time."""
        return [(t, peak > level) for t, peak, _ in self.agent_frames(since_ns)]

    def agent_frames(self, since_ns: int = 0) -> list[tuple[int, int, bool]]:
        """(arrival ns, peak amplitude, RTP marker) of each agent packet since a time."""
        codec = make_codec(self.codec)
        out = []
        for r in list(self.received):
            if r.arrival_ns >= since_ns and r.packet.payload_type == OFFER_CODECS[self.codec][0]:
                pcm = codec.decode(r.packet.payload)
                out.append((r.arrival_ns, int(np.abs(pcm.astype(np.int32)).max()), r.packet.marker))
        return out

    async def wait_agent(
        self, *, speaking_ms: int = 0, silent_ms: int = 0, since_ns: int = 0, timeout_s: float = 30.0
    ) -> int:
        """Wait until the agent has spoken `speaking_ms` (then, if asked, been silent `silent_ms`)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            packets = self.agent_packets(since_ns)
            loud = [t for t, a in packets if a]
            if len(loud) * 20 >= speaking_ms and loud:
                if not silent_ms:
                    return loud[-1]
                quiet = 0
                for _, audio in reversed(packets):
                    if audio:
                        break
                    quiet += 1
                if quiet * 20 >= silent_ms:
                    return loud[-1]
            await asyncio.sleep(0.02)
        raise TimeoutError(f"agent did not speak {speaking_ms} ms then stay silent {silent_ms} ms")

    def agent_audio(self, since_ns: int, until_ns: int) -> np.ndarray:
        codec = make_codec(self.codec)
        pcm = [
            codec.decode(r.packet.payload)
            for r in list(self.received)
            if since_ns <= r.arrival_ns <= until_ns and r.packet.payload_type == OFFER_CODECS[self.codec][0]
        ]
        return np.concatenate(pcm) if pcm else np.zeros(0, np.int16)


def _upsample(pcm: np.ndarray, ratio: int) -> np.ndarray:
    """8 kHz -> ratio x 8 kHz by linear interpolation (enough for a codec benchmark's caller)."""
    x = np.arange(len(pcm) * ratio) / ratio
    return np.interp(x, np.arange(len(pcm)), pcm.astype(np.float64)).astype(np.int16)


def espeak_8k(text: str) -> np.ndarray:
    from tests.support.speech import read_wav, synthesize_espeak

    with tempfile.TemporaryDirectory() as tmp:
        path = synthesize_espeak(text, Path(tmp) / "say.wav", sample_rate=8000)
        pcm, _ = read_wav(path)  # float32 (frames, channels) in [-1, 1]
    mono = pcm[:, 0] if pcm.ndim == 2 else pcm
    return np.clip(mono * 32767.0, -32768, 32767).astype(np.int16)


def cough(ms: int = 150, seed: int = 5) -> np.ndarray:
    """A cough-like burst: broadband noise with a sharp attack and a fast decay."""
    rng = np.random.default_rng(seed)
    n = 8000 * ms // 1000
    return (14000 * np.exp(-np.linspace(0, 5, n)) * rng.uniform(-1, 1, n)).astype(np.int16)


AI_SWML = """version: 1.0.0
sections:
  main:
    - answer: {{}}
    - ai:
        prompt:
          text: You are the test line of a shop. Answer briefly.
        params:
{params}
"""


def write_config(
    tmp: Path,
    llm_url: str,
    *,
    eos_ms: int | None = None,
    extra_params: str = "",
    far_end_delay_ms: int | None = None,
    lift_admission: bool = False,
) -> Path:
    """The server config and the `ai` document for one benchmark run, in `tmp`.

    Only what a benchmark needs is set (the scripted LLM's URL and model, the call log folder,
    the routes); everything else is the shipped default (config/default.toml and the `ai`
    verb's params), so that a result describes the server as shipped. `eos_ms` and
    `far_end_delay_ms` override a default only when given; `overrides(...)` says which did.
    `lift_admission` turns [admission] limits off, for a capacity run that looks for them.
    """
    params = [f"          end_of_speech_timeout: {eos_ms}"] if eos_ms is not None else []
    params += [line for line in extra_params.splitlines() if line.strip()]
    (tmp / "ai.yaml").write_text(AI_SWML.format(params="\n".join(params) or "          {}"))
    llm = f'[llm]\nbase_url = "{llm_url}"\nmodel = "scripted"\n'
    if far_end_delay_ms is not None:
        llm += f"far_end_delay_ms = {far_end_delay_ms}\n"
    config = tmp / "ai.toml"
    config.write_text(
        f'{llm}\n[logging]\ncall_log_dir = "{tmp}"\n\n[routes]\ndefault = "ai.yaml"\n\n[routes.users]\nai = "ai.yaml"\n'
        + ("\n[admission]\nai_capacity = 0\nmax_calls = 0\n" if lift_admission else "")
    )
    return config


def overrides(*, eos_ms: int | None = None, far_end_delay_ms: int | None = None) -> dict[str, Any]:
    """The shipped defaults a run changed, for its JSON (empty: it ran on the shipped defaults)."""
    out: dict[str, Any] = {}
    if eos_ms is not None:
        out["ai.params.end_of_speech_timeout"] = eos_ms
    if far_end_delay_ms is not None:
        out["llm.far_end_delay_ms"] = far_end_delay_ms
    return out


def provenance() -> dict[str, Any]:
    """What a result ran on: the commit (short hash, and whether the tree had uncommitted
    changes to tracked files), the CPU model and the machine."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=root).stdout
        return None

    commit = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit.strip() if commit else None,
        "dirty": bool(status.strip()) if status is not None else None,
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def call_events(log_dir: Path, call_id: str) -> list[dict[str, Any]]:
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in call_id)[:120]
    path = log_dir / f"{safe}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def mono_to_wall() -> float:
    """Offset that turns time.monotonic_ns() into wall seconds (server events carry wall time)."""
    return time.time() - time.monotonic_ns() / 1e9


@contextlib.contextmanager
def server(config: Path) -> Iterator[Any]:
    from tests.support.server import ServerProcess

    proc = ServerProcess(config=config).start()
    try:
        yield proc
    finally:
        proc.stop()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else float("nan")


class LoopLag:
    """The generator's own event-loop lag: how late a 10 ms sleep wakes up (ms)."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval_s)
            self.lags_ms.append(max(0.0, (time.monotonic() - before - self.interval_s) * 1000))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return {
            "p50_ms": pct(self.lags_ms, 0.5),
            "p99_ms": pct(self.lags_ms, 0.99),
            "max_ms": round(max(self.lags_ms), 1) if self.lags_ms else float("nan"),
            "samples": len(self.lags_ms),
        }
