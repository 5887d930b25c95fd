from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediaserver.rtp.jitter import Gap, JitterBuffer
from mediaserver.rtp.packet import RtpPacket

FS = 160  # 20 ms at 8 kHz
TICK_NS = 20_000_000


def train(n: int, seq0: int = 1000, ts0: int = 50_000, ssrc: int = 0xABC, first: int = 0) -> list[RtpPacket]:
    """Packets first..first+n-1 of one stream; the payload names the index."""
    return [
        RtpPacket(
            payload_type=0,
            sequence=(seq0 + i) % 65536,
            timestamp=(ts0 + i * FS) % 2**32,
            ssrc=ssrc,
            payload=i.to_bytes(4, "big"),
        )
        for i in range(first, first + n)
    ]


def label(item: RtpPacket | Gap | None) -> str:
    if item is None:
        return "-"
    if isinstance(item, Gap):
        return f"gap@{item.timestamp}"
    return str(int.from_bytes(item.payload, "big"))


def run_ticks(jb: JitterBuffer, arrivals: dict[int, list[RtpPacket]], ticks: int) -> list[str]:
    out = []
    for tick in range(ticks):
        for pkt in arrivals.get(tick, []):
            jb.push(pkt, tick * TICK_NS)
        out.append(label(jb.pop()))
    return out


def test_in_order_stream_primes_then_plays_one_slot_per_pop() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=3)
    pkts = train(5)
    assert run_ticks(jb, {i: [p] for i, p in enumerate(pkts)}, 7) == ["-", "-", "0", "1", "2", "3", "4"]
    assert jb.pop() == Gap(50_000 + 5 * FS, FS)  # the stream ended: gaps, one per pop
    assert (jb.stats.received, jb.stats.played, jb.stats.lost) == (5, 5, 1)


def test_loss_gives_a_gap_at_the_missing_timestamp() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=2)
    pkts = train(6)
    arrivals = {i: [p] for i, p in enumerate(pkts) if i != 3}
    assert run_ticks(jb, arrivals, 7) == ["-", "0", "1", "2", f"gap@{50_000 + 3 * FS}", "4", "5"]
    assert jb.stats.lost == 1


def test_reordering_within_the_depth_is_repaired() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=3)
    p = train(6)
    arrivals = {0: [p[1]], 1: [p[0], p[3]], 2: [p[2]], 3: [p[5], p[4]]}
    # At tick 1 the buffer spans slots 0..3 (>= depth): playout starts one tick early.
    assert run_ticks(jb, arrivals, 7) == ["-", "0", "1", "2", "3", "4", "5"]
    assert jb.stats.reordered == 3  # p0 after p1, p2 after p3, p4 after p5
    assert jb.stats.late == 0


def test_duplicates_are_dropped_and_counted_even_after_playout() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=1)
    p = train(3)
    arrivals = {0: [p[0], p[0]], 1: [p[1]], 2: [p[0], p[2], p[2]]}
    assert run_ticks(jb, arrivals, 3) == ["0", "1", "2"]
    assert jb.stats.duplicates == 3
    assert jb.stats.late == 0


def test_late_packet_is_dropped_after_its_gap() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=2)
    p = train(5)
    arrivals = {0: [p[0]], 1: [p[1]], 2: [p[3]], 3: [p[4]], 4: [p[2]]}
    assert run_ticks(jb, arrivals, 5) == ["-", "0", "1", f"gap@{50_000 + 2 * FS}", "3"]
    assert (jb.stats.late, jb.stats.lost, jb.stats.played) == (1, 1, 3)


def test_sequence_and_timestamp_wraparound() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=3)
    p = train(8, seq0=65533, ts0=2**32 - 3 * FS)
    arrivals = {0: [p[1]], 1: [p[0]], 2: [p[2], p[3]], 3: [p[4]], 4: [p[6]], 5: [p[7]]}  # p5 lost
    assert run_ticks(jb, arrivals, 10) == ["-", "-", "0", "1", "2", "3", "4", "gap@320", "6", "7"]
    assert (p[3].sequence, p[3].timestamp) == (0, 0)


def test_dtx_talkspurt_plays_gaps_then_audio() -> None:
    # Packets 0-2, then 10 frames of silence not sent, then a marker packet whose sequence
    # number follows on directly but whose timestamp jumped.
    jb = JitterBuffer(8000, FS, depth_frames=2)
    first = train(3)
    spurt = [
        RtpPacket(0, 1003 + i, 50_000 + (13 + i) * FS, 0xABC, (13 + i).to_bytes(4, "big"), marker=i == 0)
        for i in range(2)
    ]
    arrivals = {0: [first[0]], 1: [first[1]], 2: [first[2]], 13: [spurt[0]], 14: [spurt[1]]}
    out = run_ticks(jb, arrivals, 16)
    assert out == ["-", "0", "1", "2"] + [f"gap@{50_000 + k * FS}" for k in range(3, 13)] + ["13", "14"]
    assert jb.stats.resyncs == 0


