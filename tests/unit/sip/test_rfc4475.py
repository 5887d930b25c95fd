"""Every message reconstructed from RFC 4475 (tests/fixtures/sip/rfc4475) is accepted or refused
as that RFC says, both by the parser alone and by the endpoint on the wire."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mssip.endpoint import SipEndpoint
from mssip.errors import SipParseError
from mssip.events import MessageRejected
from mssip.message import Request, Response
from mssip.parser import parse_message
from tests.unit.sip.sipkit import PEER, drain

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sip" / "rfc4475"
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads((FIXTURES / "expected.toml").read_text())


def load(name: str) -> bytes:
    """The fixture with CRLF line ends; ``Content-Length: auto`` (or ``l: auto``) becomes the body's length."""
    raw = (FIXTURES / f"{name}.sip").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    length = str(len(body)).encode()
    head = re.sub(rb"(?im)^(content-length|l)(\s*:\s*)auto(?=\r?$)", lambda m: m[1] + m[2] + length, head)
    return head + b"\r\n\r\n" + body


def _response(data: bytes) -> Response:
    """Our response; a 400 echoes the faulty From/To as RFC 3261 §8.2.6 says, so read it loosely."""
    try:
        message = parse_message(data)
    except SipParseError as err:
        message = err.partial  # type: ignore[assignment]
    assert isinstance(message, Response)
    return message


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.sip")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 45


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parser(name: str) -> None:
    expected = EXPECTED[name]["parse"]
    if expected == "ok":
        assert isinstance(parse_message(load(name)), Request | Response)
    else:
        with pytest.raises(SipParseError) as info:
            parse_message(load(name))
        assert info.value.status == expected
        assert info.value.reason  # names the fault


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_endpoint(name: str) -> None:
    expected = EXPECTED[name]
    ep = SipEndpoint("192.0.2.1", 5060)
    ep.receive_datagram(load(name), PEER, 0.0)
    sent = [_response(data) for data, _, _ in ep.datagrams_to_send()]
    events = drain(ep)
    if expected["endpoint"] == "drop":
        assert sent == []
        return
    assert [r.status for r in sent] == [expected["endpoint"]]
    if "header" in expected:
        header, _, value = expected["header"].partition(": ")
        assert sent[0].headers.get(header) == value
    if expected["endpoint"] >= 300:
        assert any(isinstance(e, MessageRejected) and e.status == expected["endpoint"] for e in events)


def test_torture_details() -> None:
    unreason = parse_message(load("unreason"))
    assert isinstance(unreason, Response) and unreason.reason.endswith("простое")
    noreason = parse_message(load("noreason"))
    assert isinstance(noreason, Response) and noreason.reason == ""
    dbl = parse_message(load("dblreq"))
    assert isinstance(dbl, Request) and dbl.method == "REGISTER" and dbl.body == b""
    esc = parse_message(load("esc01"))
    assert isinstance(esc, Request) and esc.uri == "sip:sips%3Auser%40example.com@example.net"
    mcl = pytest.raises(SipParseError, parse_message, load("mcl01")).value
    assert "Content-Length" in mcl.reason
    vers = pytest.raises(SipParseError, parse_message, load("badvers")).value
    assert "SIP/7.0" in vers.reason
