"""In-band DTMF detection with the Goertzel algorithm: the fallback when a caller sends its
digits as tones in the audio instead of RFC 4733 events or SIP INFO.

Theory of operation: `InbandDtmfDetector.feed(pcm, sample_rate)` takes decoded audio (any rate,
any chunk size: the 20 ms frames of a call), cuts it into blocks of about 25 ms and measures,
per block, the energy at the eight DTMF frequencies: the single-bin DFT that the Goertzel
recursion computes, done as one matrix product per block so that it costs microseconds. A block holds
a digit when the strongest row tone and the strongest column tone (ITU-T Q.24) together carry
most of the block's energy, each stands 6 dB above the other tones of its group, their twist is
within 8 dB and the level is above a floor (-35 dBFS-ish). A digit is reported once it was seen
in two consecutive blocks (about 40 ms, under Q.24's 40 ms minimum), and again only after a
block without it (the pause between key presses). Speech rarely holds one row and one column
tone pure for 40 ms; music can, which is why this is a fallback, not the primary method.
Returns the digits found in this call, in order. Pure computation, no clock.
"""

from __future__ import annotations

import numpy as np

from mediaserver.audio.frame import Pcm

ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")
BLOCK_S = 0.0256  # 205 samples at 8 kHz, the classic block size: 39 Hz bins
MIN_POWER = 4e-4  # per-sample mean power of a tone (full scale = 0.5), about -35 dBFS
GROUP_MARGIN = 4.0  # 6 dB over the group's other tones
MAX_TWIST = 6.3  # 8 dB between the row and column tones
MIN_SHARE = 0.6  # the two tones carry this much of the block's energy


def _basis(rate: int, n: int) -> np.ndarray:
    """The 8 x n complex exponentials of the DTMF frequencies: one matrix product per block does
    what eight Goertzel recursions would, in C (the same single-bin DFT values)."""
    t = np.arange(n) / rate
    return np.exp(-2j * np.pi * np.outer(np.array(ROWS + COLS), t))


def tone_powers(block: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Mean power of each DTMF frequency in ``block`` (a full-scale sine at one of them: 0.5)."""
    n = len(block)
    powers: np.ndarray = np.abs(basis @ block) ** 2 * 2.0 / (n * n)
    return powers


class InbandDtmfDetector:
    def __init__(self) -> None:
        self._buffer = np.zeros(0, dtype=np.float64)
        self._rate = 0
        self._basis = np.zeros((8, 0), dtype=np.complex128)
        self._candidate: str | None = None
        self._reported: str | None = None
        self.digits_detected = 0

    def feed(self, pcm: Pcm, sample_rate: int) -> list[str]:
        if sample_rate != self._rate:
            self._buffer, self._rate = np.zeros(0, dtype=np.float64), sample_rate
        self._buffer = np.concatenate([self._buffer, pcm.astype(np.float64) / 32768.0])
        block_len = max(1, round(BLOCK_S * sample_rate))
        if self._basis.shape[1] != block_len:
            self._basis = _basis(sample_rate, block_len)
        found: list[str] = []
        while len(self._buffer) >= block_len:
            block, self._buffer = self._buffer[:block_len], self._buffer[block_len:]
            digit = self._classify(block)
            if digit is None:
                self._candidate = self._reported = None
                continue
            if digit == self._candidate and digit != self._reported:
                found.append(digit)
                self._reported = digit
                self.digits_detected += 1
            self._candidate = digit
        return found

    def _classify(self, block: np.ndarray) -> str | None:
        total = float(np.mean(block * block))
        if total < MIN_POWER:
            return None
        powers = tone_powers(block, self._basis)
        rows, cols = powers[:4].tolist(), powers[4:].tolist()
        r = int(np.argmax(rows))
        c = int(np.argmax(cols))
        row, col = rows[r], cols[c]
        if row < MIN_POWER / 2 or col < MIN_POWER / 2:
            return None
        if any(p * GROUP_MARGIN > row for i, p in enumerate(rows) if i != r):
            return None
        if any(p * GROUP_MARGIN > col for i, p in enumerate(cols) if i != c):
            return None
        if max(row, col) > MAX_TWIST * min(row, col):
            return None
        if (row + col) < MIN_SHARE * total:
            return None
        return KEYS[r][c]
