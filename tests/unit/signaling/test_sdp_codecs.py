"""SDP's codec list is derived from the one codec table, `mscodecs.SUPPORTED`."""

from __future__ import annotations

import pytest

from mediaserver.signaling.sdp_codecs import sdp_codecs, sdp_spec
from mscodecs import SUPPORTED, CodecInfo, UnsupportedCodec, make_codec
from mscodecs.g711 import PcmuCodec
from mssip.sdp import CodecSpec, make_offer, negotiate, parse_sdp


def test_specs_mirror_the_table() -> None:
    assert sdp_codecs(["PCMU", "pcma", "G722", "OPUS"]) == [
        CodecSpec("PCMU", 8000, 1, None, 0),
        CodecSpec("PCMA", 8000, 1, None, 8),
        CodecSpec("G722", 8000, 1, None, 9),
        CodecSpec("opus", 48000, 2, None, None),
    ]
    for info in SUPPORTED.values():
        spec = sdp_spec(info)
        assert (spec.name, spec.clock_rate, spec.channels, spec.fmtp) == (
            info.name,
            info.clock_rate,
            info.channels,
            info.fmtp,
        )
    with pytest.raises(UnsupportedCodec):
        sdp_codecs(["G729"])


def test_default_codecs_offer_the_static_types() -> None:
    offer = make_offer(sdp_codecs(["PCMU", "PCMA", "G722", "opus"]), "192.0.2.1", 4000, session_id=1)
    audio = offer.media[0]
    assert audio.formats[:4] == ["0", "8", "9", "96"]
    assert str(audio.rtpmap("96")) == "opus/48000/2"


def test_a_new_row_reaches_offers_answers_and_the_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a codec is one row in the table: nothing else has to change."""
    row = CodecInfo("X-ULAW", 8000, 1, None, 8000, fmtp="mode=test", factory=lambda rate, ms: PcmuCodec())
    monkeypatch.setitem(SUPPORTED, "X-ULAW", row)
    monkeypatch.setattr("mscodecs.registry._BY_LOWER_NAME", {n.lower(): i for n, i in SUPPORTED.items()})
    specs = sdp_codecs(["X-ULAW"])
    offer = make_offer(specs, "192.0.2.1", 4000, session_id=1)
    audio = offer.media[0]
    assert str(audio.rtpmap("96")) == "X-ULAW/8000" and audio.fmtp("96") == "mode=test"
    answer = negotiate(parse_sdp(offer.serialize()), specs, "192.0.2.2", 5000, session_id=2)
    assert answer.codec == specs[0] and answer.payload_type == 96
    assert isinstance(make_codec("x-ulaw"), PcmuCodec)


def test_every_codec_the_config_accepts_is_in_the_table() -> None:
    from mediaserver.settings import KNOWN_CODECS

    assert set(KNOWN_CODECS) <= set(SUPPORTED)
    assert [spec.name for spec in sdp_codecs(KNOWN_CODECS)] == list(KNOWN_CODECS)
