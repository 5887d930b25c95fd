"""Call-progress tones synthesized on demand (ringback for SWML `play ring:`)."""

from __future__ import annotations

import numpy as np

from mediaserver.audio.frame import Pcm

# (frequencies Hz, on ms, off ms) per country code; ITU-T E.180 values.
RINGBACK: dict[str, tuple[tuple[float, ...], int, int]] = {
    "us": ((440.0, 480.0), 2000, 4000),
    "ca": ((440.0, 480.0), 2000, 4000),
    "gb": ((400.0, 450.0), 400, 200),
    "uk": ((400.0, 450.0), 400, 200),
    "de": ((425.0,), 1000, 4000),
    "fr": ((440.0,), 1500, 3500),
    "it": ((425.0,), 1000, 4000),
    "au": ((425.0, 400.0), 400, 200),
}


def ringback(duration_ms: int, sample_rate: int, country: str = "us", level_dbfs: float = -16.0) -> Pcm:
    """The country's ringback cadence for duration_ms (unknown countries get the US tone)."""
    freqs, on_ms, off_ms = RINGBACK.get(country.lower(), RINGBACK["us"])
    n = sample_rate * duration_ms // 1000
    t = np.arange(n) / sample_rate
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    period = (on_ms + off_ms) * sample_rate // 1000
    on = (np.arange(n) % period) < on_ms * sample_rate // 1000
    amplitude = 32767 * 10 ** (level_dbfs / 20)
    return np.asarray(np.round(wave * on * amplitude), dtype=np.int16)


def ring_cadence_ms(country: str = "us") -> int:
    """One on+off period of the country's ringback (SWML `ring:us` plays one ring)."""
    _, on_ms, off_ms = RINGBACK.get(country.lower(), RINGBACK["us"])
    return on_ms + off_ms
