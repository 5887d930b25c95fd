"""The streaming resampler: chunked output equals one-shot output, lengths add up, no wrap."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from mscodecs.resample import Resampler

PAIRS = [
    (8000, 16000),
    (16000, 8000),
    (16000, 48000),
    (48000, 16000),
    (8000, 48000),
    (22050, 8000),
    (22050, 48000),
    (11025, 16000),
]


def sine(rate: int, seconds: float, freq: float = 440.0, amp: float = 12000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def speechlike(in_rate: int, out_rate: int, seconds: float) -> np.ndarray:
    """A 440 Hz tone plus a sweep up to 70% of the lower Nyquist: aperiodic, so alignment is unique."""
    t = np.arange(int(in_rate * seconds)) / in_rate
    top = 0.35 * min(in_rate, out_rate)
    sweep = np.sin(2 * np.pi * (200 * t + (top - 200) * t**2 / (2 * seconds)))
    return (7000 * np.sin(2 * np.pi * 440 * t) + 7000 * sweep).astype(np.int16)


def stream(resampler: Resampler, pcm: np.ndarray, chunk: int) -> tuple[list[np.ndarray], np.ndarray]:
    pieces = [resampler.process(pcm[i : i + chunk]) for i in range(0, len(pcm), chunk)]
    pieces.append(resampler.flush())
    return pieces, np.concatenate(pieces)


LOW_LATENCY = pytest.mark.parametrize("low_latency", [False, True], ids=["soxr", "polyphase"])


@LOW_LATENCY
@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_streamed_20ms_chunks_match_one_shot(in_rate: int, out_rate: int, low_latency: bool) -> None:
    signal = speechlike(in_rate, out_rate, 0.5)
    resampler = Resampler(in_rate, out_rate, low_latency=low_latency)
    pieces, streamed = stream(resampler, signal, chunk=in_rate // 50)
    assert all(p.dtype == np.int16 and p.ndim == 1 for p in pieces)
    expected_len = round(len(signal) * out_rate / in_rate)
    assert abs(len(streamed) - expected_len) <= 1
    # The stream is aligned with its input: no delay left in the output, as one-shot would have.
    reference = soxr.resample(signal.astype(np.float64), in_rate, out_rate, quality="VHQ")
    n = min(len(reference), len(streamed)) - 200
    lags = list(range(-20, 21))
    scores = [np.dot(streamed[100 + k : n + k].astype(np.float64), reference[100:n]) for k in lags]
    assert lags[int(np.argmax(scores))] == 0
    # Skip the edges, where the one-shot and streamed filters see different padding.
    edge = out_rate // 100
    ref = reference[edge : n - edge]
    out = streamed[edge : n - edge].astype(np.float64)
    snr = 10 * np.log10(np.sum(ref**2) / np.sum((ref - out) ** 2))
    assert snr > 50, f"{in_rate}->{out_rate}: {snr:.1f} dB"


@LOW_LATENCY
@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (48000, 16000), (22050, 8000)])
def test_chunking_does_not_change_the_output(in_rate: int, out_rate: int, low_latency: bool) -> None:
    signal = speechlike(in_rate, out_rate, 0.3)
    _, whole = stream(Resampler(in_rate, out_rate, low_latency=low_latency), signal, chunk=len(signal))
    rng = np.random.default_rng(7)
    cuts = np.sort(rng.integers(0, len(signal), size=40))  # ragged chunks, some empty or 1 sample
    resampler = Resampler(in_rate, out_rate, low_latency=low_latency)
    pieces = [resampler.process(chunk) for chunk in np.split(signal, cuts)]
    ragged = np.concatenate([*pieces, resampler.flush()])
    assert len(ragged) == len(whole)
    assert np.max(np.abs(ragged.astype(np.int32) - whole)) <= 1  # float summation order only


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_low_latency_mode_returns_each_chunks_share_at_once(in_rate: int, out_rate: int) -> None:
    resampler = Resampler(in_rate, out_rate, low_latency=True)
    produced = consumed = 0
    for chunk in np.array_split(sine(in_rate, 0.6), 30):
        consumed += len(chunk)
        produced += len(resampler.process(chunk))
        held_ms = (consumed * out_rate / in_rate - produced) * 1000 / out_rate
        assert 0 <= held_ms <= 4, f"{held_ms:.1f} ms held back"
    produced += len(resampler.flush())
    assert abs(produced - round(consumed * out_rate / in_rate)) <= 1


def test_soxr_mode_returns_lumps_but_loses_nothing() -> None:
    # Documented behaviour, and the reason for low_latency=True: soxr works in big blocks.
    resampler = Resampler(8000, 16000)
    sizes = [len(resampler.process(chunk)) for chunk in np.array_split(sine(8000, 1.0), 50)]
    assert sizes[0] == 0 and max(sizes) > 3 * 320
    assert sum(sizes) + len(resampler.flush()) == 16000


@LOW_LATENCY
def test_full_scale_input_clips_instead_of_wrapping(low_latency: bool) -> None:
    # A full-scale square wave makes the filter overshoot past int16 (Gibbs ringing).
    square = np.where(np.arange(4000) // 20 % 2 == 0, 32767, -32768).astype(np.int16)
    _, out = stream(Resampler(8000, 48000, low_latency=low_latency), square, chunk=160)
    assert out.max() == 32767 and out.min() == -32768
    # Wrapping would put large values of the opposite sign next to the plateaus.
    plateau = out[len(out) // 4 : len(out) // 2]
    assert np.max(np.abs(np.diff(plateau.astype(np.int32)))) < 40000


@LOW_LATENCY
def test_equal_rates_pass_through_untouched(low_latency: bool) -> None:
    resampler = Resampler(16000, 16000, low_latency=low_latency)
    assert resampler.passthrough
    frame = sine(16000, 0.02)
    assert resampler.process(frame) is frame
    assert len(resampler.flush()) == 0


@LOW_LATENCY
def test_flush_ends_the_stream(low_latency: bool) -> None:
    resampler = Resampler(16000, 8000, low_latency=low_latency)
    resampler.process(sine(16000, 0.02))
    resampler.flush()
    assert len(resampler.flush()) == 0, "a second flush has nothing left"
    with pytest.raises(RuntimeError):
        resampler.process(sine(16000, 0.02))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        Resampler(0, 8000)
    with pytest.raises(ValueError):
        Resampler(8000, 16000).process(np.zeros(160, dtype=np.float32))  # type: ignore[arg-type]
