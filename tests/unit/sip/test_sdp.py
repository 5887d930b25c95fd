"""SDP parse/serialise and audio offer/answer on realistic offers."""

from __future__ import annotations

import pytest

from mssip.errors import NegotiationError, SdpParseError
from mssip.sdp import CodecSpec, SessionDescription, negotiate, parse_sdp
from tests.unit.sip.sipkit import load_sdp

PCMU = CodecSpec("PCMU", 8000)
PCMA = CodecSpec("PCMA", 8000)
G722 = CodecSpec("G722", 8000)
OPUS = CodecSpec("opus", 48000, 2, fmtp="useinbandfec=1")
ALL = [PCMU, PCMA, G722, OPUS]

FIXTURES = ["baresip.sdp", "linphone.sdp", "chrome_like.sdp", "chrome_dtls.sdp", "asterisk.sdp", "static_only.sdp"]


@pytest.mark.parametrize("name", FIXTURES)
def test_round_trip_keeps_every_line(name: str) -> None:
    data = load_sdp(name)
    parsed = parse_sdp(data)
    assert parsed.serialize() == data
    assert parse_sdp(parsed.serialize()) == parsed


def test_model_of_linphone_offer() -> None:
    offer = SessionDescription.parse(load_sdp("linphone.sdp"))
    assert offer.origin.username == "alice" and offer.origin.session_version == "1524"
    assert offer.session_name == "Talk"
    assert offer.connection is not None and offer.connection.host == "10.0.0.23"
    audio, video = offer.media
    assert (audio.media, audio.port, audio.proto) == ("audio", 7078, "RTP/AVP")
    assert audio.formats == ["96", "97", "98", "0", "8", "18", "101", "99", "100"]
    opus = audio.rtpmap("96")
    assert opus is not None and (opus.encoding, opus.clock_rate, opus.channels) == ("opus", 48000, 2)
    assert audio.fmtp("96") == "useinbandfec=1"
    assert audio.rtpmap("0") is not None  # static meaning when there is no rtpmap line
    assert audio.rtpmap("77") is None
    assert offer.direction_of(audio) == "sendrecv" and audio.direction is None
    assert video.media == "video" and video.rtpmap("96") is not None
    assert offer.attribute("record") == "off"


@pytest.mark.parametrize(
    ("name", "supported", "pt", "codec", "dtmf", "remote"),
    [
        ("baresip.sdp", ALL, 116, OPUS, 101, ("192.168.1.50", 10458)),
        ("baresip.sdp", [PCMA, PCMU], 0, PCMU, 101, ("192.168.1.50", 10458)),  # the offer's order wins
        ("linphone.sdp", ALL, 96, OPUS, 101, ("10.0.0.23", 7078)),  # telephone-event/48000 goes with opus
        ("linphone.sdp", [PCMU], 0, PCMU, 100, ("10.0.0.23", 7078)),  # ...and /8000 with PCMU
        ("chrome_like.sdp", [G722, PCMU], 9, G722, 126, ("203.0.113.7", 51580)),
        ("chrome_like.sdp", ALL, 111, OPUS, 110, ("203.0.113.7", 51580)),
        ("asterisk.sdp", ALL, 0, PCMU, 101, ("198.51.100.10", 17568)),
        ("asterisk.sdp", [PCMA], 8, PCMA, 101, ("198.51.100.10", 17568)),
        ("static_only.sdp", ALL, 8, PCMA, None, ("198.51.100.20", 30000)),
    ],
)
def test_negotiate_realistic_offers(
    name: str, supported: list[CodecSpec], pt: int, codec: CodecSpec, dtmf: int | None, remote: tuple[str, int]
) -> None:
    result = negotiate(parse_sdp(load_sdp(name)), supported, "192.0.2.1", 20000, 42)
    assert (result.payload_type, result.codec, result.dtmf_payload_type) == (pt, codec, dtmf)
    assert (result.remote_ip, result.remote_port) == remote
    answer = parse_sdp(result.answer.serialize())
    audio = next(m for m in answer.media if m.port != 0)
    assert audio.port == 20000
    assert audio.formats == [str(pt)] + ([str(dtmf)] if dtmf is not None else [])
    assert answer.connection is not None and answer.connection.address == "192.0.2.1"
    assert answer.origin.session_id == "42"
    if dtmf is not None:
        assert audio.fmtp(str(dtmf)) == "0-16"
        te = audio.rtpmap(str(dtmf))
        assert te is not None and te.encoding == "telephone-event"


