"""Noise suppression (the `denoise` verb's RNNoise): Whisper word recall on noisy speech with and
without it, and its CPU cost per 20 ms frame.

    python -m benchmarks.denoise [--n 6] [--snrs 0 5 10 20] [--leg-rate 8000] [--out benchmarks/results]

Theory of operation: `--n` sentences, each spoken by espeak-ng and by Piper (so 2n clips), get
1 s of noise before them (the suppressor runs for the whole call, so it has heard the noise
before the caller speaks) and 0.3 s after, mixed at each SNR (speech power over the clip's
speech part against noise power) with three noises:

* white: Gaussian;
* babble: six other sentences (espeak voices at different pitches and speeds), summed with
  staggered starts and looped, the usual "restaurant" stand-in;
* hum: 50 Hz mains with harmonics up to 1 kHz and a little broadband buzz.

Each mixture goes the way a caller's audio does on the leg: at `--leg-rate` 8000 through G.711
µ-law at 8 kHz (a PCMU leg), at 16000 as is (G.722/wideband); then either straight to 16 kHz, or
through `NoiseSuppressor(leg rate)` frame by frame first (what `taps.inbound` carries under
`denoise`, with its -20 dB floor), its fixed delay taken off; and, for comparison, through plain
RNNoise (`floor_db=None`). Whisper (`WhisperRecognizer`, tiny.en int8, one thread,
the server's own recognizer) transcribes from 0.2 s before the speech; word recall is the share
of the sentence's words heard, averaged over clips (as benchmarks/asr.py), overall and per voice
(RNNoise treats espeak's formant synthesis differently from Piper's more natural voice). The
clean row is the same clips without noise, through the same two paths.

CPU: µs of this thread's CPU time (and wall time) per 20 ms frame of `NoiseSuppressor.process`
at 8, 16 and 48 kHz, over the babble mixtures; the machine is shared, so thread CPU time is the
number to quote. Prints JSON and writes OUT/denoise.json and OUT/denoise.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from benchmarks.asr import UTTERANCES, _stats, _to16k, _words
from benchmarks.progress import progress
from mediaserver.audio.denoise import FLOOR_DB, NoiseSuppressor
from mediaserver.pipeline.engines.piper_tts import PiperTts
from mediaserver.pipeline.engines.whisper_asr import WhisperRecognizer
from mscodecs.g711 import ulaw_decode, ulaw_encode
from tests.support.speech import read_wav, synthesize_espeak, to_mono

RATE = 16000
LEAD_S = 1.0  # noise alone before the sentence
TAIL_S = 0.3
CUT_S = 0.2  # Whisper starts this long before the sentence (a VAD's pre-roll)
SENTENCES = [
    *UTTERANCES["3s"],
    *UTTERANCES["1s"],
    "Please send the invoice to my office address.",
    "My flight leaves Tuesday morning at seven.",
    "I would like to book a table for four people.",
]
BABBLE = [
    "The weather has been lovely all week long.",
    "Did you see the game last night, it was close.",
    "We should order the pasta and a salad.",
    "My brother moved to Denver in the spring.",
    "The meeting ran over by almost an hour.",
    "Can you pass the salt and the pepper please.",
]
NOISES = ("white", "babble", "hum")
WAYS = ("raw", "denoised", "rnnoise_plain")  # as the leg decodes it; the verb's suppressor; no floor


def espeak(text: str, tmp: Path, **voice: Any) -> np.ndarray:
    wav = synthesize_espeak(text, tmp / f"{abs(hash((text, *voice.items())))}.wav", RATE, **voice)
    samples, _ = read_wav(wav)
    return np.asarray(to_mono(samples) * 32768.0, dtype=np.float64)


def piper(tts: PiperTts, text: str) -> np.ndarray:
    return _to16k(np.concatenate([c.pcm for c in tts.synthesize(text)]), tts.sample_rate).astype(np.float64)


def babble_bed(tmp: Path, seconds: float) -> np.ndarray:
    n = int(seconds * RATE)
    bed = np.zeros(n)
    for i, text in enumerate(BABBLE):
        talker = espeak(text, tmp, pitch=20 + 12 * i, words_per_minute=130 + 10 * i)
        talker /= np.sqrt(np.mean(talker**2)) + 1e-9
        looped = np.tile(np.concatenate([talker, np.zeros(RATE // 5)]), n // len(talker) + 2)
        start = int(i * 0.37 * RATE)  # staggered, so words of different talkers overlap
        bed += looped[start : start + n]
    return bed


def noise(kind: str, n: int, rng: np.random.Generator, babble: np.ndarray) -> np.ndarray:
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "babble":
        start = int(rng.integers(0, len(babble) - n))
        return babble[start : start + n].copy()
    t = np.arange(n) / RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t + k) / k for k in range(1, 21))
    return np.asarray(hum) + 0.05 * rng.standard_normal(n)


def mix(sentence: np.ndarray, bed: np.ndarray | None, snr_db: float) -> np.ndarray:
    lead, tail = int(LEAD_S * RATE), int(TAIL_S * RATE)
    speech = np.concatenate([np.zeros(lead), sentence, np.zeros(tail)])
    if bed is not None:
        p_speech = np.mean(sentence**2)
        p_noise = np.mean(bed**2) + 1e-12
        speech = speech + bed[: len(speech)] * np.sqrt(p_speech / p_noise / 10 ** (snr_db / 10))
    peak = np.abs(speech).max()
    if peak > 30000:  # the mixture must fit the phone's range; both paths get the same scaling
        speech *= 30000 / peak
    return speech


def leg(audio16k: np.ndarray, leg_rate: int) -> np.ndarray:
    """What the leg decodes: int16 at the leg rate (through µ-law at 8 kHz)."""
    pcm = np.clip(np.rint(audio16k), -32768, 32767).astype(np.int16)
    if leg_rate == RATE:
        return pcm
    narrow = np.clip(soxr.resample(pcm.astype(np.float32), RATE, leg_rate, quality="HQ"), -32768, 32767)
    return ulaw_decode(ulaw_encode(narrow.astype(np.int16)))


def denoise(
    pcm: np.ndarray, rate: int, floor_db: float | None = FLOOR_DB
) -> tuple[np.ndarray, int, list[float], list[float]]:
    """Frame by frame through a fresh suppressor; returns (denoised, delay, cpu µs, wall µs per frame)."""
    suppressor = NoiseSuppressor(rate, floor_db=floor_db)
    n = rate // 50
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % n + suppressor.latency_samples + n, dtype=np.int16)])
    out, cpu, wall = [], [], []
    for i in range(0, len(pcm) - n + 1, n):
        c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        out.append(suppressor.process(pcm[i : i + n]))
        cpu.append((time.thread_time_ns() - c0) / 1000)
        wall.append((time.perf_counter_ns() - w0) / 1000)
    suppressor.close()
    return np.concatenate(out), suppressor.latency_samples, cpu, wall


def to_whisper(pcm: np.ndarray, rate: int) -> np.ndarray:
    cut = int((LEAD_S - CUT_S) * rate)
    return _to16k(pcm[cut:], rate) if rate != RATE else pcm[cut:]


def recall(asr: WhisperRecognizer, pcm16k: np.ndarray, text: str) -> float:
    heard = set(_words(asr.transcribe(pcm16k).text))
    want = set(_words(text))
    return len(heard & want) / len(want)


def cpu_cost(clips: list[np.ndarray], rates: tuple[int, ...]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for rate in rates:
        cpu: list[float] = []
        wall: list[float] = []
        for clip in clips:
            pcm = np.clip(np.rint(soxr.resample(clip.astype(np.float32), RATE, rate)), -32768, 32767).astype(np.int16)
            _, latency, c, w = denoise(pcm, rate)
            cpu += c
            wall += w
        result[str(rate)] = {
            "cpu_us_per_20ms_frame": _stats(cpu),
            "wall_us_per_20ms_frame": _stats(wall),
            "share_of_one_core": round(float(np.median(cpu)) / 20_000, 4),
            "latency_ms": round(1000 * latency / rate, 1),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--n", type=int, default=6, help=f"sentences (each by espeak and Piper), at most {len(SENTENCES)}"
    )
    parser.add_argument("--snrs", type=float, nargs="+", default=[0.0, 5.0, 10.0, 20.0])
    parser.add_argument("--leg-rate", type=int, choices=[8000, 16000], default=8000)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(11)
    tmp = Path(tempfile.mkdtemp(prefix="bench-denoise-"))
    tts = PiperTts(threads=1)
    asr = WhisperRecognizer(threads=1)
    texts = SENTENCES[: args.n]
    clips = [
        (text, voice, audio)
        for text in texts
        for voice, audio in (("espeak", espeak(text, tmp)), ("piper", piper(tts, text)))
    ]
    longest = max(len(a) for _, _, a in clips) / RATE + LEAD_S + TAIL_S
    babble = babble_bed(tmp, max(30.0, 4 * longest))
    conditions: list[tuple[str, float | None]] = [("clean", None)] + [(k, s) for k in NOISES for s in args.snrs]
    rows: list[dict[str, Any]] = []
    for kind, snr in progress(conditions, desc="noise conditions"):
        heard: dict[tuple[str, str], list[float]] = {}  # (voice, path) -> recall per clip
        for text, voice, audio in clips:
            bed = None if snr is None else noise(kind, len(audio) + int((LEAD_S + TAIL_S) * RATE), rng, babble)
            pcm = leg(mix(audio, bed, snr or 0.0), args.leg_rate)
            heard.setdefault((voice, "raw"), []).append(recall(asr, to_whisper(pcm, args.leg_rate), text))
            for way, floor in (("denoised", FLOOR_DB), ("rnnoise_plain", None)):
                denoised, lag, _, _ = denoise(pcm, args.leg_rate, floor)
                cleaned = to_whisper(denoised[lag : lag + len(pcm)], args.leg_rate)
                heard.setdefault((voice, way), []).append(recall(asr, cleaned, text))
        row: dict[str, Any] = {"noise": kind, "snr_db": snr}
        for way in WAYS:
            row[f"recall_{way}"] = round(float(np.mean([r for (_, w), rs in heard.items() if w == way for r in rs])), 3)
        row["by_voice"] = {
            voice: {way: round(float(np.mean(heard[(voice, way)])), 3) for way in WAYS} for voice in ("espeak", "piper")
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    babble_clips = [
        mix(a, noise("babble", len(a) + int((LEAD_S + TAIL_S) * RATE), rng, babble), 5.0) for _, _, a in clips
    ]
    result = {
        "benchmark": "denoise",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()[0]},
        "setup": {
            "clips": len(clips),
            "voices": ["espeak-ng", "piper"],
            "leg_rate": args.leg_rate,
            "codec": "PCMU" if args.leg_rate == 8000 else "none (16 kHz linear)",
            "asr": "whisper tiny.en int8, 1 thread (WhisperRecognizer.transcribe)",
            "noise_lead_in_s": LEAD_S,
        },
        "word_recall": rows,
        "cpu": cpu_cost(babble_clips, (8000, 16000, 48000)),
    }
    text = json.dumps(result, indent=2)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "denoise.json").write_text(text + "\n")
    plot(result, out / "denoise.png")
    return 0


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["word_recall"]
    clean = next(r for r in rows if r["noise"] == "clean")
    fig, axes = plt.subplots(1, len(NOISES), figsize=(13, 4), sharey=True)
    for ax, kind in zip(axes, NOISES, strict=True):
        mine = [r for r in rows if r["noise"] == kind]
        snrs = [r["snr_db"] for r in mine]
        for voice, colour in (("piper", "tab:blue"), ("espeak", "tab:orange")):
            ax.plot(snrs, [r["by_voice"][voice]["raw"] for r in mine], "o:", color=colour, label=f"{voice}, raw")
            denoised = [r["by_voice"][voice]["denoised"] for r in mine]
            ax.plot(snrs, denoised, "s-", color=colour, label=f"{voice}, denoise ({FLOOR_DB:.0f} dB floor)")
            plain = [r["by_voice"][voice]["rnnoise_plain"] for r in mine]
            ax.plot(snrs, plain, "x--", color=colour, alpha=0.5, label=f"{voice}, plain RNNoise")
        ax.axhline(clean["recall_raw"], color="grey", linestyle=":", label="clean, raw")
        ax.axhline(clean["recall_denoised"], color="black", linestyle="--", linewidth=0.8, label="clean, denoise")
        ax.set_title(f"{kind} noise")
        ax.set_xlabel("SNR (dB)")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Whisper tiny.en word recall")
    axes[0].legend(loc="lower right", fontsize=8)
    cpu = result["cpu"]
    setup = result["setup"]
    fig.suptitle(
        f"denoise: {setup['clips']} clips, leg {setup['leg_rate']} Hz ({setup['codec']}); CPU per 20 ms frame "
        + ", ".join(f"{int(r) // 1000} kHz {c['cpu_us_per_20ms_frame']['median']:.0f} µs" for r, c in cpu.items())
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