def test_new_ssrc_resyncs_and_primes_again() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=2)
    old = train(3)
    new = train(3, seq0=7, ts0=999, ssrc=0xDEF)
    arrivals = {0: [old[0]], 1: [old[1]], 2: [old[2]], 3: [new[0]], 4: [new[1]], 5: [new[2]]}
    assert run_ticks(jb, arrivals, 7) == ["-", "0", "1", "-", "0", "1", "2"]
    assert jb.stats.resyncs == 1


def test_far_timestamp_jump_with_consecutive_sequence_resyncs_at_once() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=2, max_frames=10)
    before = train(3)
    after = train(3, seq0=1003, ts0=123_456_789)  # e.g. the peer resumed from hold on a new clock
    arrivals = {0: [before[0]], 1: [before[1]], 2: [before[2]], 3: [after[0]], 4: [after[1]], 5: [after[2]]}
    assert run_ticks(jb, arrivals, 7) == ["-", "0", "1", "-", "0", "1", "2"]
    assert (jb.stats.resyncs, jb.stats.strays) == (1, 0)


def test_lone_far_packet_is_a_stray() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=2, max_frames=10)
    p = train(5)
    stray = RtpPacket(0, 40_000, 9_999_999, 0xABC, b"xxxx")
    arrivals = {0: [p[0]], 1: [p[1]], 2: [stray, p[2]], 3: [p[3]], 4: [p[4]]}
    assert run_ticks(jb, arrivals, 5) == ["-", "0", "1", "2", "3"]
    assert (jb.stats.strays, jb.stats.resyncs) == (1, 0)


def test_far_restart_confirmed_by_the_next_packet() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=2, max_frames=10)
    before = train(3)
    after = train(3, seq0=5, ts0=777)  # same SSRC, the sender restarted both counters
    arrivals = {0: [before[0]], 1: [before[1]], 2: [before[2]], 3: [after[0]], 4: [after[1]], 5: [after[2]]}
    # after[0] is held back (its sequence does not follow on); after[1] confirms it.
    assert run_ticks(jb, arrivals, 7) == ["-", "0", "1", "2", "0", "1", "2"]
    assert (jb.stats.resyncs, jb.stats.strays) == (1, 0)


def test_overflow_drops_the_oldest() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=3, max_frames=10)
    for pkt in train(14):
        jb.push(pkt, 0)
    assert jb.stats.overflow == 4
    assert jb.buffered == 10
    assert [label(jb.pop()) for _ in range(3)] == ["4", "5", "6"]


def test_overflow_while_playing_moves_the_cursor() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=1, max_frames=4)
    p = train(10)
    jb.push(p[0], 0)
    assert label(jb.pop()) == "0"
    for pkt in p[1:7]:  # a burst: slots 1..6, only 4 fit
        jb.push(pkt, 0)
    assert jb.stats.overflow == 2
    assert [label(jb.pop()) for _ in range(4)] == ["3", "4", "5", "6"]


def test_a_run_of_late_packets_resyncs_a_slow_sender() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=2)
    p = train(12)
    # The sender pauses 6 ticks without advancing its timestamps, then resumes in order.
    arrivals = {0: [p[0]], 1: [p[1]], 2: [p[2]]} | {9 + i: [p[3 + i]] for i in range(5)}
    out = run_ticks(jb, arrivals, 15)
    gaps = [f"gap@{50_000 + k * FS}" for k in range(3, 9)]
    # p3 and p4 come late (dropped), p4 completes the streak and restarts playout from itself.
    assert out == ["-", "0", "1", "2"] + gaps + ["-", "4", "5", "6", "7"]
    assert (jb.stats.late, jb.stats.resyncs) == (2, 1)


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="depth_frames"):
        JitterBuffer(8000, FS, depth_frames=0)
    with pytest.raises(ValueError, match="must be positive"):
        JitterBuffer(8000, 0)


# -- properties -------------------------------------------------------------------------------

starts = st.tuples(
    st.one_of(st.integers(65_500, 65_535), st.integers(0, 65_535)),
    st.one_of(st.integers(2**32 - 20 * FS, 2**32 - 1), st.integers(0, 2**32 - 1)),
)


@st.composite
def mangled_trains(draw: st.DrawFn, max_n: int = 40) -> tuple[list[RtpPacket], set[int], list[RtpPacket]]:
    """A train, the indices dropped from it, and the arrivals: kept packets plus duplicates, shuffled."""
    n = draw(st.integers(1, max_n))
    seq0, ts0 = draw(starts)
    pkts = train(n, seq0, ts0)
    dropped = draw(st.sets(st.integers(0, n - 1)))
    kept = [p for i, p in enumerate(pkts) if i not in dropped]
    dups = draw(st.lists(st.sampled_from(kept), max_size=5)) if kept else []
    arrivals = draw(st.permutations(kept + dups))
    return pkts, dropped, arrivals


def expected_playout(pkts: list[RtpPacket], dropped: set[int]) -> list[str]:
    present = [i for i in range(len(pkts)) if i not in dropped]
    return [
        label(pkts[i]) if i not in dropped else f"gap@{pkts[i].timestamp}" for i in range(present[0], present[-1] + 1)
    ]


