"""Fuzz the parser and the endpoint with hypothesis: every input is a message or a clean error.

The suite runs a bounded number of examples; set MS_FUZZ_EXAMPLES (e.g. 200000) for a long run.
Inputs are random bytes, and the RFC 4475 fixtures with bytes flipped, cut, duplicated or
spliced, which reach much deeper into the grammar than random bytes do.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mssip.endpoint import SipEndpoint
from mssip.errors import SipParseError
from mssip.message import Request, Response
from mssip.parser import StreamFramer, parse_message
from tests.unit.sip.sipkit import PEER

EXAMPLES = int(os.environ.get("MS_FUZZ_EXAMPLES", "1500"))
TORTURE = Path(__file__).parents[2] / "fixtures" / "sip" / "rfc4475"
SEEDS = [p.read_bytes().replace(b"\n", b"\r\n") for p in sorted(TORTURE.glob("*.sip"))]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "dup", "insert"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 40))]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 80))]
        else:
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"\r\n",
                        b" ",
                        b";",
                        b",",
                        b"<",
                        b">",
                        b'"',
                        b"\\",
                        b":",
                        b"\x00",
                        b"\r\n ",
                        b"%",
                        b"@",
                        b"[",
                        b"]",
                        b"SIP/2.0",
                        b"99999999999",
                    ]
                )
            )
    return bytes(data)


def check_parse(data: bytes) -> None:
    try:
        message = parse_message(data)
    except SipParseError as err:
        assert err.reason and 400 <= err.status < 600
        assert err.partial is None or isinstance(err.partial, Request | Response)
        return
    assert isinstance(message, Request | Response)
    again = parse_message(message.serialize())  # what we accept we can write and read back
    assert type(again) is type(message)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_parse_or_fail_cleanly(data: bytes) -> None:
    check_parse(data)


@FUZZ
@given(mutated())
# A bare CR in a reason phrase was accepted, and the parsed response could not be written back.
@example(
    b"SIP/2.0 100 \rSIP/2.0 100 \r\nVia: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\r\n"
    b"Call-ID: noreason.asndj203insdf99223ndf\r\nCSeq: 35 INVITE\r\nFrom: <sip:user@example.com>;tag=39ansfi3\r\n"
    b"To: <sip:user@example.edu>;tag=902jndnke3\r\nContent-Length: 0\r\n\r\n"
)
def test_mutated_torture_messages_parse_or_fail_cleanly(data: bytes) -> None:
    check_parse(data)


@FUZZ
@given(st.lists(mutated(), min_size=1, max_size=4))
def test_endpoint_never_raises(datagrams: list[bytes]) -> None:
    ep = SipEndpoint("192.0.2.1", 5060)
    now = 0.0
    for data in datagrams:
        ep.receive_datagram(data, PEER, now)
        now += 0.3
        ep.handle_timer(now)
        for wire, _, _ in ep.datagrams_to_send():
            assert wire.startswith(b"SIP/2.0 ") or wire.split(b" ", 1)[0] in (b"BYE", b"ACK")
        while ep.next_event() is not None:
            pass


@FUZZ
@given(st.lists(mutated(), min_size=1, max_size=3), st.integers(1, 64))
def test_stream_framer_never_raises_anything_but_parse_errors(messages: list[bytes], chunk: int) -> None:
    framer = StreamFramer()
    stream = b"".join(messages)
    try:
        for i in range(0, len(stream), chunk):
            for frame in framer.feed(stream[i : i + chunk]):
                check_parse(frame)
    except SipParseError:
        pass
