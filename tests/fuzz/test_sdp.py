"""SDP offers and answers: `parse_sdp` returns a description or raises `SdpParseError`;
`negotiate`/`read_answer` return `NegotiatedMedia` or raise `NegotiationError` (488 to the glue);
an answer we write parses again and states what was negotiated."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from mediaserver.signaling.sdp_codecs import sdp_spec
from mscodecs import SUPPORTED
from mssip.errors import NegotiationError, SdpParseError
from mssip.sdp import CodecSpec, NegotiatedMedia, SessionDescription, make_offer, negotiate, parse_sdp, read_answer
from tests.fuzz.support import HUGE, SDP_SEEDS, budget, mutated_bytes

CODECS: list[CodecSpec] = [sdp_spec(info) for info in SUPPORTED.values()]  # what the server answers with
OFFERS = [*SDP_SEEDS, make_offer(CODECS, "192.0.2.1", 4000, 1).serialize()]


def check(data: bytes) -> None:
    try:
        offer = parse_sdp(data)
    except SdpParseError as err:
        assert str(err)
        return
    assert isinstance(offer, SessionDescription)
    assert isinstance(parse_sdp(offer.serialize()), SessionDescription)  # what we read we can write
    for read in (lambda: negotiate(offer, CODECS, "192.0.2.1", 4000, 7), lambda: read_answer(offer, CODECS)):
        try:
            media = read()
        except NegotiationError as err:
            assert str(err)
            continue
        assert isinstance(media, NegotiatedMedia)
        assert media.payload_type >= 0 and media.codec in CODECS
        assert 0 <= media.remote_port <= 65535
        answer = parse_sdp(media.answer.serialize())
        assert len(answer.media) == len(offer.media)  # RFC 3264 §6: one m-line per offered one


LINE = st.one_of(
    st.sampled_from(["v=0", "o=- 1 1 IN IP4 192.0.2.9", "s=-", "c=IN IP4 192.0.2.9", "c=IN IP6 ::1", "t=0 0"]),
    st.builds(
        lambda p, f: f"m=audio {p} RTP/AVP {f}", st.integers(0, 70000), st.sampled_from(["0", "8 101", "96", ""])
    ),
    st.builds(
        lambda v: f"a=rtpmap:{v}",
        st.sampled_from(["0 PCMU/8000", "96 opus/48000/2", "101 telephone-event/8000", "96", "x y/z"]),
    ),
    st.builds(lambda v: f"a=ptime:{v}", st.sampled_from(["20", "0", "-5", "1e999", "inf", "nan", "2.5", "\u00b2", ""])),
    st.sampled_from(["a=sendonly", "a=recvonly", "a=inactive", "a=fmtp:101 0-15", "b=AS:64", "m=video 0 RTP/AVP 31"]),
    st.text(max_size=20),
)


# Found by this fuzzer: '²' passed str.isdigit() and crashed int(); 'inf' crashed int(float()).
@example(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\na=ptime:1e999\r\n")
@example("v=0\r\nm=audio \u00b2 RTP/AVP 0\r\n".encode())
@example("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000/\u00b2 RTP/AVP 0\r\n".encode())
@example("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP \u00b2\r\na=rtpmap:\u00b2 PCMU/8000\r\n".encode())
# ... and int() refuses more than 4300 digits.
@example(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP " + b"9" * 5000 + b"\r\n")
@example(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio " + b"9" * 5000 + b" RTP/AVP 0\r\n")
@budget(500)
@given(mutated_bytes(OFFERS))
def test_mutated_offers(data: bytes) -> None:
    check(data)


@budget(300)
@given(st.lists(LINE, min_size=1, max_size=12), st.sampled_from(["\r\n", "\n"]))
def test_generated_offers(lines: list[str], eol: str) -> None:
    check(("v=0" + eol + eol.join(lines) + eol).encode("utf-8", "surrogatepass"))


@budget(80)
@given(st.sampled_from(OFFERS), st.integers(0, 40), st.sampled_from([b"a", b"9", b" ", b"/", b":", b"="]))
def test_huge_values(seed: bytes, line: int, filler: bytes) -> None:
    rows = seed.split(b"\r\n")
    rows[line % len(rows)] += filler * HUGE
    check(b"\r\n".join(rows))
