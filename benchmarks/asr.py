"""Speech engine micro benchmarks: ASR latency by window, VAD cost per frame, TTS first audio.

    python -m benchmarks.asr [--rounds 10] [--out benchmarks/results]

1. ASR: Piper utterances of about 1 s and 3 s, through G.711 µ-law at 8 kHz and back to 16 kHz,
   transcribed by `WhisperRecognizer` (tiny.en int8, 1 thread) on its 10 s fixed window and on
   the stock 30 s `transcribe()` path, interleaved round-robin (the VM's speed drifts; docs/costs.md).
   Also reports word recall of each path.
2. VAD: µs per 20 ms frame for `make_vad()` (webrtcvad + energy floor) and for the silero
   confirmer fed frame by frame (it runs one ONNX window per 32 ms), on speech.
3. TTS: time to first audio for an LLM-like reply, split by `ClauseSplitter` (first clause cut at a
   comma) vs the whole first sentence, Piper at 1 thread; and the word-timing error against
   whisper's word timestamps (median |end difference|).

Prints JSON and writes it to OUT/asr.json. Numbers are medians with p10-p90 over the rounds.
"""

from __future__ import annotations

import argparse
import difflib
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from benchmarks.ai_harness import provenance
from benchmarks.progress import progress
from mediaserver.pipeline.engines.piper_tts import PiperTts
from mediaserver.pipeline.engines.whisper_asr import WhisperRecognizer
from mediaserver.pipeline.text import ClauseSplitter
from mediaserver.pipeline.vad import FRAME_SAMPLES, make_confirmer, make_vad
from mscodecs.g711 import ulaw_decode, ulaw_encode

UTTERANCES = {
    "1s": ["Yes, that works.", "Cancel my order.", "What is my balance?"],
    "3s": [
        "What time does the pharmacy close on Sunday?",
        "Can you tell me the balance of my checking account?",
        "I need to change the delivery address for my package.",
    ],
}
REPLY = (
    "Sure, I can help you with that right away, and it should only take a minute. "
    "Your order number is 4 5 7 1, and it ships tomorrow."
)


def _stats(values: list[float]) -> dict[str, float]:
    arr = np.array(values)
    return {
        "median": round(float(np.median(arr)), 3),
        "p10": round(float(np.percentile(arr, 10)), 3),
        "p90": round(float(np.percentile(arr, 90)), 3),
        "n": len(values),
    }


def _to16k(pcm: np.ndarray, rate: int) -> np.ndarray:
    return np.clip(soxr.resample(pcm.astype(np.float32), rate, 16000, quality="HQ"), -32768, 32767).astype(np.int16)


def _phone(pcm16k: np.ndarray) -> np.ndarray:
    narrow = np.clip(soxr.resample(pcm16k.astype(np.float32), 16000, 8000), -32768, 32767).astype(np.int16)
    wide = soxr.resample(ulaw_decode(ulaw_encode(narrow)).astype(np.float32), 8000, 16000)
    return np.clip(wide, -32768, 32767).astype(np.int16)


def _words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() or c.isspace() else " " for c in text).split()


def asr_latency(tts: PiperTts, asr: WhisperRecognizer, rounds: int) -> dict[str, Any]:
    audio = {
        bucket: [_phone(_to16k(np.concatenate([c.pcm for c in tts.synthesize(t)]), tts.sample_rate)) for t in texts]
        for bucket, texts in UTTERANCES.items()
    }
    paths = {
        "window_10s": lambda pcm: asr._short_window(pcm.astype(np.float32) / 32768.0, None, None),
        "stock_30s": lambda pcm: asr._stock(pcm.astype(np.float32) / 32768.0, None, None),
    }
    times: dict[str, list[float]] = {f"{b}.{p}": [] for b in audio for p in paths}
    recall: dict[str, list[float]] = {p: [] for p in paths}
    for name, run in paths.items():  # warm-up, and word recall (deterministic)
        for bucket, clips in audio.items():
            for clip, text in zip(clips, UTTERANCES[bucket], strict=True):
                heard = set(_words(run(clip).text))
                want = set(_words(text))
                recall[name].append(len(heard & want) / len(want))
    for r in progress(range(rounds), desc="asr rounds"):
        for bucket, clips in audio.items():
            clip = clips[r % len(clips)]
            for name, run in paths.items():
                start = time.perf_counter()
                run(clip)
                times[f"{bucket}.{name}"].append((time.perf_counter() - start) * 1000)
    return {
        "latency_ms": {k: _stats(v) for k, v in times.items()},
        "audio_s": {b: [round(len(c) / 16000, 2) for c in clips] for b, clips in audio.items()},
        "word_recall": {k: round(float(np.mean(v)), 3) for k, v in recall.items()},
    }


