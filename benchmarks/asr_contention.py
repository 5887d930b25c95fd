"""What a caller's ASR final costs when the end-of-turn detector and a partial run beside it.

    python -m benchmarks.asr_contention [--repeats 5] [--out benchmarks/results]

Theory of operation: as a caller stops, the server starts the ASR final of the utterance; the
end-of-turn detector's early check starts at the same moment, and a partial pass may still be
running. This runs exactly that on the bundled engines (faster-whisper tiny.en with 2 replicas,
smart-turn v3.2), one espeak-ng sentence (2.5 s), for Whisper at 1 and 2 threads per
transcription, in three conditions: the final alone; with the detector started at the same
moment; with the detector and a partial (the utterance minus its last 0.5 s). The figure is the
final's wall time from its start to its text (median of `--repeats`), which is what the reply
waits for. Also the detector's own time at 1 and 2 threads. Prints JSON (commit, CPU) and
writes asr_contention.json to --out. Needs espeak-ng.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ai_harness import provenance

SENTENCE = "How much does the basic plan cost per month?"
CONDITIONS = ("alone", "with_detector", "with_detector_and_partial")


def _speech() -> np.ndarray:
    import io

    import soundfile as sf
    import soxr

    wav = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", SENTENCE], capture_output=True, check=True).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="int16")
    return np.asarray(soxr.resample(audio, rate, 16000), dtype=np.int16)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def run(repeats: int) -> dict[str, Any]:
    from mediaserver.pipeline.engines.smart_turn import SmartTurnDetector
    from mediaserver.pipeline.engines.whisper_asr import WhisperRecognizer

    pcm = _speech()
    pool = ThreadPoolExecutor(4)
    final_ms: dict[str, dict[str, float]] = {}
    for threads in (1, 2):
        asr = WhisperRecognizer(threads=threads, workers=2)
        detector = SmartTurnDetector()
        asr.transcribe(pcm)
        detector.probability(pcm)  # warm both
        final_ms[f"{threads}_thread"] = {}
        for condition in CONDITIONS:
            times = []
            for _ in range(repeats):
                beside = []
                start = time.perf_counter()
                if condition != "alone":
                    beside.append(pool.submit(detector.probability, pcm))
                if condition == "with_detector_and_partial":
                    beside.append(pool.submit(asr.transcribe, pcm[:-8000]))
                pool.submit(asr.transcribe, pcm).result()
                times.append(_ms(start))
                for job in beside:
                    job.result()
            final_ms[f"{threads}_thread"][condition] = round(statistics.median(times), 1)
    detector_ms = {}
    for threads in (1, 2):
        detector = SmartTurnDetector(threads=threads)
        detector.probability(pcm)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            detector.probability(pcm)
            times.append(_ms(start))
        detector_ms[f"{threads}_thread"] = round(statistics.median(times), 1)
    pool.shutdown()
    return {
        "benchmark": "asr_contention",
        **provenance(),
        "speech_s": round(len(pcm) / 16000, 2),
        "repeats": repeats,
        "final_ms_median": final_ms,
        "detector_ms_median": detector_ms,
        "definitions": {
            "final_ms": "the final's transcribe() submitted -> its text, Whisper tiny.en (10 s window, 2 replicas)",
            "with_detector": "smart-turn (1 thread) submitted at the same moment",
            "with_detector_and_partial": "and a partial (the utterance minus its last 0.5 s) at the same moment",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    result = run(args.repeats)
    text = json.dumps(result, indent=1)
    print(text)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "asr_contention.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
