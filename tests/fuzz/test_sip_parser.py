"""SIP datagrams into `parse_message`: a Request/Response, or `SipParseError` (400, 413 or 505)
with a one-line reason; whatever it accepts it writes and reads back. 64 KiB values in any header
of a real message parse (or fail) within the deadline: no quadratic regex."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from mssip.errors import SipParseError
from mssip.message import Request, Response
from mssip.parser import parse_message
from tests.fuzz.sipgen import sip_message
from tests.fuzz.support import DATAGRAM, HUGE, SIP_SEEDS, budget, mutated_bytes

OPTIONS = (
    b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
    b"To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n%s\r\n"
)


def check(data: bytes) -> Request | Response | None:
    try:
        message = parse_message(data)
    except SipParseError as err:
        assert err.status in (400, 413, 505), err.status
        assert err.reason and "\r" not in err.reason and "\n" not in err.reason
        assert err.partial is None or isinstance(err.partial, Request | Response)
        return None
    assert isinstance(message, Request | Response)
    again = parse_message(message.serialize())  # what we accept we can write and read back
    assert type(again) is type(message)
    assert again.headers.get("Call-ID") == message.headers.get("Call-ID")
    return message


# Found by this fuzzer: str.isdigit() is true of '²', which int() refuses (ValueError, no 400).
@example(OPTIONS % "Max-Forwards: \u00b2".encode())
@example(OPTIONS % "Expires: \u00b2".encode())
@example(OPTIONS % "Content-Length: \u00b2".encode())
@example(OPTIONS % "Session-Expires: \u0663".encode())
@example(OPTIONS % "Contact: <sip:a@b>;expires=\u00b2".encode())
# ... and int() refuses more than 4300 digits (ValueError again).
@example(OPTIONS % (b"Content-Length: " + b"9" * 5000))
@example(OPTIONS % (b"Max-Forwards: " + b"9" * 5000))
@budget(600)
@given(mutated_bytes(SIP_SEEDS, limit=DATAGRAM))
def test_mutated_torture_messages(data: bytes) -> None:
    check(data)


@budget(200)
@given(sip_message())
def test_generated_messages(data: bytes) -> None:
    check(data)


@budget(150)
@given(st.binary(max_size=1500))
def test_random_bytes(data: bytes) -> None:
    check(data)


def test_unicode_digits_are_a_400_not_a_crash() -> None:
    for header in ("Max-Forwards: \u00b2", "Expires: \u00b2", "Content-Length: \u00b2", "Min-SE: \u0663"):
        try:
            parse_message(OPTIONS % header.encode())
        except SipParseError as err:
            assert err.status == 400 and err.partial is not None
        else:
            raise AssertionError(f"{header} accepted")


@budget(120)
@given(
    st.sampled_from(SIP_SEEDS),
    st.integers(0, 40),
    st.sampled_from([b"a", b"9", b" ", b";", b",", b"<", b'"', b"\\", b"=", b"@", b":", b"\t"]),
)
def test_huge_header_values(seed: bytes, line: int, filler: bytes) -> None:
    """A 64 KiB run of one character appended to one header line of a real message."""
    head, sep, body = seed.partition(b"\r\n\r\n")
    rows = head.split(b"\r\n")
    index = line % len(rows)
    rows[index] += filler * HUGE
    check(b"\r\n".join(rows) + sep + body)
