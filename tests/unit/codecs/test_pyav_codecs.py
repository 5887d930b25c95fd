"""G.722 and Opus through PyAV: one payload per frame, and audio that survives the trip."""

from __future__ import annotations

import av
import numpy as np
import pytest

from mscodecs.base import Codec, CodecDecodeError, CodecEncodeError
from mscodecs.pyav_codecs import G722Codec, OpusCodec

Array = np.ndarray
FrameCodec = type[G722Codec] | type[OpusCodec]


def chirp(rate: int, seconds: float, f0: float = 200.0, f1: float = 3000.0, amp: float = 8000.0) -> Array:
    """A linear sweep through the speech band, with a slow amplitude wobble like syllables."""
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
    return (amp * envelope * np.sin(phase)).astype(np.int16)


def round_trip(codec: G722Codec | OpusCodec, pcm: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    n = codec.frame_samples
    payloads = [codec.encode(pcm[i : i + n]) for i in range(0, len(pcm) - n + 1, n)]
    decoded = [codec.decode(p) for p in payloads]
    assert all(len(d) == n for d in decoded), "each payload decodes to one full frame"
    return payloads, np.concatenate(decoded)


def align(reference: np.ndarray, decoded: np.ndarray, max_delay: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Find the codec delay by cross-correlation; return it and the overlapping parts."""
    ref = reference.astype(np.float64)
    out = decoded.astype(np.float64)
    span = len(ref) - max_delay
    scores = [np.dot(out[d : d + span], ref[:span]) for d in range(max_delay)]
    delay = int(np.argmax(scores))
    return delay, ref[:span], out[delay : delay + span]


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / np.sum((ref - out) ** 2)))


def test_both_satisfy_the_codec_protocol() -> None:
    assert isinstance(G722Codec(), Codec)
    assert isinstance(OpusCodec(), Codec)


def test_g722_attributes() -> None:
    codec = G722Codec()
    assert (codec.name, codec.sample_rate, codec.clock_rate, codec.channels) == ("G722", 16000, 8000, 1)
    assert codec.frame_samples == 320


def test_g722_one_160_byte_payload_per_20ms_and_faithful_audio() -> None:
    codec = G722Codec()
    signal = chirp(16000, 1.0)
    payloads, decoded = round_trip(codec, signal)
    assert len(payloads) == 50
    assert {len(p) for p in payloads} == {160}
    assert len(decoded) == len(signal)
    delay, ref, out = align(signal, decoded, max_delay=200)
    assert 10 <= delay <= 40, f"G.722 QMF delay should be ~22 samples, got {delay}"
    assert snr_db(ref, out) > 25


def test_g722_decode_length_is_two_samples_per_byte() -> None:
    codec = G722Codec()
    for size in (160, 80, 240, 1):
        assert len(codec.decode(bytes(range(size)))) == 2 * size


def test_g722_other_ptime() -> None:
    codec = G722Codec(frame_ms=30)
    assert codec.frame_samples == 480
    assert len(codec.encode(chirp(16000, 0.03))) == 240


def test_opus_attributes() -> None:
    codec = OpusCodec()
    assert (codec.name, codec.sample_rate, codec.clock_rate, codec.channels) == ("opus", 48000, 48000, 2)
    assert codec.frame_samples == 960


def test_opus_one_packet_per_frame_at_about_32_kbps_and_faithful_audio() -> None:
    codec = OpusCodec()
    signal = chirp(48000, 1.0)
    payloads, decoded = round_trip(codec, signal)
    assert len(payloads) == 50
    kbps = sum(len(p) for p in payloads) * 8 / 1000  # one second of audio
    assert 20 < kbps < 45
    assert len(decoded) == len(signal)
    delay, ref, out = align(signal, decoded, max_delay=1000)
    assert 250 <= delay <= 350, f"libopus lookahead should be ~312 samples, got {delay}"
    # A perceptual codec does not preserve the waveform exactly; correlation shows it kept the signal.
    assert np.corrcoef(ref, out)[0, 1] > 0.9
    assert snr_db(ref, out) > 6


def test_opus_packets_decode_with_an_independent_decoder() -> None:
    codec = OpusCodec()
    signal = chirp(48000, 0.6)
    payloads, _ = round_trip(codec, signal)
    other = av.CodecContext.create("opus", "r")  # FFmpeg's native decoder, not libopus
    assert isinstance(other, av.AudioCodecContext)
    other.sample_rate, other.layout = 48000, "mono"
    theirs = np.concatenate([f.to_ndarray()[0] for p in payloads for f in other.decode(av.Packet(p))])
    assert len(theirs) == len(signal)
    # The two decoders resample SILK's internal rate differently, so they differ in fine
    # detail and delay; each must still reproduce the source.
    _, ref, out = align(signal, theirs * 32768.0, max_delay=1000)
    assert np.corrcoef(ref, out)[0, 1] > 0.85


def test_opus_decodes_a_stereo_stream_to_mono() -> None:
    # Browsers may send stereo Opus; the decoder must still hand us mono PCM.
    enc = av.CodecContext.create("libopus", "w")
    assert isinstance(enc, av.AudioCodecContext)
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = 48000, "stereo", "s16", 64000
    left = chirp(48000, 0.2)
    stereo = np.stack([left, left]).T.reshape(1, -1)  # packed s16: interleaved L R L R
    packets = []
    for i in range(0, len(left), 960):
        frame = av.AudioFrame.from_ndarray(stereo[:, 2 * i : 2 * (i + 960)], format="s16", layout="stereo")
        frame.sample_rate = 48000
        packets += [bytes(p) for p in enc.encode(frame)]
    codec = OpusCodec()
    decoded = [codec.decode(p) for p in packets]
    assert all(d.ndim == 1 and d.dtype == np.int16 and len(d) == 960 for d in decoded)
    assert np.abs(np.concatenate(decoded)).max() > 2000


def test_opus_other_frame_durations() -> None:
    codec = OpusCodec(frame_ms=10)
    assert codec.frame_samples == 480
    payload = codec.encode(chirp(48000, 0.01))
    assert len(codec.decode(payload)) == 480
    with pytest.raises(ValueError):
        OpusCodec(frame_ms=15)


@pytest.mark.parametrize("codec_cls", [G722Codec, OpusCodec])
def test_wrong_frame_length_is_refused(codec_cls: FrameCodec) -> None:
    codec = codec_cls()
    for n in (codec.frame_samples // 2, codec.frame_samples + 2):
        with pytest.raises(CodecEncodeError):
            codec.encode(np.zeros(n, dtype=np.int16))
    with pytest.raises(CodecEncodeError):
        codec.encode(np.zeros(codec.frame_samples, dtype=np.float32))  # type: ignore[arg-type]
    # A refused frame leaves nothing buffered: the next good frame is still one payload.
    assert codec.encode(np.zeros(codec.frame_samples, dtype=np.int16))


@pytest.mark.parametrize("codec_cls", [G722Codec, OpusCodec])
def test_empty_payload_neither_drains_nor_breaks_the_decoder(codec_cls: FrameCodec) -> None:
    codec = codec_cls()
    payload = codec.encode(chirp(codec.sample_rate, codec.frame_samples / codec.sample_rate))
    assert len(codec.decode(b"")) == 0
    assert len(codec.decode(payload)) == codec.frame_samples


def test_garbage_opus_payload_is_a_decode_error() -> None:
    codec = OpusCodec()
    with pytest.raises(CodecDecodeError):
        codec.decode(b"\xff")  # TOC code 3 promises a frame-count byte that is missing
    assert len(codec.decode(codec.encode(np.zeros(960, dtype=np.int16)))) == 960


@pytest.mark.parametrize("codec_cls", [G722Codec, OpusCodec])
def test_conceal_repeats_the_last_frame_fading_out(codec_cls: FrameCodec) -> None:
    codec = codec_cls()
    n = codec.frame_samples
    signal = chirp(codec.sample_rate, 0.2, f0=400, f1=400)
    last = np.zeros(0, dtype=np.int16)
    for i in range(0, len(signal), n):
        last = codec.decode(codec.encode(signal[i : i + n]))
    frames = [codec.conceal(n) for _ in range(5)]
    assert all(f.shape == (n,) and f.dtype == np.int16 for f in frames)
    energy = [float(np.sum(f.astype(np.float64) ** 2)) for f in frames]
    assert energy[0] > 0.2 * float(np.sum(last.astype(np.float64) ** 2))
    assert energy[0] > energy[1] > energy[2] > energy[3] and energy[4] == 0.0
