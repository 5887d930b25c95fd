"""Property tests: serialize/parse round trips, framing at any split, and no crash on any bytes."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from mssip.errors import SipParseError
from mssip.headers import Headers
from mssip.message import Request
from mssip.parser import StreamFramer, parse_message
from mssip.sdp import parse_sdp
from tests.unit.sip.sipkit import load_sdp

TOKEN = st.text(string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1, max_size=12)
HOST = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
PORT = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
USER = st.text(string.ascii_letters + string.digits + "-_.!~*'()&=+$", min_size=1, max_size=12)
# Free text for unknown header values: printable UTF-8, no CR/LF, no edge whitespace (folded away).
VALUE = st.text(
    st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"], blacklist_characters="\r\n"), max_size=40
).map(str.strip)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(st.sampled_from(["INVITE", "OPTIONS", "BYE", "INFO"]) | TOKEN.map(str.upper))
    host, port = draw(HOST), draw(PORT)
    uri = f"sip:{draw(USER)}@{host}{port}" + draw(st.sampled_from(["", ";transport=tcp", ";lr", ";user=phone"]))
    vias = [
        f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS']))} {draw(HOST)}{draw(PORT)}"
        f";branch=z9hG4bK{draw(TOKEN)}" + draw(st.sampled_from(["", ";rport", ";received=192.0.2.9;rport=5"]))
        for _ in range(draw(st.integers(1, 3)))
    ]
    display = draw(st.one_of(st.just(""), st.text(string.ascii_letters + " ", max_size=10).map(lambda s: f'"{s}" ')))
    items = [("Via", via) for via in vias]
    items += [
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
        ("From", f"{display}<sip:{draw(USER)}@{draw(HOST)}>;tag={draw(TOKEN)}"),
        ("To", f"<sip:{draw(USER)}@{host}>"),
        ("Call-ID", draw(TOKEN) + "@" + draw(HOST)),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
    ]
    extra = draw(st.lists(st.tuples(TOKEN.map(lambda t: "X-" + t), VALUE), max_size=5))
    order = draw(st.permutations(items + extra))
    body = draw(st.binary(max_size=300))
    headers = Headers(order)
    headers.set("Content-Length", str(len(body)))
    return Request(method, uri, headers, body)


@settings(max_examples=200, deadline=None)
@given(requests())
def test_serialize_then_parse_is_identity(request: Request) -> None:
    assert parse_message(request.serialize()) == request


@settings(max_examples=100, deadline=None)
@given(st.lists(requests(), min_size=1, max_size=4), st.lists(st.integers(0, 4000), max_size=6))
def test_framer_splits_a_stream_at_any_boundary(messages: list[Request], cuts: list[int]) -> None:
    stream = b"".join(b"\r\n" + m.serialize() for m in messages)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    framer, out = StreamFramer(), []
    for start, end in zip(points, points[1:], strict=False):
        out += framer.feed(stream[start:end])
    assert [parse_message(frame) for frame in out] == messages


BASE = Request(
    "INVITE",
    "sip:a@b",
    Headers(
        [
            ("Via", "SIP/2.0/UDP h;branch=z9hG4bKx"),
            ("From", "<sip:x@y>;tag=1"),
            ("To", "<sip:a@b>"),
            ("Call-ID", "c"),
            ("CSeq", "1 INVITE"),
        ]
    ),
    b"v=0\r\n",
).serialize()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.tuples(st.integers(0, len(BASE) - 1), st.binary(min_size=1, max_size=8))))
def test_parser_raises_only_sip_parse_error(case: bytes | tuple[int, bytes]) -> None:
    data = case if isinstance(case, bytes) else BASE[: case[0]] + case[1] + BASE[case[0] + len(case[1]) :]
    try:
        parse_message(data)
    except SipParseError as err:
        assert err.reason and "\r" not in err.reason and "\n" not in err.reason


@settings(max_examples=200, deadline=None)
@given(st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=8)))
def test_sdp_parser_raises_only_sdp_errors(case: tuple[int, bytes]) -> None:
    base = load_sdp("linphone.sdp")
    at, junk = case
    try:
        parsed = parse_sdp(base[:at] + junk + base[at + len(junk) :])
    except SipParseError:
        raise
    except Exception as err:  # noqa: BLE001
        from mssip.errors import SdpParseError

        assert isinstance(err, SdpParseError), repr(err)
    else:
        assert parse_sdp(parsed.serialize()) == parsed
