"""Voice-turn latency and barge-in at the wire, over loopback SIP, with the scripted LLM.

    python -m benchmarks.latency_ai [--calls 12] [--ttft-ms 150] [--eos-ms 1000] [--out benchmarks/results]

Each call: the agent greets with a long scripted reply; the caller (espeak-ng "Wait, are you open
on Sunday" over PCMU) barges in after a random 0.8-3.0 s of agent audio; the agent's next reply
(the scripted LLM answers every request with the same long text after a fixed time to first
token) is measured from the server's endpoint decision, then the caller hangs up.
Measured, all at the caller's socket on this host:

* endpoint -> first agent packet: `turn_endpoint` (server event, wall clock) to the arrival of
  the reply's first RTP packet (the talkspurt's marker bit) after it (goal p50 <= 40 ms, p95 <=
  150 ms when the TTFT is below the endpoint silence, which lets the reply be prepared
  preemptively); also reported to the first packet louder than -44 dBFS peak (Piper's leading
  silence comes first);
* barge-in onset -> last agent packet: the first caller frame sent with speech energy (peak above
  -32 dBFS) to the arrival of the last agent packet that is not digital silence (goal p95 <= 120 ms);
* heard-text accuracy: the received agent audio up to the cut is transcribed (whisper tiny.en)
  and its word count compared with the words the server kept in the LLM history; a barge-in
  counts as right when they differ by at most one word (goal >= 95 %).

`AiCaller` (a `SipCaller` that sends paced RTP continuously, silence unless told to speak, and
can wait on what the agent does) is also what the loopback conversation test drives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.sipclient import OFFER_CODECS, SipCaller
from mediaserver.rtp.packet import RtpPacket
from mscodecs import make_codec

FRAME = 160  # PCMU, 20 ms
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
        pt = OFFER_CODECS[self.codec][0]
        seq, ts, ssrc = random.getrandbits(16), random.getrandbits(32), random.getrandbits(32)
        start = time.monotonic()
        silence = np.zeros(FRAME, dtype=np.int16)
        n = 0
        while True:
            pcm = self._outbox.pop(0) if self._outbox else silence
            if pcm.ndim != 1 or len(pcm) != FRAME:
                raise ValueError(f"caller frames must be {FRAME} mono samples, got shape {pcm.shape}")
            self._rtp.transport.sendto(RtpPacket(pt, seq, ts, ssrc, codec.encode(pcm)).serialize(), self.remote_rtp)
            if np.abs(pcm.astype(np.int32)).max() > CALLER_LEVEL:
                self.sent_speech_ns.append(time.monotonic_ns())
            seq, ts, n = (seq + 1) & 0xFFFF, (ts + FRAME) & 0xFFFFFFFF, n + 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))

    def say(self, pcm: np.ndarray) -> int:
        """Queue caller audio (8 kHz); returns the send time (monotonic ns) of its first loud frame, later."""
        frames = [pcm[i:i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]
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

    async def wait_agent(self, *, speaking_ms: int = 0, silent_ms: int = 0, since_ns: int = 0,
                         timeout_s: float = 30.0) -> int:
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
        pcm = [codec.decode(r.packet.payload) for r in list(self.received)
               if since_ns <= r.arrival_ns <= until_ns and r.packet.payload_type == OFFER_CODECS[self.codec][0]]
        return np.concatenate(pcm) if pcm else np.zeros(0, np.int16)


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
          end_of_speech_timeout: {eos_ms}
{extra}
"""


def write_config(tmp: Path, llm_url: str, *, eos_ms: int = 700, extra_params: str = "",
                 far_end_delay_ms: int = 0) -> Path:
    (tmp / "ai.yaml").write_text(AI_SWML.format(eos_ms=eos_ms, extra=extra_params))
    config = tmp / "ai.toml"
    config.write_text(
        f'[llm]\nbase_url = "{llm_url}"\nmodel = "scripted"\nfirst_token_timeout_s = 5.0\n'
        f"far_end_delay_ms = {far_end_delay_ms}\n\n"
        f'[asr]\nwindow_s = 10.0\n\n[logging]\ncall_log_dir = "{tmp}"\n\n'
        f'[routes]\ndefault = "ai.yaml"\n\n[routes.users]\nai = "ai.yaml"\n')
    return config