def vad_cost(tts: PiperTts, rounds: int) -> dict[str, Any]:
    speech = _phone(_to16k(np.concatenate([c.pcm for c in tts.synthesize(UTTERANCES["3s"][0])]), tts.sample_rate))
    frames = [speech[i : i + FRAME_SAMPLES] for i in range(0, len(speech) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]
    confirmer = make_confirmer()
    results: dict[str, list[float]] = {"webrtc_us_per_frame": [], "silero_us_per_frame": []}
    for _ in range(rounds):
        vad = make_vad()
        start = time.perf_counter()
        for frame in frames:
            vad.is_speech(frame)
        results["webrtc_us_per_frame"].append((time.perf_counter() - start) / len(frames) * 1e6)
        if confirmer is not None:
            confirmer.reset()
            start = time.perf_counter()
            for frame in frames:
                confirmer.speech_probability(frame)
            results["silero_us_per_frame"].append((time.perf_counter() - start) / len(frames) * 1e6)
    return {k: _stats(v) for k, v in results.items() if v}


def tts_first_audio(tts: PiperTts, asr: WhisperRecognizer, rounds: int) -> dict[str, Any]:
    splitter = ClauseSplitter()
    clauses = [c for token in REPLY.split(" ") for c in splitter.feed(token + " ")]
    first_clause = clauses[0]
    first_sentence = REPLY.split(". ")[0] + "."
    ttfa: dict[str, list[float]] = {"first_clause": [], "first_sentence": []}
    for _ in range(rounds):
        for name, text in (("first_clause", first_clause), ("first_sentence", first_sentence)):
            start = time.perf_counter()
            next(iter(tts.synthesize(text)))
            ttfa[name].append((time.perf_counter() - start) * 1000)
    errors: list[float] = []
    for text in [*UTTERANCES["3s"], REPLY]:
        for chunk in tts.synthesize(text):
            ours = [(_words(w.text), w.end / chunk.sample_rate) for w in chunk.words]
            ours_single = [(w[0], end) for w, end in ours if len(w) == 1]
            theirs = [
                (_words(w)[0], end)
                for w, _s, end in asr.word_timestamps(_to16k(chunk.pcm, chunk.sample_rate))
                if len(_words(w)) == 1
            ]
            matcher = difflib.SequenceMatcher(a=[w for w, _ in ours_single], b=[w for w, _ in theirs], autojunk=False)
            for block in matcher.get_matching_blocks():
                errors += [abs(ours_single[block.a + i][1] - theirs[block.b + i][1]) * 1000 for i in range(block.size)]
    return {
        "first_clause_text": first_clause,
        "first_sentence_text": first_sentence,
        "ttfa_ms": {k: _stats(v) for k, v in ttfa.items()},
        "word_end_error_vs_whisper_ms": _stats(errors),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    tts = PiperTts(threads=1)
    asr = WhisperRecognizer(threads=1)
    result = {
        "benchmark": "asr",
        **provenance(),  # the commit and CPU the result ran on
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "asr": asr_latency(tts, asr, args.rounds),
        "vad": vad_cost(tts, args.rounds),
        "tts": tts_first_audio(tts, asr, args.rounds),
    }
    text = json.dumps(result, indent=2)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "asr.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
