"""AI conversations at once: how many callers the `ai` verb serves before pacing or replies degrade.

Theory of operation: a real `mediaserver serve` routes every call to the `ai` verb (shipped
defaults; the scripted LLM of tests/support/llm_server.py answers "Yes, we are open until two."
at once, from a thread of this process: benchmarks/ai_harness.py). At each level N callers
(benchmarks/loadgen.py, one process, kernel receive timestamps) hold calls and talk like
callers: each speaks a sentence (espeak-ng, from benchmarks/turns.py's whole sentences, two
voices), waits for the agent's reply to start and then to end (800 ms without agent audio),
pauses 1 to 3 s, and speaks the next. The agent greets first (the ai verb's opening LLM turn):
every call's greeting is waited out before the hold starts; callers then start staggered over
the first 3 s. No new turn
starts after `hold_s`; the turns under way are let finish, then the calls hang up (the next
level places fresh calls).

Per level:

* voice-to-voice at the wire, per turn: the caller's last voiced frame sent (CLOCK_REALTIME, the
  clock of the kernel's receive stamps) -> the first agent packet received after it with a peak
  above `AGENT_LEVEL` (ai_harness: 200). A turn with no such packet within 10 s is a missed
  reply. n, p50, p90 (n >= 10), p95 (n >= 20) and max (benchmarks/stats.py);
* late frames at the wire (over 20 ms after due, benchmarks/capacity_wire.py) over every agent
  packet of the level, and jitter p99 over calls;
* the server ticker's own late count (/metrics) beside it, and server CPU (% of one core; the box
  has `cpus` of them).

Rules, per level: every call answered; no late frame at the wire; the ticker reports no late
frame; no missed reply; voice-to-voice p50 within 20 % of the first level's p50 in the same repeat
(the single call's, with the default levels). The limit is the highest level where all held in
every repeat (benchmarks/capacity_common.find_limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ai_harness import AGENT_LEVEL, CALLER_LEVEL, FRAME
from benchmarks.capacity_common import (
    TICKER_LATE_DEFINITION,
    Rule,
    cpu_seconds,
    find_limit,
    level_bar,
    pinning,
    plot_style,
    rules_dict,
    scrape,
    ticker_late,
    wait_idle,
)
from benchmarks.capacity_wire import JITTER_DEFINITION, LATE_DEFINITION, analyse_call, summarise
from benchmarks.loadgen import LoadCall, LoadGenerator
from benchmarks.stats import describe
from mscodecs import make_codec
from tests.support.server import ServerProcess

REPLY = "Yes, we are open until two."
REPLY_TIMEOUT_S = 10.0
GREETING_TIMEOUT_S = 30.0
REPLY_END_SILENCE_S = 0.8
PAUSE_S = (1.0, 3.0)
STAGGER_S = 3.0
V2V_GROWTH_LIMIT = 1.2
VOICES = ("en-us", "en-gb")

Utterance = list[tuple[bytes, bool]]  # (PCMU payload, has caller energy) per 20 ms frame


@dataclass(frozen=True)
class AiOptions:
    levels: tuple[int, ...] = (1, 4, 8, 12, 16)
    repeats: int = 2
    hold_s: float = 60.0
    seed: int = 7
    server_cpus: frozenset[int] | None = None
    load_cpus: frozenset[int] | None = None


def utterances(count: int = 6) -> list[Utterance]:
    """Caller sentences as frames: espeak-ng at 8 kHz in two voices, 200 ms of silence either side."""
    from benchmarks.turns import WHOLE, _espeak

    codec = make_codec("PCMU")
    out = []
    for i, text in enumerate(WHOLE[:count]):
        pcm = _espeak(text, VOICES[i % len(VOICES)])
        pad = np.zeros(1600, np.int16)
        pcm = np.concatenate([pad, pcm, pad])
        pcm = pcm[: len(pcm) - len(pcm) % FRAME]
        frames = [pcm[k : k + FRAME] for k in range(0, len(pcm), FRAME)]
        out.append([(codec.encode(f), int(np.abs(f.astype(np.int32)).max()) > CALLER_LEVEL) for f in frames])
    return out


@dataclass
class TurnOutcome:
    v2v_ms: float | None  # None: a missed reply


async def _first_audio_after(call: LoadCall, since_ns: int, cursor: int, timeout_s: float) -> tuple[int | None, int]:
    """The arrival of the first loud agent packet after `since_ns`, and where the scan stopped."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        audio = call.audio
        while cursor < len(audio):
            at, peak = audio[cursor]
            if at > since_ns and peak > AGENT_LEVEL:
                return at, cursor
            cursor += 1
        await asyncio.sleep(0.02)
    return None, cursor


