"""A grammar-ish generator of SIP messages: mostly well formed, with any part swapped for junk."""

from __future__ import annotations

from hypothesis import strategies as st

METHODS = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO", "NOTIFY", "REGISTER", "REFER", "FOO"]
TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!%*_+`'~-", min_size=1, max_size=12)
JUNK = st.text(max_size=30).filter(lambda s: "\r" not in s and "\n" not in s)
HOST = st.one_of(
    st.sampled_from(["example.com", "192.0.2.1", "[2001:db8::1]", "a.b", "h"]),
    TOKEN,
    JUNK,
)
PORT = st.one_of(st.none(), st.integers(0, 70000).map(str), st.sampled_from(["", "²", "-1", "5060x"]))


@st.composite
def hostport(draw: st.DrawFn) -> str:
    port = draw(PORT)
    return draw(HOST) + ("" if port is None else ":" + port)


@st.composite
def params(draw: st.DrawFn) -> str:
    out = ""
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.one_of(st.sampled_from(["tag", "branch", "lr", "expires", "rport", "transport"]), TOKEN))
        value = draw(st.one_of(st.none(), TOKEN, st.sampled_from(['"q;,"', "z9hG4bK", "²", ""]), JUNK))
        out += f";{name}" + ("" if value is None else f"={value}")
    return out


@st.composite
def uri(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["sip", "sips", "tel", "http", "SIP"]))
    user = draw(st.one_of(st.none(), TOKEN, JUNK))
    return f"{scheme}:" + ("" if user is None else f"{user}@") + draw(hostport()) + draw(params())


@st.composite
def name_addr(draw: st.DrawFn) -> str:
    form = draw(st.integers(0, 3))
    if form == 0:
        return draw(uri())
    if form == 1:
        return f"<{draw(uri())}>{draw(params())}"
    if form == 2:
        return f'"{draw(JUNK)}" <{draw(uri())}>{draw(params())}'
    return draw(JUNK)


@st.composite
def header(draw: st.DrawFn, method: str) -> tuple[str, str]:
    name = draw(
        st.sampled_from(
            [
                "Via",
                "v",
                "From",
                "f",
                "To",
                "t",
                "Call-ID",
                "i",
                "CSeq",
                "Contact",
                "m",
                "Max-Forwards",
                "Content-Length",
                "l",
                "Content-Type",
                "c",
                "Expires",
                "Min-Expires",
                "Session-Expires",
                "Min-SE",
                "Require",
                "Accept",
                "Content-Encoding",
                "Authorization",
                "Record-Route",
                "Event",
                "X-Custom",
            ]
        )
    )
    canonical = {"v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "l": "Content-Length"}
    kind = canonical.get(name, name)
    if kind == "Via":
        value = f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS', 'x']))} {draw(hostport())}{draw(params())}"
    elif kind in ("From", "To", "Contact", "Record-Route"):
        value = draw(name_addr())
    elif kind == "CSeq":
        value = f"{draw(st.one_of(st.integers(0, 2**32).map(str), JUNK))} {draw(st.sampled_from([method, *METHODS]))}"
    elif kind in ("Max-Forwards", "Content-Length", "Expires", "Min-Expires", "Session-Expires", "Min-SE"):
        value = draw(st.one_of(st.integers(-5, 2**33).map(str), st.sampled_from(["²", "", "1;refresher=uas"]), JUNK))
    elif kind == "Content-Type":
        value = draw(st.sampled_from(["application/sdp", "application/dtmf-relay", "text/plain", "", "x/y;a=b"]))
    elif kind == "Authorization":
        value = draw(
            st.sampled_from(
                [
                    'Digest username="alice", realm="mediaserver", nonce="n", uri="sip:a@b", response="r"',
                    "Digest",
                    'Digest realm="mediaserver", nonce="',
                    "Basic abc",
                ]
            )
        )
    else:
        value = draw(st.one_of(TOKEN, JUNK))
    return name, value


@st.composite
def sip_message(draw: st.DrawFn) -> bytes:
    """A request or response: start line, 0-12 headers (the mandatory ones usually there), body."""
    method = draw(st.sampled_from(METHODS))
    if draw(st.booleans()):
        start = f"{method} {draw(uri())} {draw(st.sampled_from(['SIP/2.0', 'SIP/3.0', 'sip/2.0', 'HTTP/1.1']))}"
    else:
        start = f"SIP/2.0 {draw(st.integers(0, 999))} {draw(JUNK)}"
    headers = []
    if draw(st.integers(0, 3)):
        headers += [
            ("Via", f"SIP/2.0/UDP {draw(hostport())};branch=z9hG4bK{draw(TOKEN)}"),
            ("From", f"<sip:a@example.com>;tag={draw(TOKEN)}"),
            ("To", draw(name_addr())),
            ("Call-ID", draw(TOKEN)),
            ("CSeq", f"{draw(st.integers(0, 99))} {method}"),
        ]
    headers += draw(st.lists(header(method), max_size=8))
    headers = draw(st.permutations(headers))
    body = draw(st.one_of(st.just(b""), st.binary(max_size=64), st.just(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n")))
    eol = draw(st.sampled_from(["\r\n", "\n"]))
    lines = [start] + [f"{name}{draw(st.sampled_from([':', ' : ', ':  ']))}{value}" for name, value in headers]
    if draw(st.booleans()):
        lines.append(f"Content-Length: {len(body)}")
    return (eol.join(lines) + eol + eol).encode("utf-8", "surrogatepass") + body
