"""SIP over TCP/TLS: `StreamFramer` cuts a byte stream, however it is chunked, into frames that
`parse_message` reads and the endpoint answers (or logs) as it does datagrams; it raises nothing
but `SipParseError` (the glue closes the connection), and whole well-framed messages come out
the same whatever the chunk size."""

from __future__ import annotations

import random

from hypothesis import example, given
from hypothesis import strategies as st

from mssip.endpoint import SipEndpoint
from mssip.errors import SipParseError
from mssip.parser import StreamFramer, parse_message
from tests.fuzz.support import DATAGRAM, SIP_SEEDS, budget, mutated_bytes
from tests.fuzz.test_sip_parser import check
from tests.fuzz.test_sip_uas import check_datagram

# Messages that parse and carry a Content-Length that covers exactly their body: a stream of
# these must frame back into the same messages.
WELL_FRAMED = []
for seed in SIP_SEEDS:
    try:
        WELL_FRAMED.append(parse_message(seed).serialize())
    except SipParseError:
        pass


def feed(stream: bytes, cuts: list[int]) -> tuple[list[bytes], SipParseError | None]:
    framer = StreamFramer()
    frames: list[bytes] = []
    start = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        try:
            frames += framer.feed(stream[start:cut])
        except SipParseError as err:
            assert err.reason
            return frames, err
        start = max(start, cut)
    assert framer.buffered <= len(stream)
    return frames, None


@example([b"INVITE sip:a@b SIP/2.0\r\nContent-Length: \xc2\xb2\r\n\r\n"], [5])
@example([b"INVITE sip:a@b SIP/2.0\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n"], [])  # int(): > 4300 digits
@budget(300, deadline_factor=4)  # up to 3 messages of 64 KiB
@given(
    st.lists(mutated_bytes(SIP_SEEDS, limit=DATAGRAM), min_size=1, max_size=3),
    st.lists(st.integers(0, 1 << 16), max_size=8),
)
def test_mutated_streams(messages: list[bytes], cuts: list[int]) -> None:
    frames, _ = feed(b"".join(messages), cuts)
    for frame in frames:
        check(frame)
        check_datagram(SipEndpoint("192.0.2.1", 5060, rng=random.Random(1)), frame, transport="tcp")


@budget(150)
@given(
    st.lists(st.sampled_from(WELL_FRAMED), min_size=1, max_size=4),
    st.lists(st.integers(0, 1 << 16), max_size=10),
    st.sampled_from([b"", b"\r\n", b"\r\n\r\n"]),
)
def test_chunking_does_not_change_frames(messages: list[bytes], cuts: list[int], keepalive: bytes) -> None:
    stream = keepalive + keepalive.join(messages)
    frames, error = feed(stream, cuts)
    assert error is None
    assert frames == messages


def test_oversized_header_section_is_a_framing_error() -> None:
    framer = StreamFramer(max_header_bytes=1024)
    try:
        framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"a" * 2048)
    except SipParseError as err:
        assert "exceeds" in err.reason
    else:
        raise AssertionError("no framing error")


def test_content_length_before_other_headers_frames_the_body() -> None:
    """Found by this fuzzer: with CRLF line ends, a Content-Length that was not the last header
    was not seen ('$' matches before LF only), so the body was framed as the next message."""
    message = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 4\r\nX: y\r\n\r\nabcd"
    assert StreamFramer().feed(message + b"\r\n" + message) == [message, message]
