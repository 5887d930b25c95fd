"""Parser, serializer, header model, URIs and the TCP framer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mssip.errors import SipParseError
from mssip.headers import Headers, parse_cseq, parse_via
from mssip.message import Request, Response, make_response
from mssip.parser import StreamFramer, parse_message
from mssip.uri import parse_name_addr, parse_uri
from tests.unit.sip.sipkit import Phone, load_sdp, load_sip


def test_parse_baresip_invite() -> None:
    message = parse_message(load_sip("invite_baresip.sip"))
    assert isinstance(message, Request)
    assert (message.method, message.uri, message.version) == ("INVITE", "sip:agent@192.0.2.1:5060", "SIP/2.0")
    assert message.call_id == "8f3a2b1c-4d5e-6f70-8192-a3b4c5d6e7f8"
    assert (message.cseq.number, message.cseq.method) == (31862, "INVITE")
    assert message.from_addr.display_name == "Alice"
    assert message.from_addr.tag == "9fxced76sl"
    assert message.to_addr.tag is None
    via = message.top_via
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "192.168.1.50", 40123, "z9hG4bK5d1b0f9e3c0f4f3e")
    assert "rport" in via.params and via.rport is None
    assert message.headers.get_all("Allow")[:3] == ["INVITE", "ACK", "BYE"]
    assert message.content_type == "application/sdp"
    assert message.body == load_sdp("baresip.sdp")


def test_parse_rfc4475_style_torture_message() -> None:
    message = parse_message(load_sip("nasty_folded.sip"))
    assert isinstance(message, Request)
    assert message.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    # Folded, oddly spaced, lower-case and compact headers all land under their full names.
    assert message.to_addr.uri == "sip:vivekg@chair-dnrc.example.com"
    assert message.to_addr.tag == "1918181833n"
    assert message.from_addr.display_name == 'J Rosenberg \\"'
    assert message.from_addr.tag == "98asjd8"
    assert message.headers.get("max-forwards") == "0068"
    assert message.cseq.number == 9 and message.cseq.method == "INVITE"
    vias = message.vias
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert message.headers.get("Subject") == ""
    assert message.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert message.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    contact = parse_name_addr(message.headers.get("Contact") or "")
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert message.headers.get("Route") == "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"
    assert message.body.startswith(b"v=0\r\n")


def test_parse_ipv6_message() -> None:
    message = parse_message(load_sip("nasty_ipv6.sip"))
    assert isinstance(message, Request)
    uri = parse_uri(message.uri)
    assert (uri.host, uri.port, uri.transport) == ("2001:db8::10", 5070, "udp")
    first, second = message.vias
    assert (first.host, first.port, first.sent_by) == ("2001:db8::9:1", 5061, "[2001:db8::9:1]:5061")
    assert second.received == "2001:db8::9:255" and second.port is None
    assert message.to_addr.sip_uri().host == "2001:db8::10"
    assert str(parse_uri("sip:user@[2001:db8::1]:5060")) == "sip:user@[2001:db8::1]:5060"
    assert message.body == b""


def test_parse_response_and_bare_lf_and_leading_crlf() -> None:
    data = (
        b"\r\n\r\nSIP/2.0 180 Ringing\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\nFrom: <sip:a@h>;tag=1\n"
        b"To: <sip:b@h>;tag=2\nCall-ID: c\nCSeq: 2 BYE\nl: 0\n\n"
    )
    message = parse_message(data)
    assert isinstance(message, Response)
    assert (message.status, message.reason, message.is_provisional) == (180, "Ringing", True)
    assert message.headers.get("Content-Length") == "0"


def test_body_longer_than_content_length_is_cut_and_missing_length_takes_rest() -> None:
    data = Phone().request("OPTIONS", cseq=1).replace(b"Content-Length: 0", b"Content-Length: 3") + b"abcdef"
    assert parse_message(data).body == b"abc"
    no_length = data.replace(b"Content-Length: 3\r\n", b"")
    assert parse_message(no_length).body == b"abcdef"


def _options() -> bytes:
    return Phone().request("OPTIONS", cseq=7)


def sub(old: bytes, new: bytes, tail: bytes = b"") -> Callable[[bytes], bytes]:
    return lambda data: data.replace(old, new) + tail


VIA = b"Via: SIP/2.0/UDP 10.0.0.23:5060;branch=z9hG4bK1928301774.1;rport\r\n"
MALFORMED = [
    (sub(b"Call-ID: a84b4c76e66710@pc33.example.com\r\n", b""), "missing Call-ID header"),
    (sub(VIA, b""), "missing Via header"),
    (sub(b"CSeq: 7 OPTIONS", b"CSeq: seven OPTIONS"), "bad CSeq"),
    (sub(b"CSeq: 7 OPTIONS", b"CSeq: 4294967296 OPTIONS"), "bad CSeq"),
    (sub(b"CSeq: 7 OPTIONS", b"CSeq: 7 INVITE"), "CSeq method INVITE does not match request method OPTIONS"),
    (sub(b"Content-Length: 0", b"Content-Length: 500", b"twelve bytes"), "Content-Length 500 exceeds body 12 bytes"),
    (sub(b"Content-Length: 0", b"Content-Length: -1"), "bad Content-Length"),
    (sub(b"Via: SIP/2.0/UDP 10.0.0.23:5060", b"Via: SIP/2.0/UDP 10.0.0.23:99999"), "bad Via header"),
    (sub(b"Via: SIP/2.0/UDP", b"Via: garbage"), "bad Via header"),
    (sub(b"From: ", b"From: <sip:unterminated"), "bad From header"),
    (sub(b"Max-Forwards: 70", b"Max-Forwards: many"), "bad Max-Forwards"),
    (sub(b"Max-Forwards: 70", b"No colon here"), "malformed header line"),
    (sub(b"Max-Forwards: 70", b"Max-Forwards: 7\x010"), "control character in header"),
    (sub(b"To: ", b"To: x\r\nTo: "), "more than one To header"),
    (sub(b"sip:agent@192.0.2.1 SIP/2.0", b"agent SIP/2.0"), "bad Request-URI"),
]


@pytest.mark.parametrize(("mutate", "reason"), MALFORMED, ids=[reason for _, reason in MALFORMED])
def test_malformed_messages_name_their_fault(mutate: Callable[[bytes], bytes], reason: str) -> None:
    data = mutate(_options())
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.reason == reason
    assert info.value.status == 400
    assert isinstance(info.value.partial, Request)  # headers were read: a 400 can be addressed


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty message"),
        (b"\r\n\r\n", "empty message"),
        (b"HELLO\r\n\r\n", "bad request line"),
        (b"SIP/2.0 99 Odd\r\n\r\n", "bad status line"),
        (b"INVITE sip:a@b SIP/2.0\r\nVia: \xff\xfe\r\n\r\n", "header section is not valid UTF-8"),
    ],
)
def test_unaddressable_messages(data: bytes, reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.reason == reason
    assert info.value.partial is None


def test_unsupported_version_is_505() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(_options().replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1))
    assert info.value.status == 505


def test_serialize_fixes_content_length_and_round_trips() -> None:
    message = parse_message(load_sip("invite_baresip.sip"))
    assert isinstance(message, Request)
    message.body = b"v=0\r\n"
    wire = message.serialize()
    assert b"\r\nContent-Length: 5\r\n\r\nv=0\r\n" in wire
    again = parse_message(wire)
    assert again.headers.get("Content-Length") == "5"
    message.headers.set("Content-Length", "5")  # the model keeps what was received until told
    assert again == message


def test_make_response_copies_headers_and_adds_tag() -> None:
    request = parse_message(load_sip("invite_baresip.sip"))
    assert isinstance(request, Request)
    request.headers.add("Timestamp", "54")
    response = make_response(request, 100, "Trying", to_tag="abc")
    assert response.to_addr.tag is None and response.headers.get("Timestamp") == "54"
    response = make_response(request, 486, "Busy Here", to_tag="abc")
    assert response.to_addr.tag == "abc" and response.headers.get("Timestamp") is None
    assert [n for n, _ in response.headers] == ["Via", "From", "To", "Call-ID", "CSeq"]
    tagged = make_response(
        parse_message(
            response.serialize().replace(b"SIP/2.0 486 Busy Here", b"BYE sip:x@y SIP/2.0").replace(b"INVITE", b"BYE")
        ),
        200,
        "OK",
        to_tag="zzz",
    )  # type: ignore[arg-type]
    assert tagged.to_addr.tag == "abc"  # an existing tag is kept


def test_headers_multimap() -> None:
    headers = Headers([("v", "SIP/2.0/UDP a"), ("call-id", "x"), ("X-Custom", "1")])
    assert [n for n, _ in headers] == ["Via", "Call-ID", "X-Custom"]
    assert headers.get("VIA") == headers.get("v") == "SIP/2.0/UDP a"
    headers.add("Via", "SIP/2.0/UDP b")
    headers.prepend("Via", "SIP/2.0/UDP top")
    assert headers.get_all("via") == ["SIP/2.0/UDP top", "SIP/2.0/UDP a", "SIP/2.0/UDP b"]
    headers.set("x-custom", "2")
    assert headers.get("X-CUSTOM") == "2" and len(headers) == 5
    headers.set("Via", "only")
    assert headers.get_all("Via") == ["only"] and [n for n, _ in headers][0] == "Via"
    assert headers.remove("i") == 1 and "Call-ID" not in headers
    with pytest.raises(ValueError):
        headers.add("X-Evil", "a\r\nVia: injected")


@pytest.mark.parametrize(
    ("text", "display", "uri", "params"),
    [
        ('"Alice" <sip:alice@host;transport=udp>;tag=abc', "Alice", "sip:alice@host;transport=udp", {"tag": "abc"}),
        ("<sip:bob@h>", None, "sip:bob@h", {}),
        ("Bob Smith <sip:bob@h:5070>;tag=1", "Bob Smith", "sip:bob@h:5070", {"tag": "1"}),
        ("sip:carol@h;tag=9", None, "sip:carol@h", {"tag": "9"}),  # addr-spec: ;tag is a header param
        ('"a;b,c" <tel:+15551234;phone-context=example.com>', "a;b,c", "tel:+15551234;phone-context=example.com", {}),
        ('"\\"q\\"" <sip:q@h>', '"q"', "sip:q@h", {}),
    ],
)
def test_name_addr(text: str, display: str | None, uri: str, params: dict[str, str | None]) -> None:
    parsed = parse_name_addr(text)
    assert (parsed.display_name, parsed.uri, parsed.params) == (display, uri, params)
    assert parse_name_addr(str(parsed)) == parsed


def test_uris() -> None:
    uri = parse_uri("sips:alice:secret@Example.COM:5061;transport=TLS;lr?subject=hi")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == ("sips", "alice", "secret", "Example.COM", 5061)
    assert uri.params == {"transport": "TLS", "lr": None} and uri.transport == "tls"
    assert uri.headers == "subject=hi"
    assert str(uri) == "sips:alice:secret@Example.COM:5061;transport=TLS;lr?subject=hi"
    tel = parse_uri("tel:+15551234;phone-context=x")
    assert (tel.scheme, tel.user, str(tel)) == ("tel", "+15551234", "tel:+15551234;phone-context=x")
    assert parse_uri("sip:[::1]").host == "::1"
    for bad in ["alice@host", "sip:", "sip:a@[::1", "sip:a@h:0", "sip:a@h:", "sip:a@ho st", "http://x"]:
        with pytest.raises(SipParseError):
            parse_uri(bad)


def test_via_and_cseq_values() -> None:
    via = parse_via("SIP / 2.0 / tcp  [::1]:5080 ; branch = z9hG4bKa ; received=::1;rport=9")
    assert (via.protocol, via.transport, via.host, via.port) == ("SIP/2.0", "TCP", "::1", 5080)
    assert (via.branch, via.received, via.rport) == ("z9hG4bKa", "::1", 9)
    assert str(via) == "SIP/2.0/TCP [::1]:5080;branch=z9hG4bKa;received=::1;rport=9"
    cseq = parse_cseq(" 101   INVITE ")
    assert (cseq.number, cseq.method, str(cseq)) == (101, "INVITE", "101 INVITE")


def test_stream_framer() -> None:
    one = Phone().request("OPTIONS", cseq=1)
    two = Phone().invite()
    stream = b"\r\n\r\n" + one + b"\r\n" + two + one
    framer = StreamFramer()
    assert framer.feed(stream) == [one, two, one]
    assert framer.buffered == 0
    # Byte by byte: each message comes out exactly once, when its last body byte arrives.
    out = []
    for i in range(len(stream)):
        out += framer.feed(stream[i : i + 1])
    assert out == [one, two, one]
    assert [parse_message(m).headers.get("CSeq") for m in out] == ["1 OPTIONS", "1 INVITE", "1 OPTIONS"]


def test_stream_framer_errors() -> None:
    with pytest.raises(SipParseError, match="bad Content-Length"):
        StreamFramer().feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n")
    with pytest.raises(SipParseError, match="header section exceeds"):
        StreamFramer(max_header_bytes=100).feed(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 50)
    with pytest.raises(SipParseError, match="exceeds limit"):
        StreamFramer(max_body_bytes=10).feed(b"OPTIONS sip:a@b SIP/2.0\r\nl: 11\r\n\r\n")
