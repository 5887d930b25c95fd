"""RTP and RTCP from the peer: `RtpPacket.parse` and `parse_rtcp` return packets or raise their
`ValueError` subclass (`RtpParseError`, `RtcpParseError`); parse(serialize(p)) == p; and the
call's media path (`MediaStream.receive_datagram` + `tick`, which also runs the jitter buffer,
the RTP session, RFC 4733 and the decoders) never raises for any datagram, only counts it bad."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.rtp.packet import RtpPacket, RtpParseError
from mediaserver.rtp.rtcp import (
    Goodbye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    RtcpParseError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    parse_rtcp,
    serialize_rtcp,
)
from mediaserver.rtp.session import RtpSession
from mscodecs.dtmf import dtmf_payloads
from tests.fuzz.support import budget, mutated_bytes

U32 = st.integers(0, 2**32 - 1)
PACKETS = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=U32,
    ssrc=U32,
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrcs=st.lists(U32, max_size=15).map(tuple),
    extension=st.none() | st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40).map(lambda b: b[: len(b) // 4 * 4])),
)
BLOCKS = st.builds(
    ReportBlock,
    ssrc=U32,
    fraction_lost=st.integers(0, 255),
    packets_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_sequence=U32,
    jitter=U32,
    lsr=U32,
    dlsr=U32,
)
RTCP = st.one_of(
    st.builds(SenderReport, U32, st.integers(0, 2**64 - 1), U32, U32, U32, st.lists(BLOCKS, max_size=3).map(tuple)),
    st.builds(ReceiverReport, U32, st.lists(BLOCKS, max_size=3).map(tuple)),
    st.builds(
        SourceDescription,
        st.lists(
            st.builds(
                SdesChunk, U32, st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=40)), max_size=3).map(tuple)
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(Goodbye, st.lists(U32, max_size=4).map(tuple), st.none() | st.text(max_size=60)),
)


def _seed_packets() -> list[bytes]:
    """Real traffic as the code itself builds it: audio, telephone-events, a compound SR + SDES, a BYE."""
    session = RtpSession(0x1234, 0, 8000, "fuzz@example", rng=random.Random(1))
    seeds = [session.packetize(bytes(160), 160, marker=i == 0).serialize() for i in range(3)]
    seeds += [
        RtpPacket(101, 7 + i, 800, 0x1234, event.serialize(), marker=i == 0).serialize()
        for i, event in enumerate(dtmf_payloads("5", 800, 160))
    ]
    seeds.append(
        RtpPacket(0, 9, 1600, 0x1234, b"\x01" * 160, csrcs=(1, 2), extension=(0xBEDE, b"\x10\xff\x00\x00")).serialize()
    )
    seeds.append(session.build_report(2_000_000_000, 1_700_000_000.0))
    seeds.append(session.build_bye("bye \u00e9"))
    return seeds


SEEDS = _seed_packets()


@budget(300)
@given(PACKETS)
def test_rtp_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(packet.serialize()) == packet


@budget(200)
@given(st.lists(RTCP, min_size=1, max_size=4))
def test_rtcp_round_trip(packets: list[RtcpPacket]) -> None:
    assert parse_rtcp(serialize_rtcp(packets)) == packets


@budget(400)
@given(st.one_of(mutated_bytes(SEEDS, lines=False), st.binary(max_size=300)))
def test_parsers_raise_only_their_errors(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError as err:
        assert str(err)
    else:
        assert RtpPacket.parse(packet.serialize()) == packet
    try:
        parse_rtcp(data)
    except RtcpParseError as err:
        assert str(err)
    session = RtpSession(0x1234, 0, 8000, "x", rng=random.Random(2))
    try:
        session.receive_rtcp(data, 1)
    except RtcpParseError:
        pass


@budget(150)
@given(
    st.sampled_from(["PCMU", "PCMA", "G722", "opus"]),
    st.lists(
        st.one_of(st.sampled_from(SEEDS), mutated_bytes(SEEDS, lines=False), PACKETS.map(RtpPacket.serialize)),
        max_size=12,
    ),
)
def test_media_stream_never_raises(codec: str, datagrams: list[bytes]) -> None:
    clock = 48000 if codec == "opus" else 8000
    pt = {"PCMU": 0, "PCMA": 8, "G722": 9, "opus": 111}[codec]
    stream = MediaStream(MediaParams(codec, pt, clock, 101), "fuzz@example", random.Random(3))
    now = 0
    for data in datagrams:
        stream.receive_datagram(data, now)
        for out in stream.tick(now, 1_700_000_000.0 + now / 1e9):
            assert isinstance(out, bytes)
        now += 20_000_000
    counters = stream.counters  # every datagram is accounted for: taken, or counted bad
    assert counters.packets_in + counters.rtcp_in <= len(datagrams)
    assert counters.packets_in + counters.rtcp_in + counters.bad_packets >= len(datagrams)
