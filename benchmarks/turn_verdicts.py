"""What the end-of-turn signals say on the turn benchmark's own utterances, without a server.

    python -m benchmarks.turn_verdicts [--turns 40] [--seed 7] [--out benchmarks/results]

Theory of operation: `benchmarks.turns` measures turn taking at the wire, where a false cut-off
or a slow answer has many possible causes. This run asks the two signals behind the decision
directly, on the same utterances (`benchmarks.turns.generate`, same seed and voices), heard as
the server hears them (PCMU round trip, 16 kHz):

* the end-of-turn model (smart-turn, `SmartTurnDetector`) on the turn's audio from its first
  loud frame to its speech end (the last loud frame before the pause, or of the sentence) plus
  0, 100, 250, 500 and 750 ms of silence;
* the recognizer's final (`WhisperRecognizer`, the speech plus the 60 ms hangover) and its
  `text_signal` (+1 sentence end, -1 clearly unfinished, 0 neither).

It reports, per voice and overall, how well each signal separates whole sentences (should end
the turn) from mid-sentence pauses (should not): the ROC AUC of the model's probability after
250 and 500 ms of silence (0.5 is chance), and the share of each kind with each text signal.
Speech boundaries come from frame levels (the caller level of `benchmarks.turns`), not from the
server's VAD, so a probability here can differ from the one the server logs for the same turn.
JSON to stdout and `<out>/turn_verdicts.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from benchmarks.ai_harness import CALLER_LEVEL, FRAME, provenance
from benchmarks.turns import ESPEAK_VOICES, Utterance, generate
from mediaserver.pipeline.end_of_turn import text_signal
from mscodecs.g711 import ulaw_decode, ulaw_encode

SILENCES_MS = (0, 100, 250, 500, 750)
HANGOVER_MS = 60
RATE = 16000


def heard(u: Utterance) -> tuple[np.ndarray, int, int]:
    """16 kHz audio after a PCMU round trip, and its speech span (onset, end before any pause)."""
    pcm8 = ulaw_decode(ulaw_encode(u.pcm))
    loud = np.abs(pcm8.reshape(-1, FRAME).astype(np.int32)).max(axis=1) > CALLER_LEVEL
    onset = int(np.flatnonzero(loud)[0])
    end = int(np.flatnonzero(loud)[-1]) + 1
    if u.kind == "paused":  # the speech ends at the last loud frame before the inserted silence
        pause = -(-round(u.meta["cut_at_s"] * 8000) // FRAME)
        end = int(np.flatnonzero(loud[: pause + 1])[-1]) + 1
    wide = soxr.resample(pcm8.astype(np.float32), 8000, RATE)
    pcm = np.clip(wide, -32768, 32767).astype(np.int16)
    scale = RATE // 8000
    return pcm, onset * FRAME * scale, end * FRAME * scale


def auc(positive: list[float], negative: list[float]) -> float | None:
    """P(a whole sentence's probability > a pause's), ties half: 0.5 is chance, 1 separates."""
    if not positive or not negative:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positive for n in negative)
    return round(wins / (len(positive) * len(negative)), 3)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for voice in sorted({r["voice"] for r in rows}) + ["all"]:
        mine = [r for r in rows if voice in ("all", r["voice"])]
        whole = [r for r in mine if r["kind"] == "whole"]
        paused = [r for r in mine if r["kind"] == "paused"]
        out[voice] = {
            "n": {"whole": len(whole), "paused": len(paused)},
            "model_auc": {
                f"{ms}ms": auc([r["model"][str(ms)] for r in whole], [r["model"][str(ms)] for r in paused])
                for ms in (250, 500)
            },
            "text_signal": {
                kind: {str(s): sum(r["text_signal"] == s for r in group) for s in (1, 0, -1)}
                for kind, group in (("whole", whole), ("paused", paused))
            },
        }
    return out


def run(n: int, seed: int, voices: list[str]) -> dict[str, Any]:
    from mediaserver.pipeline.engines.smart_turn import SmartTurnDetector
    from mediaserver.pipeline.engines.whisper_asr import WhisperRecognizer

    detector, recognizer = SmartTurnDetector(), WhisperRecognizer()
    rows = []
    for u in generate(n, seed, voices):
        pcm, onset, end = heard(u)
        speech = pcm[onset:end]
        model = {
            str(ms): round(detector.probability(np.concatenate([speech, np.zeros(RATE * ms // 1000, np.int16)])), 4)
            for ms in SILENCES_MS
        }
        text = recognizer.transcribe(pcm[onset : end + RATE * HANGOVER_MS // 1000]).text
        rows.append(
            {
                "kind": u.kind,
                "voice": u.voice,
                "text": u.text,
                "pause_s": u.pause_s,
                "asr_final": text,
                "text_signal": text_signal(text),
                "model": model,
            }
        )
        print(f"{u.kind:6} {u.voice:5} {model} {text!r}", file=sys.stderr, flush=True)
    return {
        "benchmark": "turn_verdicts",
        **provenance(),
        "seed": seed,
        "voices": voices,
        "definitions": {
            "model_auc": "ROC AUC of smart-turn's probability after that much silence, whole sentences "
            "(positive) against mid-sentence pauses (negative); 0.5 is chance",
            "text_signal": "turns per text_signal of the recognizer's final: 1 sentence end, 0 neither, "
            "-1 clearly unfinished",
        },
        "summary": summarize(rows),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--voices", default=",".join([*ESPEAK_VOICES, "piper"]))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    result = run(args.turns, args.seed, args.voices.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "turn_verdicts.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
