"""Turn taking at the wire: false cut-offs in mid-sentence pauses and voice-to-voice on whole turns.

    python -m benchmarks.turns [--turns 40] [--ttft-ms 200] [--eos-ms 700] [--seed 7]
                               [--turns-per-call 10] [--out benchmarks/results]

Theory of operation: one real `mediaserver serve` process answers every call with the `ai` verb
(codec PCMU) and the scripted LLM (tests/support/llm_server.py, this process, the chosen time to
first token) — the machinery of benchmarks/ai_harness.py. The caller's turns are generated from
a seed, half of each kind:

* "whole": a complete sentence;
* "paused": a sentence cut where it is unfinished ("I'd like to book an appointment for ...
  next Tuesday morning") with 0.5 to 1.5 s of digital silence inserted at that word boundary.
  The sentence is synthesized ONCE and the silence cut into it, so the voice keeps the prosody
  of an unfinished sentence (no falling pitch before the pause). With the bundled Piper voice the
  boundary comes from Piper's word timings; with espeak-ng (no word timings from the CLI) the
  prefix alone is synthesized to estimate where the boundary lies and the cut goes in the middle
  of the silent gap (>= 30 ms; espeak leaves ~40 ms between words) of the full sentence nearest
  that estimate, within ±200 ms, else at the quietest 10 ms within ±150 ms.

Voices: espeak-ng en-us and en-gb, plus the bundled Piper voice (joe, en_US) when it loads. Turns
are spread over a few calls; before each turn the caller waits until the agent has been silent
for a while. Per turn, at the caller's socket:

* paused turns: a *false cut-off* is agent audio (peak above AGENT_LEVEL) received after the
  caller's pause began and before the caller's last speech packet went out — the agent took the
  turn in the pause (its audio may land just after the caller resumed, which is still a cut-off).
  `agent_audio_in_pause` is the strict count (audio received inside the pause itself);
* whole turns: voice-to-voice = the caller's last speech packet sent -> the first audible agent
  packet received;
* every turn: a *missed answer* is no agent audio within 5 s after the caller's last speech packet.

Progress goes to stderr; the summary JSON to stdout and `<out>/turns.json`, a plot to
`<out>/turns.png`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ai_harness import (
    CALLER_LEVEL,
    FRAME,
    AiCaller,
    LoopLag,
    call_events,
    mono_to_wall,
    pct,
    provenance,
    write_config,
)
from benchmarks.ai_harness import server as run_server
from benchmarks.progress import progress
from benchmarks.turn_stages import turn_stages

RATE = 8000
REPLY = "Sure, I can help with that."
MISSED_AFTER_S = 5.0
BUCKETS = ((0.5, 0.8), (0.8, 1.1), (1.1, 1.5))

# Unfinished at the cut: (before the pause, after the pause).
PAUSED = (
    ("I'd like to book an appointment for", "next Tuesday morning."),
    ("Can you tell me the price of", "the blue jacket in your window?"),
    ("My account number is", "four five six seven eight."),
    ("I was wondering if", "you could call me back later today."),
    ("I want to change my delivery address to", "twelve Baker Street."),
    ("Could you please send the invoice to", "my office instead?"),
    ("The problem started right after", "I updated the app."),
    ("I'm calling about the", "order I placed yesterday."),
    ("I would like to speak with", "someone in the billing department."),
    ("Is it possible to move my booking from Friday to", "the following Monday?"),
)
WHOLE = (
    "Are you open on Sunday afternoon?",
    "What time do you close today?",
    "I need to cancel my reservation.",
    "Can I speak to someone in billing, please?",
    "Do you deliver to the city centre?",
    "How much does the basic plan cost per month?",
    "My order has not arrived yet.",
    "Could you repeat the opening hours, please?",
    "I would like to pay my bill by card.",
    "Thank you, that is all I needed.",
)
ESPEAK_VOICES = ("en-us", "en-gb")


# --------------------------------------------------------------------------------------------------
# Caller speech


@dataclass
class Utterance:
    kind: str  # "whole" | "paused"
    text: str
    voice: str
    pcm: np.ndarray  # 8 kHz int16, a multiple of FRAME long, the pause (if any) included
    pause_s: float = 0.0
    loud_before_pause: int = 0  # caller frames with energy before the pause (to find it on the wire)
    cut_method: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _to_int16(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.clip(np.asarray(x, np.float32) * 32767.0, -32768, 32767).astype(np.int16)
    return out


def _espeak(text: str, voice: str) -> np.ndarray:
    from tests.support.speech import read_wav, synthesize_espeak, to_mono

    with tempfile.TemporaryDirectory(prefix="turns-") as tmp:
        path = synthesize_espeak(text, Path(tmp) / "say.wav", sample_rate=RATE, voice=voice)
        pcm, _ = read_wav(path)
    return _to_int16(to_mono(pcm))


class _Piper:
    """The bundled Piper voice, loaded once, with its word timings (None when it cannot load)."""

    _tts: Any = None
    failed: str | None = None

    @classmethod
    def get(cls) -> Any:
        if cls._tts is None and cls.failed is None:
            try:
                from mediaserver.pipeline.engines.piper_tts import PiperTts

                cls._tts = PiperTts()
            except Exception as exc:  # noqa: BLE001 - optional voice
                cls.failed = f"{type(exc).__name__}: {exc}"
        return cls._tts

    @classmethod
    def say(cls, text: str) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
        """8 kHz int16 and (word, start, end) in 8 kHz samples, of one sentence."""
        from tests.support.speech import resample

        (chunk,) = list(cls.get().synthesize(text))
        ratio = RATE / chunk.sample_rate
        pcm = _to_int16(resample(chunk.pcm.astype(np.float32) / 32768.0, chunk.sample_rate, RATE))
        return pcm, [(w.text, int(w.start * ratio), int(w.end * ratio)) for w in chunk.words]


def _speech_span(pcm: np.ndarray, level: int = 300) -> tuple[int, int]:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > level)
    return (int(loud[0]), int(loud[-1]) + 1) if len(loud) else (0, len(pcm))


def _nearest_gap(pcm: np.ndarray, around: int, radius: int, level: int = 300) -> int | None:
    """The middle of the silent run (>= 30 ms below `level`, 10 ms steps) nearest `around`."""
    step = RATE // 100
    n = len(pcm) // step
    quiet = np.abs(pcm[: n * step].astype(np.int32)).reshape(n, step).max(axis=1) < level
    best, i = None, 0
    while i < n:
        if not quiet[i]:
            i += 1
            continue
        j = i
        while j < n and quiet[j]:
            j += 1
        mid = (i + j) // 2 * step
        inside = j - i >= 3 and i > 0 and j < n and abs(mid - around) <= radius
        if inside and (best is None or abs(mid - around) < abs(best - around)):
            best = mid
        i = j
    return best


def _quietest(pcm: np.ndarray, around: int, radius: int) -> int:
    """The sample at the middle of the quietest 10 ms (30 ms smoothed) within ±radius of `around`."""
    win = RATE // 100
    lo, hi = max(win, around - radius), min(len(pcm) - win, around + radius)
    energy = np.convolve(pcm.astype(np.float64) ** 2, np.ones(3 * win) / (3 * win), mode="same")
    if hi <= lo:
        return around
    return lo + int(np.argmin(energy[lo:hi]))


def _frames(pcm: np.ndarray) -> np.ndarray:
    pad = (-len(pcm)) % FRAME
    return np.concatenate([pcm, np.zeros(pad, np.int16)]) if pad else pcm


def _loud_frames(pcm: np.ndarray) -> int:
    """How many 20 ms frames the caller's sender counts as speech (same rule as AiCaller)."""
    frames = _frames(pcm).reshape(-1, FRAME).astype(np.int32)
    return int((np.abs(frames).max(axis=1) > CALLER_LEVEL).sum())