def test_answer_shape() -> None:
    result = negotiate(parse_sdp(load_sdp("linphone.sdp")), ALL, "192.0.2.1", 20000, 7)
    text = result.answer.serialize().decode()
    assert text == (
        "v=0\r\n"
        "o=mediaserver 7 7 IN IP4 192.0.2.1\r\n"
        "s=-\r\n"
        "c=IN IP4 192.0.2.1\r\n"
        "t=0 0\r\n"
        "m=audio 20000 RTP/AVP 96 101\r\n"
        "a=rtpmap:96 opus/48000/2\r\n"
        "a=fmtp:96 useinbandfec=1\r\n"
        "a=rtpmap:101 telephone-event/48000\r\n"
        "a=fmtp:101 0-16\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
        "m=video 0 RTP/AVP 96\r\n"  # refused, but kept in place (RFC 3264 §6)
    )
    assert result.remote_fmtp == "useinbandfec=1"
    assert result.ptime_ms == 20 and result.direction == "sendrecv"


def test_chrome_like_answer_keeps_proto_and_g722_clock() -> None:
    result = negotiate(parse_sdp(load_sdp("chrome_like.sdp")), [G722], "192.0.2.1", 20000, 1)
    audio = result.answer.media[0]
    assert audio.proto == "RTP/AVPF"
    assert audio.attribute_values("rtpmap") == ["9 G722/8000", "126 telephone-event/8000"]


def test_ptime_from_offer_and_ipv6_answer() -> None:
    result = negotiate(parse_sdp(load_sdp("static_only.sdp")), ALL, "2001:db8::1", 20000, 1)
    assert result.ptime_ms == 30
    assert result.answer.media[0].ptime == 30
    assert result.answer.connection is not None and result.answer.connection.addrtype == "IP6"
    assert result.answer.origin.addrtype == "IP6"


@pytest.mark.parametrize(
    ("offered", "answered"),
    [("sendrecv", "sendrecv"), ("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive")],
)
def test_direction_is_mirrored(offered: str, answered: str) -> None:
    offer = load_sdp("asterisk.sdp").replace(b"a=sendrecv", f"a={offered}".encode())
    result = negotiate(parse_sdp(offer), ALL, "192.0.2.1", 20000, 1)
    assert result.direction == answered
    assert result.answer.media[0].direction == answered


def test_session_level_direction_and_media_level_connection() -> None:
    offer = (
        b"v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\na=sendonly\r\n"
        b"m=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.9.9.9\r\n"
    )
    result = negotiate(parse_sdp(offer), ALL, "192.0.2.1", 20000, 1)
    assert result.direction == "recvonly"
    assert result.remote_ip == "10.9.9.9"


@pytest.mark.parametrize(
    ("offer", "message"),
    [
        (load_sdp("asterisk.sdp"), "no acceptable audio codec"),  # with only opus supported
        (load_sdp("chrome_dtls.sdp"), "supported transport"),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n", "no audio m-line"),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n", "no audio m-line"),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n", "no connection address"),
    ],
)
def test_nothing_to_answer_raises(offer: bytes, message: str) -> None:
    with pytest.raises(NegotiationError, match=message):
        negotiate(parse_sdp(offer), [OPUS] if b"Asterisk" in offer else ALL, "192.0.2.1", 20000, 1)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"o=- 1 1 IN IP4 h\r\n",
        b"v=0\r\nthis is not sdp\r\n",
        b"v=0\r\nm=audio x RTP/AVP 0\r\n",
        b"v=0\r\no=too few\r\n",
        b"v=0\r\nc=IN IP4\r\n",
        b"v=0\r\n\xff\r\n",
    ],
)
def test_malformed_sdp(data: bytes) -> None:
    with pytest.raises(SdpParseError):
        parse_sdp(data)
    assert issubclass(SdpParseError, NegotiationError)  # one except clause answers 488
    assert issubclass(SdpParseError, ValueError)


def test_offer_takes_payload_types_from_the_caller_then_rfc3551() -> None:
    from mssip.sdp import make_offer

    custom = CodecSpec("X-TEST", 8000, payload_type=77)
    offer = make_offer([OPUS, custom, PCMA, G722, CodecSpec("L16", 16000)], "192.0.2.1", 4000, session_id=1)
    audio = offer.media[0]
    # opus and L16/16000 are dynamic; PCMA/G722 take RFC 3551's static types; X-TEST its own.
    assert audio.formats[:5] == ["96", "77", "8", "9", "97"]
    assert audio.rtpmap("77") is not None and str(audio.rtpmap("77")) == "X-TEST/8000"
    assert audio.fmtp("96") == "useinbandfec=1"
    assert [str(audio.rtpmap(pt)) for pt in audio.formats[5:]] == ["telephone-event/8000", "telephone-event/48000"]
