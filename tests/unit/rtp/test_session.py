from __future__ import annotations

import random

import pytest

from mediaserver.rtp.packet import RtpPacket
from mediaserver.rtp.rtcp import (
    SDES_CNAME,
    Goodbye,
    ReceiverReport,
    ReportBlock,
    SdesChunk,
    SenderReport,
    SourceDescription,
    middle_ntp,
    ntp_from_unix,
    parse_rtcp,
    serialize_rtcp,
)
from mediaserver.rtp.session import FIRST_RTCP_DELAY_NS, RTCP_INTERVAL_NS, RtpSession

MS = 1_000_000
S = 1_000_000_000
OURS = 0x11111111
THEIRS = 0x22222222
T0 = 1_700_000_000.0  # a unix time for NTP stamps


def session(**kwargs: object) -> RtpSession:
    args: dict[str, object] = {
        "ssrc": OURS,
        "payload_type": 0,
        "clock_rate": 8000,
        "cname": "ms@example",
        "initial_sequence": 0,
        "initial_timestamp": 0,
    }
    args.update(kwargs)
    return RtpSession(**args)  # type: ignore[arg-type]


def remote(seq: int, ts: int, ssrc: int = THEIRS) -> RtpPacket:
    return RtpPacket(0, seq % 65536, ts % 2**32, ssrc, b"\x00" * 160)


# -- outbound ---------------------------------------------------------------------------------


def test_packetize_wraps_sequence_and_timestamp_and_counts() -> None:
    s = session(initial_sequence=65534, initial_timestamp=2**32 - 160)
    pkts = [s.packetize(b"a" * 160, 160, marker=i == 0) for i in range(3)]
    assert [(p.sequence, p.timestamp, p.marker) for p in pkts] == [
        (65534, 2**32 - 160, True),
        (65535, 0, False),
        (0, 160, False),
    ]
    assert all(p.ssrc == OURS and p.payload_type == 0 for p in pkts)
    s.advance(320)  # two frames not sent
    assert s.packetize(b"b", 160, marker=True).timestamp == 640
    assert (s.packets_sent, s.octets_sent) == (4, 481)


def test_random_initial_values_come_from_the_given_rng() -> None:
    s = RtpSession(OURS, 0, 8000, "x", rng=random.Random(7))
    r = random.Random(7)
    assert (s.sequence, s.timestamp) == (r.randrange(65536), r.randrange(2**32))


# -- inbound statistics (RFC 3550 A.1, A.3, A.8) ----------------------------------------------


def test_probation_then_clean_stream() -> None:
    s = session()
    for i in range(10):
        s.receive(remote(100 + i, i * 160), i * 20 * MS)
    src = s.remote
    assert src is not None
    # The first packet only starts probation; base_seq is the second one.
    assert (src.probation, src.base_seq, src.received, src.expected, src.lost) == (0, 101, 9, 9, 0)


def test_loss_counts_and_fraction_lost_per_interval() -> None:
    s = session()
    missing = {105, 110, 111}
    for seq in range(100, 120):
        if seq not in missing:
            s.receive(remote(seq, seq * 160), seq * 20 * MS)
    [rr, _] = parse_rtcp(s.build_report(10 * S, T0))
    assert isinstance(rr, ReceiverReport)
    [block] = rr.reports
    # expected 101..119 = 19, received 16: fraction 3*256 // 19 = 40.
    assert (block.ssrc, block.fraction_lost, block.packets_lost, block.highest_sequence) == (
        THEIRS,
        40,
        3,
        119,
    )
    for seq in range(120, 130):
        s.receive(remote(seq, seq * 160), seq * 20 * MS)
    [rr, _] = parse_rtcp(s.build_report(15 * S, T0 + 5))
    assert isinstance(rr, ReceiverReport)
    assert (rr.reports[0].fraction_lost, rr.reports[0].packets_lost) == (0, 3)


