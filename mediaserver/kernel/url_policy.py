"""Which hosts SWML may make the server talk to: `[swml] allowed_hosts` (issue 17, item 6).

Theory of operation: a call's SWML (a route URL, `execute`/`transfer` URLs, `request` URLs, and
documents fetched from them) makes this server send HTTP requests from inside its network. An
empty allow-list (the default) keeps the open behaviour: every URL is fetched. A configured
list restricts every such request, redirects included, to the hosts it names:

- `"agent.example.com"`: that host name (any port);
- `"*.example.com"`: any name below example.com (not example.com itself);
- `"203.0.113.7"`, `"::1"`: that address; `"10.0.0.0/8"`, `"fd00::/8"`: any address in it.

Private, loopback, link-local and other non-public addresses (what `ipaddress` calls not
`is_global`: 127.0.0.0/8, 10/8, 172.16/12, 192.168/16, 169.254/16 (cloud metadata), 100.64/10,
::1, fc00::/7, fe80::/10…) are refused unless allowed explicitly: an address literal must be
covered by an address or network entry, and a host name is resolved first and each of its
addresses must be public, or covered by such an entry, or the name must be listed exactly (an
operator who lists "agent.internal" means its private address; a wildcard does not reach
private addresses). Only http and https URLs pass a configured list.

The AI's HTTP session (`guarded_session`: SWAIG and DataMap webhooks, post-prompt and hook
URLs) checks every request and redirect hop against the same list.

`UrlPolicy.check(url)` raises `UrlRefused` with a reason that names the host and the setting;
the callers (kernel/fetch.py, kernel/verbs/http.py) turn it into the failure they already have
(a fetch's apology and hangup, a `request`'s `request_result = failed`) and log it once here.
Limits: the name is resolved here and again by the HTTP client, so a name whose DNS answer
changes between the two (DNS rebinding) is not caught; list addresses, or names you control.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp

log = logging.getLogger(__name__)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]


class UrlRefused(ValueError):
    """The URL's host is not allowed by `[swml] allowed_hosts`; the message says why.

    A ValueError, so an HTTP client's caller that already turns a bad URL into a clean failure
    (the SWAIG client's `WebhookReply(ok=False)`) does the same for a refused one."""


async def resolve_host(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host` (what aiohttp will connect to)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def entry_problem(entry: str) -> str | None:
    """Why `entry` cannot be an allowed_hosts entry, or None (the settings check each one)."""
    text = entry.strip()
    if not text:
        return "an empty host"
    if "://" in text:
        return f"{entry!r} is a URL: list its host alone (no scheme, port or path)"
    if "/" in text or _ip(text) is not None:
        try:
            ipaddress.ip_network(text.strip("[]"), strict=False)
        except ValueError:
            return f"{entry!r} is not an IP address or network"
        return None
    name = text.removeprefix("*.")
    if ":" in name or "*" in name or not all(_label_ok(part) for part in name.rstrip(".").split(".")):
        return f"{entry!r} is not a host name, *.domain, IP address or network (no scheme or port)"
    return None


def _label_ok(label: str) -> bool:
    return 0 < len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)


def _ip(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _public(address: IpAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.1 is 10.0.0.1
    return bool((mapped or address).is_global) and not address.is_multicast


@dataclass(frozen=True)
class UrlPolicy:
    """`[swml] allowed_hosts`, compiled; `UrlPolicy()` allows every URL (the default)."""

    names: frozenset[str] = frozenset()  # exact host names, lower case, no trailing dot
    suffixes: tuple[str, ...] = ()  # "*.example.com" -> ".example.com"
    networks: tuple[IpNetwork, ...] = ()
    resolve: Resolver = resolve_host

    @classmethod
    def from_entries(cls, entries: Iterable[str], resolve: Resolver = resolve_host) -> UrlPolicy:
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IpNetwork] = []
        for raw in entries:
            problem = entry_problem(raw)
            if problem is not None:
                raise ValueError(problem)
            text = raw.strip().lower().rstrip(".")
            if "/" in text or _ip(text) is not None:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            elif text.startswith("*."):
                suffixes.append(text[1:])
            else:
                names.add(text)
        return cls(frozenset(names), tuple(suffixes), tuple(networks), resolve)

    @property
    def restricts(self) -> bool:
        """False for an empty allow-list: every URL is allowed, as before the setting existed."""
        return bool(self.names or self.suffixes or self.networks)

    def _covered(self, address: IpAddress) -> bool:
        forms = [address, getattr(address, "ipv4_mapped", None)]
        return any(a in net for net in self.networks for a in forms if a is not None and a.version == net.version)

    async def check(self, url: str, *, purpose: str = "fetch") -> None:
        """Return if `url` may be requested; raise `UrlRefused` (and log it) if not."""
        if not self.restricts:
            return
        try:
            self._check_static(url)
            await self._check_addresses(url)
        except UrlRefused as refused:
            log.warning(
                "URL refused by [swml] allowed_hosts",
                extra={"url": _shown(url), "purpose": purpose, "reason": str(refused)},
            )
            raise

    def _check_static(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise UrlRefused(f"scheme {parts.scheme or '(none)'!r} is not allowed: only http and https")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise UrlRefused("the URL has no host")
        address = _ip(host)
        if address is not None:
            if not self._covered(address):
                raise UrlRefused(f"host {host} is not in [swml] allowed_hosts")
            return
        if host not in self.names and not any(host.endswith(suffix) for suffix in self.suffixes):
            raise UrlRefused(f"host {host} is not in [swml] allowed_hosts")

    async def _check_addresses(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        if _ip(host) is not None or host in self.names:
            return  # a listed address or an exactly listed name: allowed wherever it points
        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            raise UrlRefused(f"host {host}: bad port") from None
        try:
            addresses = await self.resolve(host, port)
        except OSError as exc:
            raise UrlRefused(f"host {host} cannot be resolved ({exc})") from None
        for text in addresses:
            address = _ip(text.split("%", 1)[0])
            if address is None or (not _public(address) and not self._covered(address)):
                raise UrlRefused(
                    f"host {host} resolves to the non-public address {text}: "
                    "list that address or its network in [swml] allowed_hosts to allow it"
                )


def _shown(url: str) -> str:
    """The URL without userinfo (this module sits below kernel/fetch.py's `public_url`)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=netloc).geturl()


def guarded_session(policy: UrlPolicy, *, purpose: str) -> aiohttp.ClientSession:
    """An HTTP session whose every request, redirects included, `policy` checks first.

    The AI's session (SWAIG webhooks, DataMap webhooks, post-prompt and hook URLs) is one of
    these: its URLs come from the same SWML documents the allow-list is for. A refused request
    raises `UrlRefused` out of the request call, before any connection is made."""
    if not policy.restricts:
        return aiohttp.ClientSession()

    async def check(_session: aiohttp.ClientSession, _context: SimpleNamespace, params: Any) -> None:
        # aiohttp sends request_start for the first request and again for each redirect hop.
        await policy.check(str(params.url), purpose=purpose)

    guard = aiohttp.TraceConfig()
    guard.on_request_start.append(check)
    return aiohttp.ClientSession(trace_configs=[guard])
