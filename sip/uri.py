"""SIP URIs and name-addr values.

Theory of operation: ``parse_uri`` reads ``sip:user:pw@host:port;params?headers`` (also ``sips:``
and, loosely, ``tel:+15551234;params``) into a ``SipUri``; ``str()`` writes it back. Hosts are
stored bare: an IPv6 reference ``[2001:db8::1]`` is kept as ``2001:db8::1`` so that it matches the
host of a socket address, and ``format_host`` adds the brackets back. ``parse_name_addr`` reads
From/To/Contact/Route values: ``"Alice" <sip:alice@host;transport=udp>;tag=abc``. Per RFC 3261
§20.10, when the URI is not in angle brackets, every ``;param`` belongs to the header, not the URI.
Parameter names are lower-cased; values are kept as written. Errors raise ``SipParseError``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from mssip.errors import SipParseError
from mssip.grammar import Params, format_params, is_token, parse_params, quote, unquote

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_HOSTNAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_\-.]*)$")


def format_host(host: str) -> str:
    """Bracket an IPv6 address for use in a URI or Via; other hosts pass through."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def parse_hostport(text: str) -> tuple[str, int | None]:
    """Read ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; raise ValueError when malformed."""
    text = text.strip()
    port_text = ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("unterminated IPv6 reference")
        host = text[1:end]
        ipaddress.IPv6Address(host.split("%")[0])  # raises ValueError when not IPv6
        rest = text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError("junk after IPv6 reference")
            port_text = rest[1:]
    else:
        host, colon, port_text = text.partition(":")
        if colon and not port_text:
            raise ValueError("empty port")
        if not _HOSTNAME.match(host):
            raise ValueError(f"bad host {host!r}")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port {port_text!r}")
    return host, int(port_text)


@dataclass(slots=True)
class SipUri:
    """A sip:/sips: URI (or a tel: URI, whose number is kept in ``user`` and whose ``host`` is empty)."""

    scheme: str = "sip"
    user: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = field(default_factory=dict)
    password: str | None = None
    headers: str | None = None

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user or ''}{format_params(self.params)}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(format_host(self.host))
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(format_params(self.params))
        if self.headers is not None:
            out.append("?" + self.headers)
        return "".join(out)


def parse_uri(text: str) -> SipUri:
    text = text.strip()
    match = _SCHEME.match(text)
    if not match:
        raise SipParseError("bad URI: no scheme")
    scheme = match.group(0)[:-1].lower()
    rest = text[match.end() :]
    try:
        if scheme == "tel":
            number, _, params = rest.partition(";")
            if not number:
                raise ValueError("empty number")
            return SipUri(scheme="tel", user=number, params=parse_params(params))
        if scheme not in ("sip", "sips"):
            raise ValueError(f"unsupported scheme {scheme}")
        user = password = None
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            user, colon, pw = userinfo.partition(":")
            password = pw if colon else None
        rest, qmark, headers = rest.partition("?")
        hostport, _, params = rest.partition(";")
        host, port = parse_hostport(hostport)
        return SipUri(scheme, user, host, port, parse_params(params), password, headers if qmark else None)
    except ValueError as exc:
        raise SipParseError(f"bad URI: {exc}") from None


@dataclass(slots=True)
class NameAddress:
    """A From/To/Contact/Route value; ``uri`` is kept as text so non-SIP schemes survive."""

    uri: str
    display_name: str | None = None
    params: Params = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def sip_uri(self) -> SipUri:
        return parse_uri(self.uri)

    def __str__(self) -> str:
        name = f"{quote(self.display_name)} " if self.display_name else ""
        return f"{name}<{self.uri}>{format_params(self.params)}"


def parse_name_addr(text: str) -> NameAddress:
    text = text.strip()
    try:
        if text.startswith('"') or "<" in text:
            return _parse_bracketed(text)
        # addr-spec form: the URI ends at the first ';' (RFC 3261 §20.10).
        uri, _, params = text.partition(";")
        if not _SCHEME.match(uri.strip()):
            raise ValueError("no URI scheme")
        if any(ch in uri.strip() for ch in ' \t,?"'):
            # §20: an addr-spec with ',', '?' or ';' must be in <...> (RFC 4475 §3.1.2.13).
            raise ValueError("URI with reserved characters must be enclosed in <>")
        return NameAddress(uri.strip(), None, parse_params(params))
    except ValueError as exc:
        raise SipParseError(f"bad name-addr: {exc}") from None


def _parse_bracketed(text: str) -> NameAddress:
    display: str | None = None
    if text.startswith('"'):
        # Find the closing quote, honouring backslash escapes.
        i, escaped = 1, False
        while i < len(text):
            ch = text[i]
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                break
            i += 1
        else:
            raise ValueError("unterminated display name")
        display = unquote(text[: i + 1])
        text = text[i + 1 :].lstrip()
        if not text.startswith("<"):
            raise ValueError("expected '<' after display name")
    lt = text.find("<")
    gt = text.find(">", lt)
    if lt < 0 or gt < 0:
        raise ValueError("unbalanced angle brackets")
    if display is None:
        display = text[:lt].strip() or None
        # An unquoted display name is tokens and LWS only (RFC 4475 §3.1.2.15: "Bell, Alexander").
        if display is not None and not all(is_token(word) for word in display.split()):
            raise ValueError("display name with non-token characters must be quoted")
    uri = text[lt + 1 : gt]
    if uri != uri.strip():
        raise ValueError("whitespace inside <> around the URI")  # RFC 4475 §3.1.2.14
    if not _SCHEME.match(uri):
        raise ValueError("no URI scheme")
    if any(ch in uri for ch in ' \t<"'):
        raise ValueError("bad character in URI")
    return NameAddress(uri, display, parse_params(text[gt + 1 :]))
