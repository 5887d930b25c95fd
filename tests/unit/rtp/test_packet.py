from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaserver.rtp.packet import RtpPacket, RtpParseError, is_rtcp

# V=2 P=0 X=0 CC=0 | M=1 PT=0 | seq 0x1234 | ts 0x000000a0 | ssrc 0xdeadbeef | 4 payload bytes
PCMU_MARKER = bytes.fromhex("80801234000000a0deadbeef") + b"\xff\xfe\xfd\xfc"
# V=2 P=1 X=1 CC=2 | M=0 PT=111 | seq 65535 | ts 0xffffffff | ssrc 1 | csrcs 2, 3
# | ext profile 0xbede, 1 word: 10 ab 00 00 | payload "hi" | 3 bytes padding (00 00 03)
FULL = (
    bytes.fromhex("b26fffffffffffff00000001")
    + bytes.fromhex("0000000200000003")
    + bytes.fromhex("bede000110ab0000")
    + b"hi"
    + bytes.fromhex("000003")
)


def test_parse_minimal_packet_with_marker() -> None:
    pkt = RtpPacket.parse(PCMU_MARKER)
    assert pkt == RtpPacket(
        payload_type=0,
        sequence=0x1234,
        timestamp=160,
        ssrc=0xDEADBEEF,
        payload=b"\xff\xfe\xfd\xfc",
        marker=True,
    )
    assert pkt.serialize() == PCMU_MARKER
    assert bytes(pkt) == PCMU_MARKER


def test_parse_csrcs_extension_and_padding() -> None:
    pkt = RtpPacket.parse(FULL)
    assert pkt == RtpPacket(
        payload_type=111,
        sequence=65535,
        timestamp=0xFFFFFFFF,
        ssrc=1,
        payload=b"hi",
        marker=False,
        csrcs=(2, 3),
        extension=(0xBEDE, bytes.fromhex("10ab0000")),
    )
    # Padding is not written back: the serialized form is the input less its 3 padding bytes
    # and with the P bit cleared.
    assert pkt.serialize() == bytes([FULL[0] & ~0x20]) + FULL[1:-3]


def test_empty_payload_is_allowed() -> None:
    data = bytes.fromhex("8008000100000000000000ff")
    assert RtpPacket.parse(data).payload == b""


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "too short: 0 bytes"),
        (bytes.fromhex("8000000100000000000000"), "too short: 11 bytes"),
        (bytes.fromhex("4000000100000000000000ff"), "version is 1"),
        (bytes.fromhex("a000000100000000000000ff") + b"ab\x00", "padding count is 0"),
        (bytes.fromhex("a000000100000000000000ff") + b"ab\x04", "padding count 4 exceeds the 3 bytes"),
        (bytes.fromhex("8100000100000000000000ff") + b"ab", "truncated CSRC list: 1 CSRCs need 16"),
        (bytes.fromhex("9000000100000000000000ff") + b"ab", "truncated extension header"),
        (
            bytes.fromhex("9000000100000000000000ff") + bytes.fromhex("bede0002") + b"abcd",
            "extension of 2 words",
        ),
    ],
)
def test_malformed_packets_raise_precise_errors(data: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError, match=reason):
        RtpPacket.parse(data)


def test_parse_error_is_a_value_error() -> None:
    assert issubclass(RtpParseError, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"payload_type": 128}, "payload type 128"),
        ({"sequence": 65536}, "sequence 65536"),
        ({"timestamp": -1}, "timestamp -1"),
        ({"ssrc": 1 << 32}, "SSRC"),
        ({"csrcs": tuple(range(16))}, "16 CSRCs"),
        ({"extension": (1, b"abc")}, "whole number of words"),
    ],
)
def test_out_of_range_fields_are_refused(kwargs: dict[str, object], reason: str) -> None:
    base: dict[str, object] = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0, "payload": b""}
    base.update(kwargs)
    with pytest.raises(ValueError, match=reason):
        RtpPacket(**base)  # type: ignore[arg-type]


def test_is_rtcp_demultiplexes_by_second_byte() -> None:
    assert is_rtcp(bytes.fromhex("80c8000c"))  # SR, PT 200
    assert is_rtcp(bytes([0x80, 192]))
    assert is_rtcp(bytes([0x80, 223]))
    assert not is_rtcp(bytes([0x80, 191]))
    assert not is_rtcp(bytes([0x80, 224]))
    assert not is_rtcp(PCMU_MARKER)
    assert not is_rtcp(b"\x80")


u32 = st.integers(0, 0xFFFFFFFF)
packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=64),
    marker=st.booleans(),
    csrcs=st.lists(u32, max_size=15).map(tuple),
    extension=st.none() | st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=16).map(lambda b: b[: len(b) // 4 * 4])),
)


@given(packets)
def test_round_trip(pkt: RtpPacket) -> None:
    data = pkt.serialize()
    assert RtpPacket.parse(data) == pkt
    assert not is_rtcp(data) or 64 <= pkt.payload_type <= 95


@given(packets, st.integers(1, 255))
def test_padding_is_stripped(pkt: RtpPacket, pad: int) -> None:
    data = bytearray(pkt.serialize())
    data[0] |= 0x20
    data += bytes(pad - 1) + bytes([pad])
    assert RtpPacket.parse(bytes(data)) == pkt


@given(st.binary(max_size=80))
def test_arbitrary_bytes_parse_or_raise_rtp_parse_error(data: bytes) -> None:
    try:
        pkt = RtpPacket.parse(data)
    except RtpParseError:
        return
    assert len(pkt.serialize()) <= len(data)


def test_agrees_with_aiortc() -> None:
    aiortc_rtp = pytest.importorskip("aiortc.rtp")
    ours = RtpPacket.parse(FULL)
    theirs = aiortc_rtp.RtpPacket.parse(FULL)
    assert (theirs.payload_type, theirs.sequence_number, theirs.timestamp, theirs.ssrc) == (
        ours.payload_type,
        ours.sequence,
        ours.timestamp,
        ours.ssrc,
    )
    assert theirs.payload == ours.payload
    assert tuple(theirs.csrc) == ours.csrcs