def call_events(log_dir: Path, call_id: str) -> list[dict[str, Any]]:
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in call_id)[:120]
    path = log_dir / f"{safe}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def mono_to_wall() -> float:
    """Offset that turns time.monotonic_ns() into wall seconds (server events carry wall time)."""
    return time.time() - time.monotonic_ns() / 1e9


# ---- the benchmark --------------------------------------------------------------------------------

LONG_REPLY = ("Thanks for calling the test line. We are open from nine in the morning until five in the "
              "evening from Monday to Friday, and from ten until two on Saturday. We are closed on Sunday "
              "and on public holidays, but you can always leave a message on our website.")


@contextlib.contextmanager
def _server(config: Path) -> Iterator[Any]:
    from tests.support.server import ServerProcess

    proc = ServerProcess(config=config).start()
    try:
        yield proc
    finally:
        proc.stop()


async def one_call(sip_port: int, log_dir: Path, rng: random.Random, interrupt: np.ndarray) -> dict[str, Any]:
    caller = AiCaller(("127.0.0.1", sip_port), user="ai")
    await caller.open()
    offset = mono_to_wall()
    said = 0
    try:
        answer = await caller.call()
        if answer.status != 200:
            return {"call_id": caller.call_id, "error": f"call answered {answer.status}"}
        await caller.start_media()
        await caller.wait_agent(speaking_ms=int(rng.uniform(800, 3000)))
        said = len(caller.sent_speech_ns)
        caller.say(interrupt)
        await caller.until_said()
        await caller.wait_agent(speaking_ms=300, since_ns=time.monotonic_ns())  # the next reply has started
        await caller.stop_media()
        await caller.hangup()
    except (TimeoutError, AssertionError) as exc:
        failure: str | None = f"{type(exc).__name__}: {exc}"
    else:
        failure = None
    finally:
        with contextlib.suppress(Exception):
            await caller.stop_media()
        caller.close()
    await asyncio.sleep(0.3)
    events = call_events(log_dir, caller.call_id)
    onset_ns = caller.sent_speech_ns[said] if len(caller.sent_speech_ns) > said else None
    result: dict[str, Any] = {"call_id": caller.call_id}
    if failure:
        result["error"] = failure
    start_ts = events[0]["ts"] if events else 0.0
    result["timeline"] = [(e["event"], round(e["ts"] - start_ts, 3), e.get("text") or e.get("reason") or "")
                          for e in events if e["event"].startswith(("turn_", "barge_", "ai_"))]
    # A paused or idle agent sends digital silence (PCMU 0xFF decodes to 0): any other sample is
    # agent audio, quiet or not.
    packets = caller.agent_packets(level=0)
    frames = caller.agent_frames()
    if onset_ns is not None:
        # The last agent audio packet before the first silent gap that follows the barge onset.
        last = None
        for t, audio in packets:
            if t < onset_ns:
                continue
            if audio:
                last = t
            elif last is not None or t > onset_ns + 1_000_000_000:
                break
        result["barge_ms"] = (last - onset_ns) / 1e6 if last else 0.0
        paused = [e for e in events if e["event"] == "barge_paused"]
        if paused:  # where the time goes: caller onset -> server decision -> last packet
            result["barge_decision_ms"] = round((paused[0]["ts"] - offset) * 1e3 - onset_ns / 1e6, 1)
        flushed = [e for e in events if e["event"] == "barge_flushed"]
        if flushed:
            first_audio = next(t for t, a in packets if a)
            heard_audio = caller.agent_audio(first_audio - 1, last or onset_ns)
            result["heard_words_server"] = flushed[0]["heard_words"]
            result["heard_text_server"] = flushed[0]["heard_text"]
            result["heard_audio"] = heard_audio
    endpoints = [e for e in events if e["event"] == "turn_endpoint"]
    gaps, audible = [], []
    for endpoint in endpoints:
        at_ns = (endpoint["ts"] - offset) * 1e9
        # The reply's first packet carries the RTP marker (first frame of a talkspurt).
        first = [t for t, _, marker in frames if marker and t >= at_ns]
        loud = [t for t, peak, _ in frames if peak > AGENT_LEVEL and t >= at_ns]
        if first:
            gaps.append((first[0] - at_ns) / 1e6)
        if loud:
            audible.append((loud[0] - at_ns) / 1e6)
    result["endpoint_ms"] = gaps
    result["endpoint_audible_ms"] = audible
    result["preemptive"] = [e.get("preemptive") for e in endpoints]
    return result


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else float("nan")


