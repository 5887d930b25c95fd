"""Inbound admission: per-source rate limit, trunk IP allow-lists and per-user digest auth.

Theory of operation: the endpoint asks two questions of every new out-of-dialog request, before
it spends anything on it. ``RateLimiter.allow(source, now)`` is a token bucket per source IP
(``rate_per_s`` tokens a second, ``burst`` deep); a refusal becomes a stateless 503 with
Retry-After built from the raw bytes (no parse, no transaction: ~16 µs a datagram). In-dialog
requests, ACK and CANCEL are never limited: a flood must not stop a live call from hanging up;
nor are configured trunks (a carrier's bursts are legitimate traffic we asked for).
Then ``AccessPolicy.admit(request, source, now)`` decides for INVITEs:
- no trunks and no users configured: everyone is admitted (the open default);
- the source address is in a trunk's networks: admitted as that trunk, no challenge (carriers
  do not answer challenges; they are identified by address);
- users are configured: a digest challenge (401 with WWW-Authenticate, or 407 with
  Proxy-Authenticate), one per algorithm (SHA-256 first, then MD5, as RFC 8760 §2.4 says);
  good credentials admit the user; a stale nonce gets a new challenge with ``stale=true``;
  an unknown user, a wrong password or a realm or URI that do not match get 403;
- otherwise 403.
Memory is bounded: the limiter forgets sources whose bucket is full again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mssip.digest import Challenge, NonceIssuer, parse_credentials, verify
from mssip.message import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimiter:
    """A token bucket per key (the source IP); ``now`` in seconds."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 10_000) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.rate_per_s)

    def allow(self, key: str, now: float) -> bool:
        tokens = self._tokens(key, now)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._prune(now)
        return allowed

    def retry_after_s(self, key: str, now: float) -> int:
        """Whole seconds until one request would pass again (at least 1)."""
        missing = 1.0 - self._tokens(key, now)
        return max(1, int(missing / self.rate_per_s + 0.999))

    def _prune(self, now: float) -> None:
        full = [k for k in self._buckets if self._tokens(k, now) >= self.burst]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) > self.max_keys:  # everyone is flooding: drop the oldest
            del self._buckets[next(iter(self._buckets))]

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True, slots=True)
class Trunk:
    name: str
    networks: tuple[Network, ...]

    @classmethod
    def from_strings(cls, name: str, addresses: Sequence[str]) -> Trunk:
        """``addresses`` are IPs or CIDR networks; raises ValueError naming a bad one."""
        networks = []
        for text in addresses:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ValueError(f"trunk {name!r}: {text!r} is not an IP address or network") from None
        return cls(name, tuple(networks))

    def contains(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


@dataclass(frozen=True, slots=True)
class Admission:
    """The policy's verdict: ``status`` 0 admits (``identity`` says who); else the refusal."""

    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    identity: str = ""

    @property
    def admitted(self) -> bool:
        return self.status == 0


@dataclass
class AccessPolicy:
    trunks: Sequence[Trunk] = ()
    users: Mapping[str, str] = field(default_factory=dict)  # username -> password
    realm: str = "mediaserver"
    secret: bytes = b""
    nonce_lifetime_s: float = 300.0
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    proxy_auth: bool = False  # challenge with 407/Proxy-Authenticate instead of 401/WWW-Authenticate

    def __post_init__(self) -> None:
        if self.users and not self.secret:
            raise ValueError("AccessPolicy with users needs a secret for its nonces")
        self._nonces = NonceIssuer(self.secret, self.nonce_lifetime_s)

    @property
    def open(self) -> bool:
        return not self.trunks and not self.users

    def trusts(self, source: str) -> bool:
        """True when ``source`` is in a trunk's networks (trunks are not rate limited)."""
        return any(trunk.contains(source) for trunk in self.trunks)

    def admit(self, request: Request, source: str, now: float) -> Admission:
        if self.open:
            return Admission()
        for trunk in self.trunks:
            if trunk.contains(source):
                return Admission(identity=f"trunk:{trunk.name}")
        if not self.users:
            return Admission(403, "Forbidden (address not allowed)")
        header = "Proxy-Authorization" if self.proxy_auth else "Authorization"
        mine = [v for v in request.headers.get_all(header) if _realm_of(v) == self.realm]
        if not mine:
            return self._challenge(now, stale=False)
        try:
            credentials = parse_credentials(mine[0])
        except ValueError as err:
            return Admission(400, f"Bad {header}: {err}"[:100])
        verdict = self._nonces.check(credentials.nonce, now)
        if verdict == "bad":
            return self._challenge(now, stale=False)
        password = self.users.get(credentials.username)
        if password is None or credentials.uri != request.uri:
            return Admission(403, "Forbidden")
        try:
            good = verify(credentials, method=request.method, password=password)
        except ValueError:
            good = False
        if not good:
            return Admission(403, "Forbidden")
        if verdict == "stale":  # right password, old nonce: a fresh one, no new prompt
            return self._challenge(now, stale=True)
        return Admission(identity=f"user:{credentials.username}")

    def _challenge(self, now: float, *, stale: bool) -> Admission:
        nonce = self._nonces.issue(now)
        name = "Proxy-Authenticate" if self.proxy_auth else "WWW-Authenticate"
        headers = [
            (name, Challenge(self.realm, nonce, algorithm, ("auth",), stale=stale).header_value())
            for algorithm in self.algorithms
        ]
        if self.proxy_auth:
            return Admission(407, "Proxy Authentication Required", headers)
        return Admission(401, "Unauthorized", headers)


def _realm_of(value: str) -> str | None:
    try:
        return parse_credentials(value).realm
    except ValueError:
        return None
