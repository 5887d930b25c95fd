"""Shared vocabulary of the codec layer: the PCM type, the Codec protocol, errors, concealment.

Theory of operation
-------------------
Every codec instance belongs to one RTP stream in one direction pair; G.722 and Opus keep
adaptive state between frames, so instances are never shared between calls.

* PCM is ``Pcm``: a 1-D (mono) ``numpy.int16`` array at the codec's ``sample_rate``.
* ``encode(pcm)`` turns one frame (normally 20 ms) into exactly one RTP payload.
* ``decode(payload)`` turns one RTP payload into PCM at ``sample_rate``.
* ``conceal(samples)`` stands in for one lost frame of ``samples`` PCM samples.

Three rates are kept apart because SDP and RTP disagree with the audio itself:
``sample_rate`` is what the PCM runs at, ``clock_rate`` is the RTP timestamp clock written in
SDP (G.722 says 8000 for 16 kHz audio, RFC 3551 §4.5.2), and ``channels`` is the SDP channel
count (Opus always says 2 in SDP, RFC 7587, though we carry mono PCM).

Concealment (``Concealer``) repeats the last good frame with a gain that ramps linearly
from 1 to 0 over ``FADE_FRAMES`` consecutive losses, then gives silence. The ramp is
continuous across frames so the fade itself adds no clicks; a good frame resets it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]
"""Mono 16-bit PCM, one dimension, samples at the owning codec's ``sample_rate``."""

FADE_FRAMES = 4
"""Consecutive lost frames over which concealment fades from full level to silence."""


class CodecError(Exception):
    """Base of every error the codec layer raises."""


class CodecDecodeError(CodecError, ValueError):
    """A payload from the peer could not be decoded (a remote error: conceal, do not crash)."""


class CodecEncodeError(CodecError, ValueError):
    """Our own PCM was not acceptable to the encoder (wrong dtype, shape or frame length)."""


@runtime_checkable
class Codec(Protocol):
    """One stream's encoder + decoder pair."""

    name: str
    sample_rate: int
    clock_rate: int
    channels: int

    def encode(self, pcm: Pcm) -> bytes: ...

    def decode(self, payload: bytes) -> Pcm: ...

    def conceal(self, samples: int) -> Pcm: ...


def check_pcm(pcm: Pcm, codec_name: str) -> None:
    """Reject PCM the codecs would misread; a float or stereo array here is our own bug."""
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise CodecEncodeError(f"{codec_name}: expected 1-D int16 PCM, got {pcm.dtype} with shape {pcm.shape}")


class Concealer:
    """Remembers the last decoded frame and produces faded repeats of it for lost frames."""

    def __init__(self, fade_frames: int = FADE_FRAMES) -> None:
        if fade_frames < 1:
            raise ValueError(f"fade_frames must be >= 1, got {fade_frames}")
        self._fade_frames = fade_frames
        self._last: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self._pending: Pcm | None = None  # the last good frame, converted only when a loss needs it
        self._lost = 0  # consecutive concealed frames since the last good one

    def remember(self, pcm: Pcm) -> None:
        """Record a good frame; the next loss starts again from full level.

        Only a reference is kept (decoders hand out a fresh array per frame): this runs for
        every frame of every call, losses are rare, so the float32 copy waits for one."""
        if len(pcm):
            self._pending = pcm
        self._lost = 0

    def conceal(self, samples: int) -> Pcm:
        if samples < 0:
            raise ValueError(f"samples must be >= 0, got {samples}")
        if self._pending is not None:
            # float32 once per loss run, so each concealment is a multiply and one rounding.
            self._last, self._pending = self._pending.astype(np.float32), None
        start = 1.0 - self._lost / self._fade_frames
        self._lost += 1
        if not len(self._last) or start <= 0.0 or samples == 0:
            return np.zeros(samples, dtype=np.int16)
        end = max(0.0, 1.0 - self._lost / self._fade_frames)
        # Repeat the last frame as often as needed: a loss may be longer than the frame we kept.
        reps = -(-samples // len(self._last))
        source = np.tile(self._last, reps)[:samples] if reps > 1 else self._last[:samples]
        gain = np.float32(start) + np.float32(end - start) / samples * np.arange(samples, dtype=np.float32)
        out: Pcm = np.rint(source * gain).astype(np.int16)
        return out
