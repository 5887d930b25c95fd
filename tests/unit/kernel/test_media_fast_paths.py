"""The media path's per-tick shortcuts change no byte and lose no sample: a frame nobody hears
is not decoded but still counted, silence is sent from one cached encoding, and packets are
packed without building an RtpPacket, bit for bit as before."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mediaserver.audio.frame import AudioFrame
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.rtp.packet import RtpPacket, pack_rtp
from mscodecs import make_codec
from mscodecs.base import Concealer

FRAME_NS = 20_000_000
# The fields of a packet with no CSRC or extension: payload type, sequence, timestamp, SSRC,
# payload, marker.
PLAIN_PACKET = (
    st.integers(0, 127),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=200),
    st.booleans(),
)


def stream(codec: str = "PCMU", pt: int = 0) -> MediaStream:
    return MediaStream(MediaParams(codec, pt, 8000, 101, 1), "t", rng=random.Random(5))


def caller_packet(n: int, pcm: np.ndarray, codec: str = "PCMU", pt: int = 0) -> bytes:
    payload = make_codec(codec, 8000).encode(pcm)
    return RtpPacket(pt, n, n * 160, 77, payload).serialize()


def voice(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(-9000, 9000, 160).astype(np.int16)


def test_frames_nobody_hears_are_not_decoded_yet_a_late_listener_gets_the_right_positions() -> None:
    media = stream()
    decoded: list[bytes] = []
    real_decode = media.codec.decode
    media.codec.decode = lambda payload: decoded.append(payload) or real_decode(payload)  # type: ignore[method-assign]
    for n in range(10):
        media.receive_datagram(caller_packet(n, voice(n)), n * FRAME_NS)
        media.tick((n + 1) * FRAME_NS, 0.0)
    assert decoded == []  # nobody listened: no decode
    assert media.jitter.stats.played >= 8  # the frames were still taken from the jitter buffer
    heard: list[AudioFrame] = []
    media.taps.inbound.subscribe(heard.append, name="late listener")
    played_before = media.jitter.stats.played
    for n in range(10, 14):
        media.receive_datagram(caller_packet(n, voice(n)), n * FRAME_NS)
        media.tick((n + 1) * FRAME_NS, 0.0)
    assert len(heard) == 4 and len(decoded) == 4
    # Every frame, decoded or not, advanced the inbound sample count: positions line up.
    assert [f.start for f in heard] == [160 * (played_before + i) for i in range(4)]
    # ... and carry the caller's audio of those slots (slot k holds packet k here).
    pcmu = make_codec("PCMU", 8000)
    assert np.array_equal(heard[0].pcm, pcmu.decode(pcmu.encode(voice(played_before))))


def test_a_stateful_codec_is_decoded_even_when_nobody_listens() -> None:
    media = MediaStream(MediaParams("G722", 9, 8000, 101, 1), "t", rng=random.Random(5))
    assert not media._stateless  # noqa: SLF001 - the switch this test is about
    calls: list[int] = []
    real_decode = media.codec.decode
    media.codec.decode = lambda payload: calls.append(1) or real_decode(payload)  # type: ignore[method-assign]
    g722 = make_codec("G722", 8000)
    for n in range(6):
        payload = g722.encode(np.zeros(320, dtype=np.int16))
        media.receive_datagram(RtpPacket(9, n, n * 160, 77, payload).serialize(), n * FRAME_NS)
        media.tick((n + 1) * FRAME_NS, 0.0)
    assert calls  # its decoder state must follow every frame


def test_silence_goes_out_from_one_cached_encoding_and_speech_is_encoded_each_tick() -> None:
    media = stream()
    encoded: list[int] = []
    real_encode = media.codec.encode
    media.codec.encode = lambda pcm: encoded.append(len(pcm)) or real_encode(pcm)  # type: ignore[method-assign]
    silent = [RtpPacket.parse(media.tick(n * FRAME_NS, 0.0)[0]) for n in range(5)]
    assert len(encoded) == 1  # silence encoded once
    assert all(p.payload == real_encode(np.zeros(160, dtype=np.int16)) for p in silent)
    tone = (4000 * np.sin(np.arange(480) / 5)).astype(np.int16)
    media.enqueue(tone, 8000)
    spoken = [RtpPacket.parse(media.tick((5 + n) * FRAME_NS, 0.0)[0]) for n in range(3)]
    assert len(encoded) == 4
    assert [p.payload for p in spoken] == [real_encode(tone[i * 160 : (i + 1) * 160]) for i in range(3)]
    assert [p.sequence for p in silent + spoken] == [(silent[0].sequence + i) % 65536 for i in range(8)]
    assert spoken[0].marker and not spoken[1].marker


@given(*PLAIN_PACKET)
def test_pack_rtp_is_bit_for_bit_the_serialized_packet(
    pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool
) -> None:
    assert pack_rtp(pt, seq, ts, ssrc, payload, marker) == RtpPacket(pt, seq, ts, ssrc, payload, marker).serialize()


def test_concealment_from_a_remembered_reference_equals_concealment_from_a_copy() -> None:
    frame = voice(3)
    lazy = Concealer()
    lazy.remember(frame)
    first = lazy.conceal(160)
    # The float copy is taken at the loss, of the frame as it was remembered.
    expected = np.rint(frame.astype(np.float32) * (1.0 - 0.25 * np.arange(160, dtype=np.float32) / 160)).astype(
        np.int16
    )
    assert np.array_equal(first, expected)
    lazy.remember(voice(4))  # a good frame resets the fade and replaces the source
    assert np.array_equal(lazy.conceal(160)[:1], voice(4)[:1])


@given(*PLAIN_PACKET)
def test_parsing_a_plain_packet_gives_the_packet_that_was_packed(
    pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool
) -> None:
    # Plain packets (no padding, CSRC or extension) take parse's short path; it must agree with
    # the checked constructor, field for field, for bytes and for a memoryview alike.
    data = pack_rtp(pt, seq, ts, ssrc, payload, marker)
    expected = RtpPacket(pt, seq, ts, ssrc, payload, marker)
    assert RtpPacket.parse(data) == expected
    parsed = RtpPacket.parse(memoryview(data))
    assert parsed == expected and type(parsed.payload) is bytes


def test_late_packets_raise_the_inbound_depth_and_the_stream_goes_on_in_order() -> None:
    # The caller's packets start arriving 2 ticks later (a route change): with a 2-frame start
    # depth the first of them is late, each late one raises the depth, and after that every
    # packet is heard, in order, one frame per tick.
    media = MediaStream(MediaParams("PCMU", 0, 8000, 101, 2, 5), "t", rng=random.Random(5))
    heard: list[AudioFrame] = []
    media.taps.inbound.subscribe(heard.append, name="listener")
    arrivals: dict[int, list[int]] = {}
    for n in range(30):
        arrivals.setdefault(n + (2 if n >= 10 else 0), []).append(n)
    for tick in range(34):
        for n in arrivals.get(tick, []):
            media.receive_datagram(caller_packet(n, voice(n)), tick * FRAME_NS)
        media.tick((tick + 1) * FRAME_NS, 0.0)
    stats = media.jitter.stats
    assert 1 <= stats.raised == stats.late <= 2 and media.jitter.depth_frames == 2 + stats.raised
    pcmu = make_codec("PCMU", 8000)
    tail = [pcmu.decode(pcmu.encode(voice(n))) for n in range(20, 30)]
    first = next(i for i, f in enumerate(heard) if np.array_equal(f.pcm, tail[0]))
    assert all(np.array_equal(heard[first + k].pcm, tail[k]) for k in range(10))
    starts = [f.start for f in heard]
    assert starts == [160 * k for k in range(len(heard))]  # one frame per tick, no hole in the count