@settings(max_examples=300, deadline=None)
@given(mangled_trains(), st.integers(1, 4))
def test_any_mangled_train_within_the_window_plays_in_order(
    case: tuple[list[RtpPacket], set[int], list[RtpPacket]], depth: int
) -> None:
    pkts, dropped, arrivals = case
    jb = JitterBuffer(8000, FS, depth_frames=depth, max_frames=50)
    for pkt in arrivals:
        jb.push(pkt, 0)
    present = [i for i in range(len(pkts)) if i not in dropped]
    if not present:
        assert jb.pop() is None
        return
    expected = expected_playout(pkts, dropped)
    # A buffer spanning fewer than `depth` slots waits depth - 1 pops before it plays anyway.
    waits = 0 if len(expected) >= depth else depth - 1
    assert [label(jb.pop()) for _ in range(waits + len(expected))] == ["-"] * waits + expected
    assert jb.stats.duplicates == len(arrivals) - len(present)
    assert (jb.stats.played, jb.stats.lost, jb.stats.late, jb.stats.resyncs) == (
        len(present),
        len(expected) - len(present),
        0,
        0,
    )


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(1, 4))
def test_delays_below_the_depth_never_make_a_packet_late(data: st.DataObject, depth: int) -> None:
    pkts, dropped, _ = data.draw(mangled_trains(max_n=60))
    # Packet i is due to arrive on tick i; each copy is delayed by 0..depth-1 ticks.
    copies = [i for i in range(len(pkts)) if i not in dropped]
    copies += data.draw(st.lists(st.sampled_from(copies), max_size=5)) if copies else []
    arrivals: dict[int, list[RtpPacket]] = {}
    for i in data.draw(st.permutations(copies)):
        arrivals.setdefault(i + data.draw(st.integers(0, depth - 1)), []).append(pkts[i])
    jb = JitterBuffer(8000, FS, depth_frames=depth, max_frames=50)
    # Enough ticks for the worst case: the first packet delayed depth-1 ticks, then depth-1
    # priming pops when the buffer spans fewer than depth slots, then one pop per slot.
    played = [x for x in run_ticks(jb, arrivals, len(pkts) + 2 * depth) if x != "-"]
    if not copies:
        assert played == []
        return
    expected = expected_playout(pkts, dropped)
    assert played[: len(expected)] == expected
    assert (jb.stats.late, jb.stats.resyncs, jb.stats.overflow) == (0, 0, 0)


def test_a_late_packet_raises_the_depth_by_one_stalled_frame() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=2, max_depth_frames=4)
    p = train(8)
    # p2 is one tick later than the depth allows; from then on every packet arrives that late.
    arrivals = {0: [p[0]], 1: [p[1]], 4: [p[2]], 5: [p[3]], 6: [p[4]], 7: [p[5]], 8: [p[6]], 9: [p[7]]}
    out = run_ticks(jb, arrivals, 11)
    gap2, gap3 = (f"gap@{50_000 + k * FS}" for k in (2, 3))
    # p2 is lost (its slot played as a gap), the stall repeats slot 3's timestamp, then nothing
    # more is late: playout runs one frame behind, the rest in order.
    assert out == ["-", "0", "1", gap2, gap3, "3", "4", "5", "6", "7", f"gap@{50_000 + 8 * FS}"]
    assert (jb.stats.late, jb.stats.raised, jb.depth_frames, jb.stats.resyncs) == (1, 1, 3, 0)


def test_the_depth_stops_rising_at_its_maximum() -> None:
    jb = JitterBuffer(8000, FS, depth_frames=1, max_depth_frames=2)
    p = train(12)
    # Packets arrive ever later: the first late one raises the depth, later ones are dropped.
    arrivals = {0: [p[0]], 1: [p[1]], 3: [p[2]], 4: [p[3]], 7: [p[4]], 8: [p[5]]}
    run_ticks(jb, arrivals, 9)
    assert (jb.depth_frames, jb.stats.raised) == (2, 1) and jb.stats.late >= 2


@settings(max_examples=200, deadline=None)
@given(data=st.data(), depth=st.integers(1, 3), extra=st.integers(1, 4))
def test_a_raised_depth_absorbs_delays_up_to_it(data: st.DataObject, depth: int, extra: int) -> None:
    # Delays up to depth + extra - 1 ticks: at most `extra` packets are ever late, each raising
    # the depth, and every packet that is not late plays in order.
    n = 30
    pkts = train(n)
    arrivals: dict[int, list[RtpPacket]] = {}
    for i in range(n):
        arrivals.setdefault(i + data.draw(st.integers(0, depth + extra - 1)), []).append(pkts[i])
    jb = JitterBuffer(8000, FS, depth_frames=depth, max_depth_frames=depth + extra)
    played = [x for x in run_ticks(jb, arrivals, n + 3 * (depth + extra)) if x != "-" and not x.startswith("gap")]
    assert jb.stats.late == jb.stats.raised <= extra and jb.stats.resyncs == 0
    assert played == sorted(played, key=int) and len(played) == n - jb.stats.late
