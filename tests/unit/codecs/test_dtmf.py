"""RFC 4733 telephone-events: wire format, sender sequence, and once-only digit reporting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mscodecs.dtmf import (
    DIGITS,
    END_REPEATS,
    MAX_DURATION,
    DtmfParseError,
    DtmfReceiver,
    TelephoneEvent,
    digit_to_event,
    dtmf_payloads,
)

events = st.builds(
    TelephoneEvent,
    event=st.integers(0, 255),
    end=st.booleans(),
    volume=st.integers(0, 63),
    duration=st.integers(0, 0xFFFF),
)


@given(events)
def test_serialize_then_parse_is_identity(event: TelephoneEvent) -> None:
    wire = event.serialize()
    assert len(wire) == 4
    assert TelephoneEvent.parse(wire) == event


@given(st.binary(min_size=4, max_size=4))
def test_parse_then_serialize_is_identity_except_the_reserved_bit(wire: bytes) -> None:
    event = TelephoneEvent.parse(wire)
    # R (0x40 of byte 1) is ignored on receive and always sent as zero.
    assert event.serialize() == bytes([wire[0], wire[1] & 0xBF, wire[2], wire[3]])


def test_known_wire_bytes() -> None:
    # Digit 5, end, volume 10, duration 800 (100 ms at 8 kHz): RFC 4733 §2.3 layout.
    assert TelephoneEvent(5, True, 10, 800).serialize() == b"\x05\x8a\x03\x20"
    assert TelephoneEvent.parse(b"\x0b\x0a\x00\xa0") == TelephoneEvent(11, False, 10, 160)
    assert TelephoneEvent.parse(b"\x0b\x0a\x00\xa0").digit == "#"


@given(st.binary().filter(lambda b: len(b) != 4))
def test_wrong_size_is_a_parse_error(wire: bytes) -> None:
    with pytest.raises(DtmfParseError, match="bytes"):
        TelephoneEvent.parse(wire)


@pytest.mark.parametrize(
    "fields",
    [
        {"event": 256},
        {"event": -1},
        {"volume": 64},
        {"volume": -1},
        {"duration": 0x10000},
        {"duration": -1},
    ],
)
def test_out_of_range_fields_are_refused(fields: dict[str, int]) -> None:
    args = {"event": 1, "end": False, "volume": 10, "duration": 160} | fields
    with pytest.raises(DtmfParseError):
        TelephoneEvent(**args)  # type: ignore[arg-type]


def test_digit_mapping_both_ways() -> None:
    assert len(DIGITS) == 16
    for code, digit in enumerate(DIGITS):
        assert digit_to_event(digit) == code
        assert TelephoneEvent(code, False, 0, 0).digit == digit
    assert digit_to_event("a") == 12
    assert TelephoneEvent(16, False, 0, 0).digit is None  # flash: not a key
    for bad in ("", "E", "12", "x"):
        with pytest.raises(ValueError):
            digit_to_event(bad)


def test_sender_sequence() -> None:
    packets = dtmf_payloads("7", duration_samples=800, step_samples=160, volume=12)
    assert [p.duration for p in packets] == [160, 320, 480, 640, 800, 800, 800]
    assert [p.end for p in packets] == [False] * 4 + [True] * END_REPEATS
    assert {(p.event, p.volume) for p in packets} == {(7, 12)}


def test_sender_sequence_with_a_ragged_last_step() -> None:
    packets = dtmf_payloads("#", duration_samples=500, step_samples=160)
    updates = [(160, False), (320, False), (480, False)]
    assert [(p.duration, p.end) for p in packets] == updates + [(500, True)] * END_REPEATS


def test_sender_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        dtmf_payloads("Z", 800, 160)
    with pytest.raises(ValueError):
        dtmf_payloads("1", 0, 160)
    with pytest.raises(ValueError):
        dtmf_payloads("1", MAX_DURATION + 1, 160)
    with pytest.raises(ValueError):
        dtmf_payloads("1", 800, 0)


def feed(receiver: DtmfReceiver, packets: list[tuple[TelephoneEvent, int]]) -> list[str]:
    return [d for event, ts in packets if (d := receiver.receive(event, ts)) is not None]


@given(st.text(alphabet=DIGITS, min_size=1, max_size=12), st.integers(0, 2**32 - 1))
def test_round_trip_of_a_dialled_string_reports_each_digit_once(number: str, start: int) -> None:
    # Each key press gets its own RTP timestamp (the event start); packets go on the wire
    # serialized and come back parsed, as they would through RTP.
    receiver = DtmfReceiver()
    packets = []
    ts = start
    for digit in number:
        for event in dtmf_payloads(digit, 800, 160):
            packets.append((TelephoneEvent.parse(event.serialize()), ts))
        ts = (ts + 1600) % 2**32  # 100 ms tone + 100 ms gap; wraps around like RTP
    assert "".join(feed(DtmfReceiver(), packets)) == number
    assert "".join(feed(receiver, packets + packets[-4:])) == number, "retransmissions add nothing"


def test_same_digit_twice_is_two_presses() -> None:
    press = dtmf_payloads("5", 480, 160)
    packets = [(e, 1000) for e in press] + [(e, 2600) for e in press]
    assert feed(DtmfReceiver(), packets) == ["5", "5"]


def test_lost_start_still_reports_on_the_end_packet() -> None:
    only_ends = [(e, 4000) for e in dtmf_payloads("9", 800, 160) if e.end]
    assert feed(DtmfReceiver(), only_ends) == ["9"]


def test_late_packet_of_an_earlier_event_is_not_a_new_press() -> None:
    first = [(e, 100) for e in dtmf_payloads("1", 480, 160)]
    second = [(e, 2000) for e in dtmf_payloads("2", 480, 160)]
    late = [first[1]]  # a reordered update of "1" arriving after "2" began
    assert feed(DtmfReceiver(), first + second[:2] + late + second[2:]) == ["1", "2"]


def test_non_dtmf_events_are_not_reported() -> None:
    flash = TelephoneEvent(16, True, 10, 800)
    receiver = DtmfReceiver()
    assert receiver.receive(flash, 0) is None
    assert receiver.receive(TelephoneEvent(0, False, 10, 160), 1600) == "0"


def test_long_event_split_into_segments_is_one_press() -> None:
    # RFC 4733 §2.5.1.3: past 0xFFFF the sender starts a new segment at ts + 0xFFFF.
    receiver = DtmfReceiver()
    start = 2**32 - 1000  # the segment boundary also wraps the 32-bit timestamp
    assert receiver.receive(TelephoneEvent(3, False, 10, 160), start) == "3"
    assert receiver.receive(TelephoneEvent(3, False, 10, MAX_DURATION), start) is None
    second = (start + MAX_DURATION) % 2**32
    assert receiver.receive(TelephoneEvent(3, False, 10, 160), second) is None
    assert receiver.receive(TelephoneEvent(3, True, 10, 800), second) is None
    # After the end, the same digit at a later timestamp is a new press.
    assert receiver.receive(TelephoneEvent(3, False, 10, 160), (second + 2400) % 2**32) == "3"


def test_a_short_press_is_not_mistaken_for_a_segment() -> None:
    receiver = DtmfReceiver()
    assert receiver.receive(TelephoneEvent(4, False, 10, 320), 0) == "4"  # its end packets were lost
    assert receiver.receive(TelephoneEvent(4, False, 10, 160), 1600) == "4"
