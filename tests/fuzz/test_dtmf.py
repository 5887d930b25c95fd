"""DTMF from the peer: RFC 4733 telephone-event payloads (`TelephoneEvent.parse` returns an event
or raises `DtmfParseError`; `DtmfReceiver` turns any packet sequence into digits of `0-9*#A-D`
only, each event timestamp at most once) and SIP INFO bodies (`parse_dtmf_info` returns a digit
and a sane duration or raises `ValueError`)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from mscodecs.dtmf import DIGITS, DtmfParseError, DtmfReceiver, TelephoneEvent, dtmf_payloads
from mssip.info import DTMF, DTMF_RELAY, parse_dtmf_info
from tests.fuzz.support import budget, mutated_bytes

EVENT_SEEDS = [event.serialize() for digit in "159#*D" for event in dtmf_payloads(digit, 1600, 160)]
INFO_SEEDS = [b"Signal=5\r\nDuration=160\r\n", b"signal= 11\nduration=250", b"#", b"10", b"Signal=A\r\n"]


PAYLOADS = st.one_of(
    st.sampled_from(EVENT_SEEDS), st.binary(min_size=4, max_size=4), mutated_bytes(EVENT_SEEDS, lines=False)
)


@budget(150)
@given(
    st.lists(st.tuples(PAYLOADS, st.sampled_from([0, 160, 800, 2**32 - 1]) | st.integers(0, 2**32 - 1)), max_size=12)
)
def test_telephone_events(packets: list[tuple[bytes, int]]) -> None:
    receiver = DtmfReceiver()
    reported: list[int] = []
    for payload, timestamp in packets:
        try:
            event = TelephoneEvent.parse(payload)
        except DtmfParseError as err:
            assert len(payload) != 4 and str(err)
            continue
        assert event.serialize()[0] == payload[0] and event.duration == int.from_bytes(payload[2:], "big")
        digit = receiver.receive(event, timestamp)
        if digit is not None:
            assert digit in DIGITS and event.event < 16
            reported.append(timestamp)
    assert len(reported) == len(set(reported))  # one digit per event (12 packets: within its window)


@example(DTMF_RELAY, "Signal=\u00b2\r\nDuration=\u00b2".encode())
@budget(300)
@given(st.sampled_from([DTMF, DTMF_RELAY, "text/plain"]), st.one_of(mutated_bytes(INFO_SEEDS), st.binary(max_size=64)))
def test_info_bodies(content_type: str, body: bytes) -> None:
    try:
        digit, duration_ms = parse_dtmf_info(content_type, body)
    except ValueError as err:
        assert str(err)
        return
    assert digit in DIGITS and 0 < duration_ms < 60_000