async def _until_agent_silent(call: LoadCall, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        loud = [at for at, peak in call.audio[-100:] if peak > AGENT_LEVEL]
        if not loud or time.time_ns() - loud[-1] > REPLY_END_SILENCE_S * 1e9:
            return
        await asyncio.sleep(0.05)


async def _greeted(call: LoadCall) -> bool:
    """Wait out the agent's greeting (the ai verb speaks first): its first audio, then its end."""
    first, _ = await _first_audio_after(call, 0, 0, GREETING_TIMEOUT_S)
    await _until_agent_silent(call)
    return first is not None


async def _caller(
    gen: LoadGenerator, call: LoadCall, talk: list[Utterance], end: float, rng: random.Random
) -> list[TurnOutcome]:
    outcomes: list[TurnOutcome] = []
    cursor = 0
    await asyncio.sleep(rng.uniform(0, STAGGER_S))
    while time.monotonic() < end:
        gen.say(call, rng.choice(talk))
        while call.outbox:  # noqa: ASYNC110 - the pacing task drains it on its 20 ms grid
            await asyncio.sleep(0.02)
        last_voiced = call.speech_sent_ns[-1]
        first, cursor = await _first_audio_after(call, last_voiced, cursor, REPLY_TIMEOUT_S)
        outcomes.append(TurnOutcome(None if first is None else round((first - last_voiced) / 1e6, 1)))
        await _until_agent_silent(call)
        await asyncio.sleep(rng.uniform(*PAUSE_S))
    return outcomes


async def _level(
    server: ServerProcess, level: int, talk: list[Utterance], opts: AiOptions, rng: random.Random
) -> dict[str, Any]:
    assert server.proc is not None
    pid = server.proc.pid
    gen = LoadGenerator(("127.0.0.1", server.sip_port), user="ai")
    gen.decode_audio = True
    await gen.start()
    calls: list[LoadCall] = []
    try:
        placed = await asyncio.gather(*(gen.try_place(20.0) for _ in range(level)))
        calls = [c for c in placed if c.status == 200]
        gen.record(True)  # arrivals and agent audio from here: the greetings are waited out
        greeted = await asyncio.gather(*(_greeted(c) for c in calls))
        before = scrape(server.http_port)
        gen.record(True)
        drops0 = gen.rtp_socket_drops
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        end = wall0 + opts.hold_s
        per_call = await asyncio.gather(*(_caller(gen, c, talk, end, random.Random(rng.random())) for c in calls))
        cpu, wall = cpu_seconds(pid) - cpu0, time.monotonic() - wall0
        gen.record(False)
        after = scrape(server.http_port)
        lag = np.array(gen.loop_lag_ns, dtype=np.float64) / 1e6
        drops = gen.rtp_socket_drops - drops0
    finally:
        await gen.hang_up_all(calls)
        await gen.stop()
    idle = (await asyncio.to_thread(wait_idle, server.http_port))["idle"]
    turns = [t for outcomes in per_call for t in outcomes]
    v2v = [t.v2v_ms for t in turns if t.v2v_ms is not None]
    wire = summarise([analyse_call(c.arrivals) for c in calls])
    return {
        "calls": len(calls),
        "setup_failed": level - len(calls),
        "greetings_heard": sum(greeted),
        "window_s": round(wall, 1),
        "turns": len(turns),
        "missed_replies": len(turns) - len(v2v),
        "voice_to_voice_ms": describe(v2v),
        "late_frames_at_wire": wire["late_frames"],
        "lateness_ms_max": wire["lateness_ms_max"],
        "missing_frames_at_wire": wire["missing_frames"],
        "jitter_ms_p99": wire["jitter_ms_p99"],
        "packets_received": wire["packets_received"],
        "server_ticker_late_frames": int(ticker_late(after) - ticker_late(before)),
        "server_cpu_percent_of_core": round(100 * cpu / wall, 1),
        "generator_loop_lag_ms_p99": round(float(np.percentile(lag, 99)), 3) if len(lag) else None,
        "generator_socket_drops": drops,
        "server_went_idle_after": idle,
    }


def _rules(row: dict[str, Any], reference_p50: float | None) -> list[Rule]:
    p50 = row["voice_to_voice_ms"].get("p50")
    growth = round(p50 / reference_p50, 3) if p50 is not None and reference_p50 else None
    row["voice_to_voice_p50_vs_first_level"] = growth
    return [
        Rule("setup_failed", row["setup_failed"], 0),
        Rule("late_frames_at_wire", row["late_frames_at_wire"], 0),
        Rule("server_ticker_late_frames", row["server_ticker_late_frames"], 0),
        Rule("missed_replies", row["missed_replies"], 0),
        Rule("voice_to_voice_p50_vs_first_level", growth, V2V_GROWTH_LIMIT),
    ]


async def _ramps(server: ServerProcess, opts: AiOptions, talk: list[Utterance]) -> list[dict[str, Any]]:
    rng = random.Random(opts.seed)
    rows: list[dict[str, Any]] = []
    with level_bar(opts.repeats * len(opts.levels), "ai levels") as bar:
        for repeat in range(1, opts.repeats + 1):
            rows += await _ramp(server, opts, talk, rng, repeat, bar)
    return rows


async def _ramp(
    server: ServerProcess, opts: AiOptions, talk: list[Utterance], rng: random.Random, repeat: int, bar: Any
) -> list[dict[str, Any]]:
    """One repeat: every level in turn; the first level's p50 is the reference of the others."""
    rows: list[dict[str, Any]] = []
    reference: float | None = None
    for level in opts.levels:
        row = {"level": level, "repeat": repeat} | await _level(server, level, talk, opts, rng)
        if reference is None:
            reference = row["voice_to_voice_ms"].get("p50")
        row["rules"] = rules_dict(_rules(row, reference))
        rows.append(row)
        if bar is not None:
            bar.update(1)
        broken = [k for k, r in row["rules"].items() if not r["holds"]]
        print(
            f"repeat {repeat} calls {level}: turns {row['turns']} v2v {row['voice_to_voice_ms']}"
            f" late {row['late_frames_at_wire']} ticker late {row['server_ticker_late_frames']}"
            + (f" BROKE {broken}" if broken else ""),
            file=sys.stderr,
        )
    return rows


def run(opts: AiOptions) -> dict[str, Any]:
    import uvloop

    from benchmarks.ai_harness import provenance, write_config
    from tests.support.llm_server import ScriptedLlmServer, Turn

    talk = utterances()
    with contextlib.ExitStack() as stack:
        llm = stack.enter_context(ScriptedLlmServer([Turn(text=REPLY)], loop_script=True).running())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="capacity-ai-")))
        server = ServerProcess(
            config=write_config(tmp, llm.base_url, lift_admission=True),  # the run looks for the limit
            rtp_base=51000 + (os.getpid() % 8) * 1000,
            rtp_ports=max(opts.levels) + 20,
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
            rows = runner.run(_ramps(server, opts, talk))
    limit = find_limit(rows)
    return {
        "benchmark": "capacity",
        "mode": "ai",
        "schema": 2,
        "what": (
            "callers in the ai verb talking in turns with pauses (VAD, end of turn, whisper ASR, scripted LLM "
            "answering at once, Piper TTS, on top of the media plane)"
        ),
        "provenance": provenance(),
        "pinning": pins,
        "server_settings": "shipped defaults; overrides: routes -> ai.yaml (ai verb, default params), [llm] scripted",
        "options": {"levels": list(opts.levels), "repeats": opts.repeats, "hold_s": opts.hold_s, "seed": opts.seed},
        "definitions": {
            "voice_to_voice_ms": (
                "caller's last voiced frame sent -> first agent packet received with peak > 200, both on "
                "CLOCK_REALTIME (kernel receive stamp), per turn"
            ),
            "missed_reply": f"no agent audio within {REPLY_TIMEOUT_S:.0f} s of the caller's last voiced frame",
            "turn": (
                f"one sentence; the next after the reply ends ({REPLY_END_SILENCE_S * 1000:.0f} ms of agent "
                "silence) and a 1-3 s pause"
            ),
            "late_frame_at_wire": LATE_DEFINITION,
            "jitter": JITTER_DEFINITION,
            "server_ticker_late_frames": TICKER_LATE_DEFINITION,
            "window_s": "hold plus the time the last turns took to finish",
        },
        "rules": {
            "setup_failed": "== 0",
            "late_frames_at_wire": "== 0",
            "server_ticker_late_frames": "== 0",
            "missed_replies": "== 0",
            "voice_to_voice_p50_vs_first_level": f"<= {V2V_GROWTH_LIMIT}",
        },
        "levels": rows,
        "concurrent_conversations": limit["limit"],
        "limit": limit,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    plt = plot_style()
    rows = result["levels"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for repeat in sorted({r["repeat"] for r in rows}):
        mine = [r for r in rows if r["repeat"] == repeat]
        xs = [r["calls"] for r in mine]
        ax1.plot(xs, [r["voice_to_voice_ms"].get("p50") for r in mine], "o-", label=f"v2v p50, repeat {repeat}")
        ax1.plot(xs, [r["voice_to_voice_ms"].get("max") for r in mine], "x:", label=f"v2v max, repeat {repeat}")
        ax2.plot(xs, [r["late_frames_at_wire"] for r in mine], "o-", label=f"late at wire (>20 ms), repeat {repeat}")
        ax2.plot(
            xs,
            [r["server_ticker_late_frames"] for r in mine],
            "s--",
            label=f"server ticker late (>2 ms), repeat {repeat}",
        )
    ax1.set_xlabel("concurrent AI conversations")
    ax1.set_ylabel("voice-to-voice at the wire (ms)")
    ax1.legend(fontsize=7)
    lim = result["limit"]
    broke = ", ".join(lim["rules_broken_at_next_level"]) or "none"
    title = f"conversations: {result['concurrent_conversations']}; broke at {lim['broke_at']}: {broke}"
    ax1.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=8)
    ax2.set_xlabel("concurrent AI conversations")
    ax2.set_ylabel("frames")
    ax2.legend(fontsize=7)
    prov = result["provenance"]
    fig.suptitle(
        f"AI capacity, {prov.get('commit')}{' (dirty)' if prov.get('dirty') else ''}, {prov.get('cpu_model')}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
