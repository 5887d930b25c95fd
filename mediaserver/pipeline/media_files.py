"""Decode an audio file (WAV, MP3, Ogg, ...) into mono int16 PCM at the rate a call needs.

Theory of operation: `play` URLs and hold music name whole files. They are decoded once, up
front, with PyAV (FFmpeg): the first audio stream is decoded, downmixed to mono and resampled
to `sample_rate` by one `av.AudioResampler` for the whole file (the per-stream soxr resampler
is for live audio; a file has no real-time constraint and is converted exactly once), then
concatenated into one int16 array. The caller caches the result and slices it into frames.

`source` is a local path or the raw bytes of a file; fetching http(s) URLs is the caller's job
(this module does no network I/O). Unreadable input raises `MediaFileError` naming the source,
so the executor can log it and skip the item instead of crashing the call. Blocking (FFmpeg
decodes in C): the kernel runs it in its executor.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np

from mediaserver.audio.frame import Pcm

__all__ = ["MediaFileError", "decode_audio_file"]


class MediaFileError(Exception):
    """The file could not be opened or decoded; the message names the source."""


def decode_audio_file(source: str | bytes, sample_rate: int, *, name: str | None = None) -> Pcm:
    """Decode `source` (a path, or a file's bytes) to mono int16 at `sample_rate`.

    `name` labels bytes in error messages (e.g. the URL they were fetched from).
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if isinstance(source, bytes | bytearray):
        label = name or f"<{len(source)} bytes>"
        file: str | io.BytesIO = io.BytesIO(source)
        if not source:
            raise MediaFileError(f"{label}: empty file")
    else:
        label = name or source
        if not Path(source).is_file():
            raise MediaFileError(f"{label}: no such file")
        file = source
    try:
        return _decode(file, sample_rate, label)
    except MediaFileError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaFileError(f"{label}: cannot decode audio ({exc})") from exc


def _decode(file: str | io.BytesIO, sample_rate: int, label: str) -> Pcm:
    with av.open(file, mode="r") as container:
        if not container.streams.audio:
            raise MediaFileError(f"{label}: no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        pieces: list[Pcm] = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                pieces.append(_mono_s16(out))
        for out in resampler.resample(None):  # flush the resampler's delay line
            pieces.append(_mono_s16(out))
    if not pieces:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(pieces).astype(np.int16, copy=False)


def _mono_s16(frame: av.AudioFrame) -> Pcm:
    # Packed s16 mono comes out as shape (1, samples).
    array = frame.to_ndarray()
    return np.asarray(array.reshape(-1), dtype=np.int16)