def test_all_lost_in_an_interval_reports_255() -> None:
    s = session()
    for seq in (1, 2):
        s.receive(remote(seq, 0), 0)
    s.build_report(S, T0)
    s.receive(remote(12, 0), 0)  # 3..11 lost, 12 received: 9 of 10 lost
    [rr, _] = parse_rtcp(s.build_report(2 * S, T0))
    assert isinstance(rr, ReceiverReport)
    assert rr.reports[0].fraction_lost == 9 * 256 // 10


def test_sequence_wraparound_counts_a_cycle() -> None:
    s = session()
    for i in range(20):
        s.receive(remote(65530 + i, i * 160), i * 20 * MS)
    src = s.remote
    assert src is not None
    assert (src.cycles, src.max_seq, src.extended_max, src.expected, src.lost) == (65536, 13, 65549, 19, 0)


def test_duplicates_make_loss_negative() -> None:
    s = session()
    for seq in (1, 2, 3, 3, 4):
        s.receive(remote(seq, seq * 160), seq * 20 * MS)
    assert s.remote is not None and s.remote.lost == -1


def test_restart_is_confirmed_by_two_sequential_packets() -> None:
    s = session()
    for seq in range(100, 105):
        s.receive(remote(seq, seq * 160), 0)
    s.receive(remote(30_000, 0), 0)
    src = s.remote
    assert src is not None and (src.base_seq, src.received, src.bad_seq) == (101, 4, 30_001)
    s.receive(remote(30_001, 160), 0)
    assert (src.base_seq, src.max_seq, src.received) == (30_001, 30_001, 1)


def test_new_remote_ssrc_starts_fresh_statistics() -> None:
    s = session()
    for seq in range(5):
        s.receive(remote(seq, 0), 0)
    s.receive(remote(900, 0, ssrc=0x33), 0)
    assert s.remote is not None and (s.remote.ssrc, s.remote.probation) == (0x33, 1)


def test_interarrival_jitter_matches_a_hand_computation() -> None:
    s = session()
    delays_ms = [0, 0, 2, 0, 0]  # packet 2 arrives 2 ms (16 RTP units at 8 kHz) late
    for i, d in enumerate(delays_ms):
        s.receive(remote(i, 1000 + i * 160), 5 * S + (i * 20 + d) * MS)
    # |D| per packet: -, 0, 16, 16, 0.  J: 0, 1, 1 + 15/16, then * 15/16.
    assert s.remote is not None and s.remote.jitter == pytest.approx(1.9375 * 15 / 16, abs=0)
    [rr, _] = parse_rtcp(s.build_report(6 * S, T0))
    assert isinstance(rr, ReceiverReport) and rr.reports[0].jitter == 1


def test_jitter_is_unaffected_by_timestamp_wraparound() -> None:
    s = session()
    for i in range(6):
        s.receive(remote(i, 2**32 - 320 + i * 160), (i * 20) * MS)
    assert s.remote is not None and s.remote.jitter == 0.0


# -- RTCP -------------------------------------------------------------------------------------


def test_report_schedule() -> None:
    s = session()
    assert not s.rtcp_due(3 * S)  # the first time shown starts the clock
    assert not s.rtcp_due(3 * S + FIRST_RTCP_DELAY_NS - 1)
    assert s.rtcp_due(3 * S + FIRST_RTCP_DELAY_NS)
    s.build_report(4 * S + 7, T0)
    assert s.next_rtcp_ns == 4 * S + 7 + RTCP_INTERVAL_NS
    assert not s.rtcp_due(9 * S)
    assert s.rtcp_due(9 * S + 7)


def test_sender_report_when_we_sent_then_receiver_report() -> None:
    s = session(initial_timestamp=8000)
    for _ in range(3):
        s.packetize(b"x" * 160, 160, marker=False)
    packets = parse_rtcp(s.build_report(S, T0))
    assert packets == [
        SenderReport(OURS, ntp_from_unix(T0), 8000 + 480, 3, 480, ()),
        SourceDescription((SdesChunk(OURS, ((SDES_CNAME, b"ms@example"),)),)),
    ]
    assert parse_rtcp(s.build_report(6 * S, T0 + 5))[0] == ReceiverReport(OURS, ())


