"""L16: uncompressed 16-bit linear PCM in network byte order (RFC 3551 §4.5.11), mono.

Theory of operation
-------------------
The payload is the int16 samples written big-endian, two bytes per sample, at any sample
rate; the RTP clock equals the sample rate, so ``sample_rate == clock_rate``. SDP names it
``L16/<rate>`` (dynamic payload type; the static types 10/11 mean 44.1 kHz only). The codec
has no state besides the concealment memory. A payload of odd length is a peer's error.
"""

from __future__ import annotations

import numpy as np

from mscodecs.base import CodecDecodeError, Concealer, Pcm, check_pcm

_BIG_ENDIAN_INT16 = np.dtype(">i2")


class L16Codec:
    """Mono L16 at ``sample_rate`` Hz."""

    name = "L16"
    channels = 1
    stateless = True  # see g711.py

    def __init__(self, sample_rate: int = 16000) -> None:
        if sample_rate <= 0:
            raise ValueError(f"L16 sample rate must be positive, got {sample_rate}")
        self.sample_rate = sample_rate
        self.clock_rate = sample_rate
        self._concealer = Concealer()

    def encode(self, pcm: Pcm) -> bytes:
        check_pcm(pcm, self.name)
        payload: bytes = pcm.astype(_BIG_ENDIAN_INT16).tobytes()
        return payload

    def decode(self, payload: bytes) -> Pcm:
        if len(payload) % 2:
            raise CodecDecodeError(f"L16 payload of odd length {len(payload)}")
        # astype to native order: downstream code (numpy maths, soxr) wants native int16.
        pcm: Pcm = np.frombuffer(payload, dtype=_BIG_ENDIAN_INT16).astype(np.int16)
        self._concealer.remember(pcm)
        return pcm

    def conceal(self, samples: int) -> Pcm:
        return self._concealer.conceal(samples)
