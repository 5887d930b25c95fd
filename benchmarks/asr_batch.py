"""Is one batched Whisper pass over B calls' windows cheaper than B passes? CPU seconds per window.

    python -m benchmarks.asr_batch [--rounds 8] [--batches 1,2,4] [--out benchmarks/results]

The live recognizer (`WhisperRecognizer._short_window`) encodes one 10 s window (80 x 1000
features) and decodes it greedily, one utterance per CTranslate2 call. With B callers finishing
turns at once, CTranslate2 could take the B windows as one batch: `encode` on (B, 80, 1000) and
`generate` with B prompts. This measures both ways on B different utterances of 3-8 s (Piper
speech through the phone path, like a caller's), interleaved round-robin (the VM's speed drifts,
docs/costs.md): process CPU seconds per window (CTranslate2's threads spin, so CPU is the cost
that matters on 2 cores), wall seconds per batch, and that both ways give the same text.

1 CTranslate2 thread (the server's setting). The CPU may be shared with other work: compare the
rows of one run; on a quiet box rerun the same command. Prints JSON, writes OUT/asr_batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from benchmarks.progress import progress
from mediaserver.pipeline.engines.piper_tts import PiperTts
from mediaserver.pipeline.engines.whisper_asr import _LEAD_IN, WhisperRecognizer
from mscodecs.g711 import ulaw_decode, ulaw_encode

UTTERANCES = [  # about 3 to 8 s each
    "What time does the pharmacy close on Sunday?",
    "I need to change the delivery address for my package, it should go to my office instead.",
    "Can you tell me the balance of my checking account and the last three payments?",
    "My flight was cancelled this morning and I would like to book the next one to Boston, preferably before noon.",
]


def _phone16k(pcm: np.ndarray, rate: int) -> np.ndarray:
    narrow = np.clip(soxr.resample(pcm.astype(np.float32), rate, 8000), -32768, 32767).astype(np.int16)
    wide = soxr.resample(ulaw_decode(ulaw_encode(narrow)).astype(np.float32), 8000, 16000)
    out: np.ndarray = np.clip(wide, -32768, 32767).astype(np.int16)
    return out


def transcribe_batch(asr: WhisperRecognizer, clips: list[np.ndarray]) -> list[str]:
    """The short-window path of `WhisperRecognizer` with B windows in one encode and one generate."""
    import ctranslate2

    frames = asr._window_frames
    audios = [np.concatenate([np.zeros(_LEAD_IN, dtype=np.float32), c.astype(np.float32) / 32768.0]) for c in clips]
    all_features = [asr.model.feature_extractor(audio) for audio in audios]
    windows = np.zeros((len(clips), all_features[0].shape[0], frames), dtype=np.float32)
    budgets = []
    for i, (audio, features) in enumerate(zip(audios, all_features, strict=True)):
        n = min(frames, features.shape[1])
        windows[i, :, :n] = features[:, :n]
        budgets.append(16 + int(8 * len(audio) / asr.sample_rate))
    encoded = asr.model.model.encode(ctranslate2.StorageView.from_array(windows), to_cpu=False)
    prompt = asr.model.get_prompt(asr._tokenizer, [], without_timestamps=True)
    results = asr.model.model.generate(
        encoded,
        [prompt] * len(clips),
        beam_size=1,
        max_length=min(len(prompt) + max(budgets), 448),
        suppress_blank=True,
        suppress_tokens=[-1],
    )
    eot = asr._tokenizer.eot
    return [asr._tokenizer.decode([t for t in r.sequences_ids[0] if t < eot]).strip() for r in results]


def _stats(values: list[float]) -> dict[str, float]:
    arr = np.array(values)
    return {
        "median": round(float(np.median(arr)), 4),
        "p10": round(float(np.percentile(arr, 10)), 4),
        "p90": round(float(np.percentile(arr, 90)), 4),
        "n": len(values),
    }


def run(rounds: int, batches: list[int]) -> dict[str, Any]:
    tts = PiperTts(threads=1)
    clips = [_phone16k(np.concatenate([c.pcm for c in tts.synthesize(t)]), tts.sample_rate) for t in UTTERANCES]
    asr = WhisperRecognizer(threads=1)
    ways: dict[str, Callable[[list[np.ndarray]], list[str]]] = {
        "sequential": lambda group: [asr.transcribe(c).text for c in group],
        "batched": lambda group: transcribe_batch(asr, group),
    }
    for way in ways.values():  # warm-up
        way(clips[:1])
    cpu: dict[str, list[float]] = {f"B{b}.{w}": [] for b in batches for w in ways}
    wall: dict[str, list[float]] = {key: [] for key in cpu}
    texts: dict[str, list[str]] = {}
    for r in progress(range(rounds), desc="rounds"):
        for b in batches:
            group = [clips[(r + i) % len(clips)] for i in range(b)]
            for name, way in ways.items():
                key = f"B{b}.{name}"
                c0, w0 = time.process_time(), time.perf_counter()
                out = way(group)
                cpu[key].append((time.process_time() - c0) / b)
                wall[key].append(time.perf_counter() - w0)
                if r == 0 and b == max(batches):
                    texts[name] = out
    per_window = {key: _stats(v) for key, v in cpu.items()}
    ratio = {
        f"B{b}": round(per_window[f"B{b}.batched"]["median"] / per_window[f"B{b}.sequential"]["median"], 3)
        for b in batches
    }
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "clips_s": [round(len(c) / 16000, 2) for c in clips],
        "rounds": rounds,
        "cpu_s_per_window": per_window,
        "wall_s_per_batch": {key: _stats(v) for key, v in wall.items()},
        "batched_over_sequential_cpu": ratio,
        "texts": texts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batches", default="1,2,4")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    report = run(args.rounds, [int(b) for b in args.batches.split(",")])
    text = json.dumps(report, indent=2)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "asr_batch.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