def make_paused(before: str, after: str, voice: str, pause_s: float) -> Utterance:
    """One synthesis of the whole sentence, `pause_s` of zeros cut in after the words of `before`."""
    text = f"{before} {after}"
    n_before = len(before.split())
    if voice == "piper":
        pcm, words = _Piper.say(text)
        if len(words) == len(text.split()):
            cut, method = (words[n_before - 1][2] + words[n_before][1]) // 2, "piper word timings"
        else:  # the normalizer changed the words: fall back to the energy dip
            est = int(len(pcm) * len(before) / len(text))
            cut, method = _quietest(pcm, est, RATE * 3 // 10), "energy dip (piper, proportional estimate)"
    else:
        pcm = _espeak(text, voice)
        prefix = _espeak(before, voice)
        start, _ = _speech_span(pcm)
        p_start, p_end = _speech_span(prefix)
        est = start + (p_end - p_start)  # where the prefix's speech ends, on the full sentence
        gap = _nearest_gap(pcm, est, RATE // 5)
        if gap is not None:
            cut, method = gap, "silent gap nearest the prefix's length"
        else:
            cut, method = _quietest(pcm, est, RATE * 15 // 100), "energy dip near the prefix's length"
    head = _frames(pcm[:cut])  # the pause starts on a frame boundary
    pause = np.zeros(int(round(pause_s * 50)) * FRAME, np.int16)
    full = _frames(np.concatenate([head, pause, pcm[cut:]]))
    return Utterance(
        "paused",
        f"{before} ... {after}",
        voice,
        full,
        pause_s=round(len(pause) / RATE, 2),
        loud_before_pause=_loud_frames(head),
        cut_method=method,
        meta={"cut_at_s": round(cut / RATE, 3)},
    )


def make_whole(text: str, voice: str) -> Utterance:
    pcm = _Piper.say(text)[0] if voice == "piper" else _espeak(text, voice)
    return Utterance("whole", text, voice, _frames(pcm))


def generate(n: int, seed: int, voices: list[str]) -> list[Utterance]:
    """`n` turns from a seed: half whole, half paused (whole gets the odd one), shuffled."""
    rng = random.Random(seed)
    n_paused = n // 2
    kinds = ["paused"] * n_paused + ["whole"] * (n - n_paused)
    rng.shuffle(kinds)
    out = []
    for i, kind in enumerate(kinds):
        voice = voices[i % len(voices)]
        if kind == "paused":
            before, after = rng.choice(PAUSED)
            out.append(make_paused(before, after, voice, rng.uniform(0.5, 1.5)))
        else:
            out.append(make_whole(rng.choice(WHOLE), voice))
    return out


# --------------------------------------------------------------------------------------------------
# Calls


async def _settle(caller: AiCaller, quiet_ms: int = 800, timeout_s: float = 12.0) -> None:
    """Wait until the agent has been silent `quiet_ms` (what it is saying now, it finishes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        recent = caller.agent_packets(time.monotonic_ns() - quiet_ms * 1_000_000)
        if len(recent) >= quiet_ms // 20 - 5 and not any(a for _, a in recent):
            return
        await asyncio.sleep(0.05)


async def call(sip_port: int, utterances: list[Utterance], log_dir: Path) -> dict[str, Any]:
    caller = AiCaller(("127.0.0.1", sip_port), user="ai", codec="PCMU")
    await caller.open()
    offset = mono_to_wall()
    turns: list[dict[str, Any]] = []
    failure = None
    try:
        answer = await caller.call()
        if answer.status != 200:
            raise AssertionError(f"call answered {answer.status}")
        await caller.start_media()
        with contextlib.suppress(TimeoutError):
            await caller.wait_agent(speaking_ms=300, silent_ms=600, timeout_s=15)  # the greeting
        for u in utterances:
            await _settle(caller)
            spoken = len(caller.sent_speech_ns)
            caller.say(u.pcm)
            await caller.until_said()
            await asyncio.sleep(0.05)  # the sender stamps the last frame after it leaves the outbox
            sent = caller.sent_speech_ns[spoken:]
            turn: dict[str, Any] = {"kind": u.kind, "text": u.text, "voice": u.voice}
            if not sent:
                turn["error"] = "no caller speech frame sent"
                turns.append(turn)
                continue
            last = sent[-1]
            if u.kind == "paused":
                turn |= {"pause_s": u.pause_s, "cut_method": u.cut_method, **u.meta}
                k = min(u.loud_before_pause, len(sent)) - 1
                pause_start = sent[k] + 20_000_000  # the first silent frame leaves 20 ms after
                pause_end = sent[k + 1] if k + 1 < len(sent) else last
                turn["pause_on_wire_ms"] = round((pause_end - pause_start) / 1e6, 1)
                turn["_pause"] = (pause_start, pause_end)
            # An answer, if any, within 5 s of the caller's last speech packet.
            deadline = last + int(MISSED_AFTER_S * 1e9)
            while time.monotonic_ns() < deadline:
                if any(a for _, a in caller.agent_packets(last)):
                    break
                await asyncio.sleep(0.02)
            turn["_last"] = last
            turns.append(turn)
        await _settle(caller)
        await caller.stop_media()
        await caller.hangup()
    except (TimeoutError, AssertionError, OSError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(Exception):
            await caller.stop_media()
        caller.close()
    await asyncio.sleep(0.3)  # the server's last events reach the log
    events = call_events(log_dir, caller.call_id)
    endpoints = [(e["ts"] - offset) * 1e9 for e in events if e["event"] == "turn_endpoint"]
    checks = [e for e in events if e["event"] == "turn_check"]
    loud = [t for t, a in caller.agent_packets() if a]
    for turn in turns:
        last = turn.pop("_last", None)
        if last is None:
            continue
        heard = [t for t in loud if last < t <= last + MISSED_AFTER_S * 1e9]
        turn["missed_answer"] = not heard
        if turn["kind"] == "whole" and heard:
            turn["voice_to_voice_ms"] = round((heard[0] - last) / 1e6, 1)
        if turn["kind"] == "whole":  # where the gap goes: the server's stages of this turn
            stages = turn_stages(events, offset + last / 1e9, offset + (last + MISSED_AFTER_S * 1e9) / 1e9)
            if stages is not None:
                turn["stages"] = stages
        if turn["kind"] == "paused":
            start, end = turn.pop("_pause")
            turn["agent_audio_in_pause"] = sum(1 for t in loud if start <= t <= end)
            turn["agent_audio_before_caller_done"] = sum(1 for t in loud if start <= t <= last)
            turn["false_cutoff"] = turn["agent_audio_before_caller_done"] > 0
            turn["server_endpoints_in_pause"] = sum(1 for t in endpoints if start <= t <= end)
            # Why the server ended the turn in the pause, if it did: the endpoint's reason, the
            # final transcript it judged and the detector's verdicts (ms from the pause's start).
            cut = turn_stages(events, offset + start / 1e9, offset + last / 1e9)
            if cut is not None:
                turn["endpoint_in_pause"] = {k: cut[k] for k in PAUSE_ENDPOINT_KEYS if k in cut}
                turn["endpoint_in_pause"]["verdicts"] = [
                    e.get("probability") for e in checks if start <= (e["ts"] - offset) * 1e9 <= last
                ]
    result: dict[str, Any] = {
        "call_id": caller.call_id,
        "turns": turns,
        "detector_checks": len(checks),
        "detector_cpu_ms": sum(int(e.get("cpu_ms", 0)) for e in checks),
    }
    if failure:
        result["error"] = failure
    return result


PAUSE_ENDPOINT_KEYS = ("reason", "endpoint_ms", "asr_final_ms", "asr_text", "detector_checks")

# --------------------------------------------------------------------------------------------------
# Summary

# Server stages of whole turns (benchmarks/turn_stages.py), each from the caller's last speech packet.
STAGE_KEYS = (
    "endpoint_ms",
    "silence_waited_media_ms",
    "asr_final_ms",
    "llm_first_token_ms",
    "tts_first_audio_ms",
    "tts_enqueued_ms",
    "first_agent_frame_ms",
    "detector_checks",
    "detector_cpu_ms",
)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    if n == 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def _rate(turns: list[dict[str, Any]]) -> dict[str, Any]:
    k, n = sum(1 for t in turns if t["false_cutoff"]), len(turns)
    return {"n": n, "false_cutoffs": k, "rate": round(k / n, 4) if n else None, "wilson95": wilson(k, n)}


def summarize(turns: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [t for t in turns if "missed_answer" in t]
    paused = [t for t in measured if t["kind"] == "paused"]
    whole = [t for t in measured if t["kind"] == "whole"]
    v2v = [t["voice_to_voice_ms"] for t in whole if "voice_to_voice_ms" in t]
    v2v_out: dict[str, Any] = {"n": len(v2v), "p50": pct(v2v, 0.5) if v2v else None}
    if len(v2v) >= 10:
        v2v_out["p90"] = pct(v2v, 0.9)
    else:
        v2v_out["max_(n<10, no p90)"] = max(v2v) if v2v else None
    buckets = {}
    for lo, hi in BUCKETS:
        inside = [t for t in paused if lo <= t["pause_s"] < hi or (hi == BUCKETS[-1][1] and t["pause_s"] == hi)]
        buckets[f"{lo}-{hi}s"] = _rate(inside)
    staged = [t["stages"] for t in whole if "stages" in t]
    stage_medians: dict[str, Any] = {"n": len(staged)}
    for key in STAGE_KEYS:
        values = [st[key] for st in staged if isinstance(st.get(key), int | float)]
        stage_medians[key] = {"n": len(values), "p50": pct(values, 0.5)} if values else None
    reasons: dict[str, int] = {}
    for st in staged:
        reasons[str(st.get("reason"))] = reasons.get(str(st.get("reason")), 0) + 1
    stage_medians["endpoint_reasons"] = reasons
    return {
        "n": {"whole": len(whole), "paused": len(paused)},
        "whole_turn_stages_ms": stage_medians,
        "false_cutoff": _rate(paused)
        | {"strict_in_pause_only": sum(1 for t in paused if t["agent_audio_in_pause"] > 0)},
        "false_cutoff_by_pause_s": buckets,
        "voice_to_voice_ms": v2v_out,
        "missed_answers": {
            "whole": sum(1 for t in whole if t["missed_answer"]),
            "paused": sum(1 for t in paused if t["missed_answer"]),
        },
        "unmeasured_turns": len(turns) - len(measured),
    }


async def run(n: int, ttft_ms: int, eos_ms: int, seed: int, per_call: int, voices: list[str]) -> dict[str, Any]:
    from tests.support.llm_server import ScriptedLlmServer, Turn

    if "piper" in voices and _Piper.get() is None:
        print(f"piper voice unavailable ({_Piper.failed}); espeak-ng only", file=sys.stderr)
        voices = [v for v in voices if v != "piper"]
    utterances = generate(n, seed, voices)
    rows: list[dict[str, Any]] = []
    lag = LoopLag()
    with tempfile.TemporaryDirectory(prefix="turns-") as tmp_name:
        tmp = Path(tmp_name)
        script = [Turn(text=REPLY, ttft_s=ttft_ms / 1000, token_delay_s=0.01)]
        async with ScriptedLlmServer(script, loop_script=True) as llm:
            config = write_config(tmp, llm.base_url, eos_ms=eos_ms)
            with run_server(config) as server:
                lag.start()
                for i in progress(range(0, len(utterances), per_call), desc="calls"):
                    row = await call(server.sip_port, utterances[i : i + per_call], tmp)
                    rows.append(row)
                    for t in row["turns"]:
                        print(json.dumps(t), file=sys.stderr)
                    if "error" in row:
                        print(f"call {row['call_id']}: {row['error']}", file=sys.stderr)
                generator_lag = await lag.stop()
    turns = [t for r in rows for t in r["turns"]]
    answered = sum(1 for t in turns if "missed_answer" in t) or 1
    detector = {
        "checks": sum(r["detector_checks"] for r in rows),
        "cpu_ms_per_turn_mean": round(sum(r["detector_cpu_ms"] for r in rows) / answered, 1),
        "definition": "sum of the server's turn_check.cpu_ms (the detector thread's CPU time per "
        "inference, greeting included) over all calls / caller turns measured",
    }
    ran_on = provenance()
    return {
        "benchmark": "turns",
        "commit": ran_on["commit"],
        "dirty": ran_on["dirty"],
        "cpu_model": ran_on["cpu_model"],
        "machine": {k: ran_on[k] for k in ("cpus", "python", "platform")},
        "codec": "PCMU",
        "ttft_ms": ttft_ms,
        "end_of_speech_timeout_ms": eos_ms,
        "seed": seed,
        "voices": voices,
        "turns_requested": n,
        "calls": len(rows),
        "failed_calls": sum(1 for r in rows if "error" in r),
        **summarize(turns),
        "detector": detector,
        "generator_loop_lag_ms": generator_lag,
        "definitions": {
            "false_cutoff": "paused turn: agent audio received after the caller's pause began and before "
            "the caller's last speech packet was sent",
            "voice_to_voice_ms": "whole turn: caller's last speech packet sent -> first audible agent packet",
            "missed_answer": f"no audible agent packet within {MISSED_AFTER_S:g} s of the caller's last speech packet",
            "whole_turn_stages_ms": "whole turns: medians of the server's turn stages (benchmarks/turn_stages.py), "
            "each from the caller's last speech packet to the stage's own logged event",
        },
        "turn_rows": turns,
        "call_rows": [{k: v for k, v in r.items() if k != "turns"} for r in rows],
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    buckets = result["false_cutoff_by_pause_s"]
    names = list(buckets)
    rates = [buckets[b]["rate"] or 0.0 for b in names]
    lows = [r - (buckets[b]["wilson95"] or (r, r))[0] for r, b in zip(rates, names, strict=True)]
    highs = [(buckets[b]["wilson95"] or (r, r))[1] - r for r, b in zip(rates, names, strict=True)]
    ax1.bar(names, rates, yerr=[lows, highs], capsize=5, color="#CC6677")
    for i, b in enumerate(names):
        ax1.text(i, 0.02, f"{buckets[b]['false_cutoffs']}/{buckets[b]['n']}", ha="center")
    ax1.set_ylim(0, 1.05)
    ax1.set_xlabel("pause length inside the caller's sentence")
    ax1.set_ylabel("false cut-off rate (95 % Wilson)")
    overall = result["false_cutoff"]
    ax1.set_title(f"False cut-offs: {overall['false_cutoffs']}/{overall['n']} paused turns")
    v2v = sorted(t["voice_to_voice_ms"] for t in result["turn_rows"] if "voice_to_voice_ms" in t)
    if v2v:
        ax2.plot(v2v, np.arange(1, len(v2v) + 1) / len(v2v), drawstyle="steps-post", color="#4477AA")
    ax2.set_xlabel("voice-to-voice ms (caller's last speech packet → first audible agent packet)")
    ax2.set_ylabel("fraction of whole turns")
    ax2.set_title(
        f"Whole turns: p50 {result['voice_to_voice_ms']['p50']} ms, "
        f"missed {result['missed_answers']['whole']}/{result['n']['whole']}"
    )
    fig.suptitle(f"Turn taking at the wire (PCMU, TTFT {result['ttft_ms']} ms, commit {str(result['commit'])[:8]})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=40, help="caller turns, half whole and half paused")
    parser.add_argument("--ttft-ms", type=int, default=200, help="scripted LLM time to first token")
    parser.add_argument("--eos-ms", type=int, default=700, help="end_of_speech_timeout of the ai verb")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--turns-per-call", type=int, default=10)
    parser.add_argument("--voices", default="en-us,en-gb,piper", help="espeak-ng voices and/or 'piper'")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    result = asyncio.run(
        run(args.turns, args.ttft_ms, args.eos_ms, args.seed, args.turns_per_call, args.voices.split(","))
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "turns.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / "turns.png")
    print(json.dumps({k: v for k, v in result.items() if k not in ("turn_rows", "call_rows")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