async def run(calls: int, ttft_ms: int, out: Path, seed: int = 1, eos_ms: int = 1000) -> dict[str, Any]:
    from tests.support.llm_server import ScriptedLlmServer, Turn
    from tests.support.speech import transcribe, words, write_wav

    rng = random.Random(seed)
    interrupt = espeak_8k("Wait, are you open on Sunday")
    script = [Turn(text=LONG_REPLY, ttft_s=ttft_ms / 1000, token_delay_s=0.01)]
    results = []
    with tempfile.TemporaryDirectory(prefix="latency-ai-") as tmp_name:
        tmp = Path(tmp_name)
        async with ScriptedLlmServer(script, loop_script=True) as llm:
            config = write_config(tmp, llm.base_url, eos_ms=eos_ms)
            with _server(config) as server:
                for i in range(calls):
                    result = await one_call(server.sip_port, tmp, rng, interrupt)
                    audio = result.pop("heard_audio", None)
                    if audio is not None and len(audio):
                        wav = write_wav(tmp / f"heard{i}.wav", audio, 8000)
                        result["heard_words_wire"] = len(words(transcribe(wav)))
                    results.append(result)
                    print(json.dumps({k: v for k, v in result.items() if k != "timeline"}), file=sys.stderr)
                lag = server.get("/health").get("loop_lag_ms")
    endpoint = [g for r in results for g in r.get("endpoint_ms", [])]
    audible = [g for r in results for g in r.get("endpoint_audible_ms", [])]
    barge = [r["barge_ms"] for r in results if r.get("barge_ms")]
    heard = [r for r in results if "heard_words_wire" in r]
    right = [r for r in heard if abs(r["heard_words_wire"] - r["heard_words_server"]) <= 1]
    summary = {
        "calls": calls,
        "failed_calls": sum(1 for r in results if "error" in r),
        "ttft_ms": ttft_ms,
        "end_of_speech_timeout_ms": eos_ms,
        "endpoint_to_first_packet_ms": {"n": len(endpoint), "p50": _pct(endpoint, 0.5), "p95": _pct(endpoint, 0.95),
                                        "max": round(max(endpoint), 1) if endpoint else None},
        "endpoint_to_first_audible_packet_ms": {"p50": _pct(audible, 0.5), "p95": _pct(audible, 0.95)},
        "barge_onset_to_last_packet_ms": {"n": len(barge), "p50": _pct(barge, 0.5), "p95": _pct(barge, 0.95),
                                          "max": round(max(barge), 1) if barge else None},
        "heard_text_within_one_word": {"n": len(heard), "share": round(len(right) / len(heard), 3) if heard else None},
        "server_loop_lag_ms": lag,
        "goals": {"endpoint_p50_ms": 40, "endpoint_p95_ms": 150, "barge_p95_ms": 120, "heard_share": 0.95},
        "host": os.uname().nodename,
    }
    _write(out, {"summary": summary, "calls": results}, endpoint, barge, ttft_ms)
    return summary


def _write(out: Path, data: dict[str, Any], endpoint: list[float], barge: list[float], ttft_ms: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latency_ai.json").write_text(json.dumps(data, indent=2))
    _plot(endpoint, barge, out / "latency_ai.png", ttft_ms)


def _plot(endpoint: list[float], barge: list[float], path: Path, ttft_ms: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, values, title, goal in ((axes[0], endpoint, "endpoint decision -> first agent packet", 150),
                                    (axes[1], barge, "barge-in onset -> last agent packet", 120)):
        if values:
            ax.hist(values, bins=20, color="tab:blue")
        ax.axvline(goal, color="tab:red", linestyle="--", label=f"goal p95 {goal} ms")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("ms at the caller's socket")
        ax.legend()
    fig.suptitle(f"AI turn latency over loopback SIP (scripted LLM, TTFT {ttft_ms} ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--ttft-ms", type=int, default=150)
    parser.add_argument("--eos-ms", type=int, default=1000, help="end_of_speech_timeout of the ai verb")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    summary = asyncio.run(run(args.calls, args.ttft_ms, args.out, eos_ms=args.eos_ms))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
