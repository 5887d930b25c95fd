"""Sans-I/O: which RTP source a call accepts (the negotiated address, or one NAT latch)."""

from __future__ import annotations

import pytest

from mediaserver.rtp.packet import RtpPacket
from mediaserver.rtp.rtcp import ReceiverReport, serialize_rtcp
from mediaserver.rtp.source_filter import RtpSourceFilter, Verdict, normalize_addr, packet_ssrc

MS = 1_000_000
SDP = ("192.0.2.10", 4000)  # what the SDP said (a phone's private address, or the real one)
NAT = ("203.0.113.7", 61000)  # where a NATed phone's packets really come from
STRANGER = ("198.51.100.66", 5004)
SSRC = 0xCAFE
OTHER_SSRC = 0xBAD


def test_the_negotiated_address_is_accepted_and_teaches_the_ssrc() -> None:
    f = RtpSourceFilter(SDP)
    assert f.remote == SDP and not f.confirmed
    assert f.check(SDP, SSRC, 0) is Verdict.ACCEPT
    assert f.confirmed and f.expected_ssrc == SSRC
    assert f.check(SDP, OTHER_SSRC, 20 * MS) is Verdict.ACCEPT  # a restarted stream, same address
    assert f.check(STRANGER, OTHER_SSRC, 40 * MS) is Verdict.DROP
    assert f.dropped == 1 and f.remote == SDP and f.latches == 0


def test_a_natted_caller_is_latched_on_its_first_packets() -> None:
    f = RtpSourceFilter(SDP)
    assert f.admits(NAT, 0)
    assert f.check(NAT, SSRC, 0) is Verdict.LATCH
    assert f.remote == NAT and f.confirmed and f.expected_ssrc == SSRC
    assert f.last_latch is not None and (f.last_latch.old, f.last_latch.new, f.last_latch.ssrc) == (SDP, NAT, SSRC)
    assert f.check(NAT, SSRC, 20 * MS) is Verdict.ACCEPT
    # One latch per negotiation: neither the SDP's address nor anyone else moves it again.
    assert f.check(SDP, SSRC, 40 * MS) is Verdict.DROP
    assert f.check(STRANGER, SSRC, 60 * MS) is Verdict.DROP
    assert not f.admits(STRANGER, 60 * MS)
    assert f.remote == NAT and f.latches == 1 and f.dropped == 2


def test_within_the_window_only_the_expected_ssrc_latches() -> None:
    f = RtpSourceFilter(SDP)
    assert f.check(SDP, SSRC, 0) is Verdict.ACCEPT
    assert f.check(STRANGER, OTHER_SSRC, 20 * MS) is Verdict.DROP  # wrong SSRC: not the peer
    assert f.check(STRANGER, None, 30 * MS) is Verdict.DROP  # too short to carry one
    assert f.check(NAT, SSRC, 40 * MS) is Verdict.LATCH  # the first SSRC seen, from a new mapping
    assert f.remote == NAT


def test_an_ssrc_announced_in_the_sdp_is_required_from_the_first_packet() -> None:
    f = RtpSourceFilter()
    f.negotiate(SDP, ssrc=SSRC)
    assert f.check(STRANGER, OTHER_SSRC, 0) is Verdict.DROP
    assert f.check(NAT, SSRC, 10 * MS) is Verdict.LATCH


@pytest.mark.parametrize(
    ("packets", "after_ns"),
    [(50, 20 * MS), (3, 2_000 * MS)],  # closed by the packet count / by the time since the flow began
)
def test_the_window_closes_after_the_first_packets_or_seconds(packets: int, after_ns: int) -> None:
    f = RtpSourceFilter(SDP)
    for i in range(packets):
        assert f.check(SDP, SSRC, i * MS) is Verdict.ACCEPT
    now = packets * MS + after_ns
    assert not f.window_open(now) and not f.admits(NAT, now)
    assert f.check(NAT, SSRC, now) is Verdict.DROP  # even with the right SSRC: too late
    assert f.remote == SDP and f.dropped == 1


def test_strangers_packets_do_not_start_or_close_the_window() -> None:
    f = RtpSourceFilter(SDP)
    f.check(SDP, SSRC, 0)
    for i in range(500):
        assert f.check(STRANGER, OTHER_SSRC, i * MS) is Verdict.DROP
    assert f.window_open(500 * MS)  # a flood of wrong-SSRC packets does not lock the peer out
    assert f.dropped == 500


def test_an_unknown_address_latches_to_the_first_packet_once() -> None:
    f = RtpSourceFilter(("0.0.0.0", 0))
    assert f.remote == ("0.0.0.0", 0) and f.negotiated is None
    assert f.check(NAT, SSRC, 0) is Verdict.LATCH
    assert f.last_latch is not None and f.last_latch.old is None
    assert f.check(STRANGER, SSRC, 1 * MS) is Verdict.DROP


def test_a_reinvite_with_a_new_address_reopens_the_window() -> None:
    f = RtpSourceFilter(SDP)
    for i in range(60):
        f.check(NAT, SSRC, i * 20 * MS)
    assert f.remote == NAT and not f.window_open(2_000 * MS)
    moved = ("192.0.2.99", 7000)
    f.negotiate(moved)  # a re-INVITE: the phone moved to another network
    assert f.remote == moved and f.window_open(2_000 * MS) and f.expected_ssrc is None
    assert f.check(NAT, SSRC, 2_000 * MS) is Verdict.LATCH  # behind a NAT again: latch again
    assert f.latches == 2


def test_the_same_address_again_keeps_the_latch() -> None:
    f = RtpSourceFilter(SDP)
    f.check(NAT, SSRC, 0)
    f.negotiate(SDP)  # a session refresh repeats the private address: the NAT latch stays
    assert f.remote == NAT and f.expected_ssrc == SSRC and f.latches == 1


def test_addresses_are_compared_as_a_socket_reports_them() -> None:
    assert normalize_addr(("0.0.0.0", 4000)) is None and normalize_addr(("::", 4000)) is None
    assert normalize_addr(("192.0.2.1", 0)) is None
    assert normalize_addr(("2001:db8:0:0::1", 4000)) == ("2001:db8::1", 4000)
    f = RtpSourceFilter(("2001:DB8:0::1", 4000))
    assert f.check(("2001:db8::1", 4000), SSRC, 0) is Verdict.ACCEPT


def test_packet_ssrc_reads_rtp_and_rtcp() -> None:
    assert packet_ssrc(RtpPacket(0, 1, 160, SSRC, b"\xff" * 160).serialize()) == SSRC
    assert packet_ssrc(serialize_rtcp([ReceiverReport(ssrc=SSRC)])) == SSRC
    assert packet_ssrc(b"\x80\x00") is None


def test_the_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        RtpSourceFilter(SDP, window_packets=0)
