from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaserver.rtp.rtcp import (
    SDES_CNAME,
    Goodbye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    RtcpParseError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    middle_ntp,
    ntp_from_unix,
    parse_rtcp,
    serialize_rtcp,
)

SR_HEX = (
    "81c8000c"  # V=2 RC=1 PT=200 length 12 words (52 bytes)
    "12345678"  # sender SSRC
    "e7b5a3c480000000"  # NTP
    "00001f40"  # RTP timestamp 8000
    "00000032"  # packet count 50
    "00001f40"  # octet count 8000
    "9abcdef0"  # block: SSRC
    "40ffffff"  # fraction 64/256, cumulative lost -1
    "00010005"  # extended highest sequence: 1 cycle, seq 5
    "00000010"  # jitter 16
    "a3c48000"  # LSR
    "00018000"  # DLSR 1.5 s
)
SDES_HEX = "81ca0003 12345678 0105616c696365 00"  # CNAME "alice", 1 null to the word boundary
APP_HEX = "80cc0002 12345678 74657374"  # APP "test": skipped
BYE_HEX = "81cb0003 12345678 04646f6e65 000000"  # reason "done" + 3 bytes of padding
COMPOUND = bytes.fromhex(SR_HEX + SDES_HEX + APP_HEX + BYE_HEX)

EXPECTED_SR = SenderReport(
    ssrc=0x12345678,
    ntp_timestamp=0xE7B5A3C480000000,
    rtp_timestamp=8000,
    packet_count=50,
    octet_count=8000,
    reports=(ReportBlock(0x9ABCDEF0, 64, -1, 0x10005, 16, 0xA3C48000, 0x18000),),
)
EXPECTED: list[RtcpPacket] = [
    EXPECTED_SR,
    SourceDescription((SdesChunk(0x12345678, ((SDES_CNAME, b"alice"),)),)),
    Goodbye((0x12345678,), "done"),
]


def test_parse_compound_fixture_skipping_app() -> None:
    assert parse_rtcp(COMPOUND) == EXPECTED


def test_serialize_reproduces_fixture_without_the_app_packet() -> None:
    assert serialize_rtcp(EXPECTED) == bytes.fromhex(SR_HEX + SDES_HEX + BYE_HEX)


def test_receiver_report_and_empty_goodbye_bytes() -> None:
    rr = ReceiverReport(ssrc=7)
    assert rr.serialize() == bytes.fromhex("80c9000100000007")
    assert Goodbye((7,)).serialize() == bytes.fromhex("81cb000100000007")
    assert Goodbye((7,), "").serialize() == bytes.fromhex("81cb00020000000700000000")
    assert parse_rtcp(Goodbye((7,), "").serialize()) == [Goodbye((7,), "")]


def test_sdes_chunk_on_word_boundary_gets_a_full_null_word() -> None:
    # 4 (SSRC) + 2 + 2 = 8 bytes of items: the terminator needs a whole extra word.
    chunk = SdesChunk(1, ((SDES_CNAME, b"ab"),))
    assert chunk.serialize() == bytes.fromhex("00000001 01026162 00000000")


def test_padding_bit_on_last_packet_is_honoured() -> None:
    rr = bytearray(bytes.fromhex("a0c9000200000007") + bytes.fromhex("00000004"))
    assert parse_rtcp(bytes(rr)) == [ReceiverReport(7)]


def test_undecodable_bye_reason_is_replaced_not_fatal() -> None:
    data = bytes.fromhex("81cb0041 00000007 ff") + b"\xff" * 255
    [bye] = parse_rtcp(data)
    assert isinstance(bye, Goodbye)
    assert bye.reason == "\ufffd" * 85


def test_ntp_conversion() -> None:
    # 1970-01-01 is 2208988800 s after the NTP epoch; half a second is 0x80000000.
    assert ntp_from_unix(0.0) == 2_208_988_800 << 32
    assert ntp_from_unix(1.5) == ((2_208_988_801 << 32) | 0x80000000)
    assert middle_ntp(0xE7B5A3C480000000) == 0xA3C48000
    assert middle_ntp(ntp_from_unix(0.25)) == ((2_208_988_800 & 0xFFFF) << 16) | 0x4000


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (bytes.fromhex("80c9"), "header truncated: 2 bytes"),
        (bytes.fromhex("40c9000100000007"), "version is 1"),
        (bytes.fromhex("80c9000500000007"), "claims 24 bytes, only 8 remain"),
        (bytes.fromhex("81c9000100000007"), "RR declares 1 report blocks"),
        (bytes.fromhex("80c8000100000007"), "too short for sender info"),
        (bytes.fromhex("80c90000"), "too short for its SSRC"),
        (bytes.fromhex("a0c9000100000000"), "padding count 0"),
        (bytes.fromhex("82cb000100000007"), "BYE declares 2 sources"),
        (bytes.fromhex("81cb00020000000709616263"), "reason of 9 bytes"),
        (bytes.fromhex("81ca000200000007010a6162"), "overruns"),
        (bytes.fromhex("81ca00020000000701026162"), "no terminating null"),
        (bytes.fromhex("82ca0002 00000007 00000000"), "chunk 1 is truncated"),
    ],
)
def test_malformed_rtcp_raises_precise_errors(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpParseError, match=reason):
        parse_rtcp(data)