def test_lsr_and_dlsr_echo_the_remote_sender_report() -> None:
    s = session()
    for seq in range(3):
        s.receive(remote(seq, seq * 160), seq * 20 * MS)
    their_ntp = 0xE7B5A3C4_80000000
    sr = SenderReport(THEIRS, their_ntp, 1234, 10, 1600, ())
    assert s.receive_rtcp(serialize_rtcp([sr]), 10 * S) == [sr]
    [rr, _] = parse_rtcp(s.build_report(11_500 * MS, T0))
    assert isinstance(rr, ReceiverReport)
    assert (rr.reports[0].lsr, rr.reports[0].dlsr) == (0xA3C48000, 98_304)  # 1.5 s * 65536


def test_remote_report_about_us_gives_loss_jitter_and_rtt() -> None:
    s = session()
    s.packetize(b"x", 160, marker=True)
    s.build_report(S, T0)
    lsr = middle_ntp(ntp_from_unix(T0))
    block = ReportBlock(OURS, 64, 2, 70_000, 12, lsr, 16_384)  # DLSR 0.25 s
    s.receive_rtcp(serialize_rtcp([ReceiverReport(THEIRS, (block,))]), S + 300 * MS)
    report = s.remote_report
    assert report is not None
    assert (report.reporter_ssrc, report.fraction_lost, report.packets_lost, report.jitter) == (
        THEIRS,
        64,
        2,
        12,
    )
    assert report.loss_ratio == 0.25
    assert report.rtt_ns == 50 * MS  # 300 ms since our SR, less 250 ms held by the remote


def test_rtt_is_unknown_without_a_matching_sender_report() -> None:
    s = session()
    block = ReportBlock(OURS, 0, 0, 0, 0, 0, 0)
    s.receive_rtcp(serialize_rtcp([ReceiverReport(THEIRS, (block,))]), S)
    assert s.remote_report is not None and s.remote_report.rtt_ns is None
    other = ReportBlock(0x999, 0, 0, 0, 0, 0, 0)  # about someone else: ignored
    s.receive_rtcp(serialize_rtcp([ReceiverReport(THEIRS, (other,))]), 2 * S)
    assert s.remote_report.received_ns == S


def test_bye() -> None:
    s = session()
    assert parse_rtcp(s.build_bye("done")) == [
        ReceiverReport(OURS),
        SourceDescription((SdesChunk(OURS, ((SDES_CNAME, b"ms@example"),)),)),
        Goodbye((OURS,), "done"),
    ]
    s.receive(remote(1, 0), 0)
    assert not s.remote_left
    s.receive_rtcp(serialize_rtcp([ReceiverReport(THEIRS), Goodbye((THEIRS,))]), S)
    assert s.remote_left


def test_two_sessions_talk() -> None:
    a = session(ssrc=OURS)
    b = session(ssrc=THEIRS, initial_sequence=500)
    for i in range(50):
        pkt = a.packetize(b"x" * 160, 160, marker=False)
        if i % 10 != 5:  # 5 of 50 lost on the way
            b.receive(pkt, S + i * 20 * MS)
    sr = a.build_report(2 * S, T0)
    b.receive_rtcp(sr, 2 * S + 40 * MS)
    rr = b.build_report(2 * S + 60 * MS, T0)  # b holds the SR 20 ms before answering
    a.receive_rtcp(rr, 2 * S + 100 * MS)
    report = a.remote_report
    assert report is not None
    # b expected 1..49 (packet 0 was its probation) and got 44: 5 lost, fraction 5*256//49.
    assert (report.packets_lost, report.fraction_lost, report.highest_sequence) == (5, 5 * 256 // 49, 49)
    # DLSR is in 1/65536 s: 20 ms -> 1310 units (floor) -> 19_989_013 ns, so the 80 ms RTT
    # comes out 10_987 ns long, within one DLSR unit (15_259 ns).
    assert report.rtt_ns == 100 * MS - 1310 * S // 65536 == 80_010_987
