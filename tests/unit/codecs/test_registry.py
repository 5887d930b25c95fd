"""The codec table and factory: SDP names, rates, payload types and frame sizes."""

from __future__ import annotations

import numpy as np
import pytest

import mscodecs
from mscodecs.base import Codec
from mscodecs.registry import (
    SUPPORTED,
    CodecInfo,
    UnsupportedCodec,
    codec_info,
    make_codec,
    pcm_samples_per_frame,
    rtp_samples_per_frame,
)

# name, clock rate, SDP channels, static PT, PCM rate, RTP units / 20 ms, PCM samples / 20 ms
TABLE = [
    ("PCMU", 8000, 1, 0, 8000, 160, 160),
    ("PCMA", 8000, 1, 8, 8000, 160, 160),
    ("G722", 8000, 1, 9, 16000, 160, 320),
    ("opus", 48000, 2, None, 48000, 960, 960),
    ("L16", 16000, 1, None, 16000, 320, 320),
]


@pytest.mark.parametrize(("name", "clock", "channels", "pt", "rate", "rtp_frame", "pcm_frame"), TABLE)
def test_table_and_frame_sizes(name, clock, channels, pt, rate, rtp_frame, pcm_frame) -> None:
    info = SUPPORTED[name]
    assert info == CodecInfo(name, clock, channels, pt, rate)
    assert rtp_samples_per_frame(info) == rtp_frame
    assert pcm_samples_per_frame(info) == pcm_frame
    assert rtp_samples_per_frame(info, frame_ms=40) == 2 * rtp_frame


@pytest.mark.parametrize(("name", "clock", "channels", "pt", "rate", "rtp_frame", "pcm_frame"), TABLE)
def test_made_codecs_match_the_table_and_work(name, clock, channels, pt, rate, rtp_frame, pcm_frame) -> None:
    for spelling in (name, name.lower(), name.upper()):
        codec = make_codec(spelling)
        assert isinstance(codec, Codec)
        described = (codec.name, codec.clock_rate, codec.channels, codec.sample_rate)
        assert described == (name, clock, channels, rate)
    t = np.arange(pcm_frame) / rate
    pcm = (6000 * np.sin(2 * np.pi * 500 * t)).astype(np.int16)
    decoded = codec.decode(codec.encode(pcm))
    assert decoded.dtype == np.int16 and len(decoded) == pcm_frame


def test_codecs_are_fresh_per_stream() -> None:
    assert make_codec("opus") is not make_codec("opus")


def test_clock_rate_must_match_except_for_l16() -> None:
    assert make_codec("PCMU", 8000).name == "PCMU"
    assert make_codec("G722", 8000).sample_rate == 16000
    with pytest.raises(UnsupportedCodec, match="G722"):
        make_codec("G722", 16000)  # a common mistake in SDP: RFC 3551 says 8000
    with pytest.raises(UnsupportedCodec, match="opus"):
        make_codec("opus", 16000)
    l16 = make_codec("l16", 8000)
    assert (l16.sample_rate, l16.clock_rate) == (8000, 8000)
    info = codec_info("L16", 44100)
    assert (info.clock_rate, info.sample_rate, pcm_samples_per_frame(info)) == (44100, 44100, 882)


@pytest.mark.parametrize("name", ["G729", "speex", "telephone-event", ""])
def test_unknown_names_raise_with_the_name(name: str) -> None:
    with pytest.raises(UnsupportedCodec) as caught:
        make_codec(name)
    assert repr(name) in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_ptime_reaches_the_frame_based_encoders() -> None:
    codec = make_codec("opus", frame_ms=40)
    assert len(codec.decode(codec.encode(np.zeros(1920, dtype=np.int16)))) == 1920
    g722 = make_codec("G722", frame_ms=30)
    assert len(g722.encode(np.zeros(480, dtype=np.int16))) == 240


def test_package_reexports_the_public_api() -> None:
    for name in mscodecs.__all__:
        assert hasattr(mscodecs, name), name
    assert mscodecs.make_codec is make_codec
    assert "DtmfReceiver" in mscodecs.__all__ and "Resampler" in mscodecs.__all__


def test_every_row_builds_its_codec_through_its_factory() -> None:
    for name, info in SUPPORTED.items():
        codec = info.factory(info.sample_rate, 20)
        assert (codec.name, codec.clock_rate, codec.sample_rate) == (name, info.clock_rate, info.sample_rate)
    with pytest.raises(UnsupportedCodec):
        CodecInfo("X", 8000, 1, None, 8000).factory(8000, 20)  # a bare info cannot build anything


def test_only_any_rate_rows_take_another_clock_rate() -> None:
    assert [name for name, info in SUPPORTED.items() if info.any_rate] == ["L16"]
    assert all(info.fmtp is None or info.fmtp for info in SUPPORTED.values())  # no empty fmtp line