def test_field_ranges_are_checked() -> None:
    with pytest.raises(ValueError, match="packets_lost"):
        ReportBlock(1, 0, 0x800000, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="fraction_lost"):
        ReportBlock(1, 256, 0, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="at most 31"):
        ReceiverReport(1, tuple(ReportBlock(i, 0, 0, 0, 0, 0, 0) for i in range(32)))
    with pytest.raises(ValueError, match="item type 0"):
        SdesChunk(1, ((0, b""),))
    with pytest.raises(ValueError, match="exceeds 255"):
        Goodbye((1,), "x" * 256)


def test_agrees_with_aiortc() -> None:
    aiortc_rtp = pytest.importorskip("aiortc.rtp")
    theirs = aiortc_rtp.RtcpPacket.parse(bytes.fromhex(SR_HEX + SDES_HEX))
    sr = theirs[0]
    assert (sr.ssrc, sr.sender_info.ntp_timestamp, sr.sender_info.rtp_timestamp) == (
        EXPECTED_SR.ssrc,
        EXPECTED_SR.ntp_timestamp,
        EXPECTED_SR.rtp_timestamp,
    )
    block = sr.reports[0]
    assert (block.fraction_lost, block.packets_lost, block.jitter, block.lsr, block.dlsr) == (
        64,
        -1,
        16,
        0xA3C48000,
        0x18000,
    )
    assert theirs[1].chunks[0].items == [(SDES_CNAME, b"alice")]


# -- properties -------------------------------------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    packets_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_sequence=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
report_lists = st.lists(blocks, max_size=31).map(tuple)
senders = st.builds(
    SenderReport,
    ssrc=u32,
    ntp_timestamp=st.integers(0, (1 << 64) - 1),
    rtp_timestamp=u32,
    packet_count=u32,
    octet_count=u32,
    reports=report_lists,
)
receivers = st.builds(ReceiverReport, ssrc=u32, reports=report_lists)
items = st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=255)), max_size=5).map(tuple)
sdes = st.builds(
    SourceDescription, chunks=st.lists(st.builds(SdesChunk, ssrc=u32, items=items), max_size=31).map(tuple)
)
reasons = st.none() | st.text(max_size=60)
byes = st.builds(Goodbye, ssrcs=st.lists(u32, max_size=31).map(tuple), reason=reasons)
any_packet = st.one_of(senders, receivers, sdes, byes)


@given(senders)
def test_sender_report_round_trip(packet: SenderReport) -> None:
    assert parse_rtcp(packet.serialize()) == [packet]


@given(receivers)
def test_receiver_report_round_trip(packet: ReceiverReport) -> None:
    assert parse_rtcp(packet.serialize()) == [packet]


@given(sdes)
def test_source_description_round_trip(packet: SourceDescription) -> None:
    data = packet.serialize()
    assert len(data) % 4 == 0
    assert parse_rtcp(data) == [packet]


@given(byes)
def test_goodbye_round_trip(packet: Goodbye) -> None:
    data = packet.serialize()
    assert len(data) % 4 == 0
    assert parse_rtcp(data) == [packet]


@given(st.lists(any_packet, min_size=1, max_size=5))
def test_compound_round_trip(packets: list[RtcpPacket]) -> None:
    assert parse_rtcp(serialize_rtcp(packets)) == packets


@given(st.binary(max_size=120))
def test_arbitrary_bytes_parse_or_raise_rtcp_parse_error(data: bytes) -> None:
    try:
        parse_rtcp(data)
    except RtcpParseError:
        pass


@given(st.floats(0, 2_000_000_000, allow_nan=False))
def test_ntp_from_unix_is_monotonic_and_exact_to_the_second(seconds: float) -> None:
    ntp = ntp_from_unix(seconds)
    assert ntp >> 32 == int(seconds) + 2_208_988_800
    assert abs((ntp & 0xFFFFFFFF) / 2**32 - (seconds - int(seconds))) < 1e-6
