"""G.711 µ-law (PCMU) and A-law (PCMA) as numpy lookup tables, bit-exact with FFmpeg.

Theory of operation
-------------------
Input and output are 8 kHz mono int16 PCM; one byte per sample each way, so a 20 ms frame is
160 samples <-> 160 bytes. Encoding indexes a 65,536-entry ``uint8`` table with the int16
samples viewed as ``uint16``; decoding indexes a 256-entry ``int16`` table with the bytes.
Both are one numpy gather (about 2 µs a frame, docs/costs.md §4) and the codec has no state.

The tables reproduce FFmpeg's ``pcm_mulaw`` / ``pcm_alaw`` exactly (libavcodec
``pcm_tablegen.h``): decoding is the classic Sun ``ulaw2linear`` / ``alaw2linear``, and
the encoder table comes from ``build_xlaw_table``, which places each decision threshold
halfway between neighbouring decoded levels (round to nearest) on a 14-bit grid
(``(sample + 32768) >> 2``). A Sun-style encoder truncates instead and disagrees with
FFmpeg on ~900 inputs. Both are valid G.711; matching FFmpeg means our audio is
byte-for-byte what aiortc and ffmpeg-based peers would send, and the unit tests can
use PyAV as an oracle for all 65,536 inputs and 256 codes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from mscodecs.base import CodecEncodeError, Concealer, Pcm, check_pcm

_QUANT_MASK = 0x0F
_SEG_MASK = 0x70
_SEG_SHIFT = 4
_SIGN_BIT = 0x80
_ULAW_BIAS = 0x84
_ULAW_MASK = 0xFF  # µ-law bytes are sent inverted
_ALAW_MASK = 0xD5  # A-law bytes have even bits inverted, and the sign bit set for positive values


def _ulaw_to_linear(code: int) -> int:
    u = ~code & 0xFF
    t = ((u & _QUANT_MASK) << 3) + _ULAW_BIAS
    t <<= (u & _SEG_MASK) >> _SEG_SHIFT
    return _ULAW_BIAS - t if u & _SIGN_BIT else t - _ULAW_BIAS


def _alaw_to_linear(code: int) -> int:
    a = code ^ 0x55
    t = a & _QUANT_MASK
    seg = (a & _SEG_MASK) >> _SEG_SHIFT
    t = (t + t + 1 + 32) << (seg + 2) if seg else (t + t + 1) << 3
    return t if a & _SIGN_BIT else -t


def _build_decode_table(to_linear: Callable[[int], int]) -> npt.NDArray[np.int16]:
    return np.array([to_linear(code) for code in range(256)], dtype=np.int16)


def _build_encode_table(decode: npt.NDArray[np.int16], mask: int) -> npt.NDArray[np.uint8]:
    """FFmpeg's ``build_xlaw_table``, vectorised, widened from 14-bit to 16-bit indices.

    For magnitude codes i = 0..127 (in the masked domain) FFmpeg computes the threshold
    ``v[i] = (lin(i) + lin(i + 1) + 4) >> 3`` on the 14-bit grid and gives every grid
    offset j in 1..8191 the smallest i with j < v[i] (127 past the last threshold); +j maps
    to ``i ^ mask`` and -j to ``i ^ mask ^ 0x80``. "Smallest i with j < v[i]" is the count
    of thresholds <= j, which is what ``searchsorted(side="right")`` returns.
    """
    levels = decode[np.arange(128) ^ mask].astype(np.int64)
    thresholds = (levels[:-1] + levels[1:] + 4) >> 3
    j = np.arange(1, 8192)
    magnitude = np.searchsorted(thresholds, j, side="right").astype(np.int64)
    table14 = np.empty(16384, dtype=np.int64)
    table14[8192] = mask
    table14[8192 + j] = magnitude ^ mask
    table14[8192 - j] = magnitude ^ (mask ^ 0x80)
    table14[0] = table14[1]
    # Index the 16-bit table by the int16 sample viewed as uint16: view value u is the
    # signed value s = u - 65536 * (u >= 32768), and FFmpeg's index is (s + 32768) >> 2.
    u = np.arange(65536, dtype=np.int64)
    signed = np.where(u >= 32768, u - 65536, u)
    table16: npt.NDArray[np.uint8] = table14[(signed + 32768) >> 2].astype(np.uint8)
    return table16


ULAW_DECODE: npt.NDArray[np.int16] = _build_decode_table(_ulaw_to_linear)
ALAW_DECODE: npt.NDArray[np.int16] = _build_decode_table(_alaw_to_linear)
ULAW_ENCODE: npt.NDArray[np.uint8] = _build_encode_table(ULAW_DECODE, _ULAW_MASK)
ALAW_ENCODE: npt.NDArray[np.uint8] = _build_encode_table(ALAW_DECODE, _ALAW_MASK)
for _table in (ULAW_DECODE, ALAW_DECODE, ULAW_ENCODE, ALAW_ENCODE):
    _table.flags.writeable = False  # shared by every call: nobody may patch them


def _as_uint16(pcm: Pcm) -> npt.NDArray[np.uint16]:
    # A view, not a cast: an int32 or float array viewed as uint16 would silently yield garbage.
    if pcm.dtype != np.int16:
        raise CodecEncodeError(f"G.711: expected int16 samples, got {pcm.dtype}")
    view: npt.NDArray[np.uint16] = pcm.view(np.uint16)
    return view


def ulaw_encode(pcm: Pcm) -> npt.NDArray[np.uint8]:
    """int16 samples (any shape) -> µ-law codes (one uint8 per sample)."""
    result: npt.NDArray[np.uint8] = ULAW_ENCODE[_as_uint16(pcm)]
    return result


def ulaw_decode(codes: npt.NDArray[np.uint8]) -> Pcm:
    """µ-law codes -> int16 samples."""
    result: Pcm = ULAW_DECODE[codes]
    return result


def alaw_encode(pcm: Pcm) -> npt.NDArray[np.uint8]:
    """int16 samples (any shape) -> A-law codes (one uint8 per sample)."""
    result: npt.NDArray[np.uint8] = ALAW_ENCODE[_as_uint16(pcm)]
    return result


def alaw_decode(codes: npt.NDArray[np.uint8]) -> Pcm:
    """A-law codes -> int16 samples."""
    result: Pcm = ALAW_DECODE[codes]
    return result


class _G711Codec:
    """Common body of PCMU and PCMA; the subclasses pick the tables."""

    name = ""
    sample_rate = 8000
    clock_rate = 8000
    channels = 1
    # No state between frames: a frame may be skipped or an encoding reused (kernel/media.py).
    stateless = True
    _encode_table: npt.NDArray[np.uint8]
    _decode_table: npt.NDArray[np.int16]

    def __init__(self) -> None:
        self._concealer = Concealer()

    def encode(self, pcm: Pcm) -> bytes:
        check_pcm(pcm, self.name)
        payload: bytes = self._encode_table[pcm.view(np.uint16)].tobytes()
        return payload

    def decode(self, payload: bytes) -> Pcm:
        pcm: Pcm = self._decode_table[np.frombuffer(payload, dtype=np.uint8)]
        self._concealer.remember(pcm)
        return pcm

    def conceal(self, samples: int) -> Pcm:
        return self._concealer.conceal(samples)


class PcmuCodec(_G711Codec):
    """G.711 µ-law, RTP payload type 0 (PCMU/8000)."""

    name = "PCMU"
    _encode_table = ULAW_ENCODE
    _decode_table = ULAW_DECODE


class PcmaCodec(_G711Codec):
    """G.711 A-law, RTP payload type 8 (PCMA/8000)."""

    name = "PCMA"
    _encode_table = ALAW_ENCODE
    _decode_table = ALAW_DECODE
