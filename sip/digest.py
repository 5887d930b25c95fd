"""HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616 algorithms, RFC 8760 for SIP).

Theory of operation: both sides of a challenge live here as pure functions. A UAS issues a
challenge (``Challenge`` -> ``WWW-Authenticate``/``Proxy-Authenticate`` text) and checks the
``Credentials`` that come back; a UAC parses a challenge and builds its ``Authorization``.
Algorithms are MD5 and SHA-256 (and their ``-sess`` variants when reading), with ``qop=auth``
or no qop (RFC 2069 style, still sent by old phones). ``auth-int`` is not supported.

Nonces are stateless: ``NonceIssuer`` writes the issue time and an HMAC of it, so a restart
invalidates them and a check needs no table; ``check`` says "ok", "stale" (well formed but older
than the lifetime: the peer retries with ``stale=true`` and no new password prompt) or "bad".
Time is the caller's ``now`` in seconds. Nonce-count replay is not tracked (a replayed INVITE
with an old response within the nonce lifetime is accepted, as most PBXes do).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from mssip.grammar import quote, split_outside_quotes, unquote

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def _hash(algorithm: str, text: str) -> str:
    base = algorithm.upper().removesuffix("-SESS")
    try:
        return ALGORITHMS[base](text.encode("utf-8")).hexdigest()
    except KeyError:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}") from None


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """``Digest a="b", c=d`` -> ("digest", {"a": "b", "c": "d"}); names lower-cased."""
    scheme, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    for piece in split_outside_quotes(rest, ","):
        name, eq, raw = piece.strip().partition("=")
        if not eq:
            if piece.strip():
                raise ValueError(f"bad auth parameter {piece.strip()[:30]!r}")
            continue
        params[name.strip().lower()] = unquote(raw.strip())
    return scheme.lower(), params


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ("auth",)
    opaque: str | None = None
    stale: bool = False

    def header_value(self) -> str:
        parts = [f"realm={quote(self.realm)}", f"nonce={quote(self.nonce)}", f"algorithm={self.algorithm}"]
        if self.qop:
            parts.append(f"qop={quote(','.join(self.qop))}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)


def parse_challenge(value: str) -> Challenge:
    scheme, params = parse_auth_params(value)
    if scheme != "digest":
        raise ValueError(f"unsupported auth scheme {scheme!r}")
    if "realm" not in params or "nonce" not in params:
        raise ValueError("digest challenge without realm or nonce")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=params.get("algorithm", "MD5").upper(),
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
    )


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def header_value(self) -> str:
        parts = [
            f"username={quote(self.username)}",
            f"realm={quote(self.realm)}",
            f"nonce={quote(self.nonce)}",
            f"uri={quote(self.uri)}",
            f"response={quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.qop:
            parts += [f"qop={self.qop}", f"nc={self.nc}", f"cnonce={quote(self.cnonce or '')}"]
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        return "Digest " + ", ".join(parts)


def parse_credentials(value: str) -> Credentials:
    scheme, params = parse_auth_params(value)
    if scheme != "digest":
        raise ValueError(f"unsupported auth scheme {scheme!r}")
    missing = [n for n in ("username", "realm", "nonce", "uri", "response") if n not in params]
    if missing:
        raise ValueError(f"digest credentials without {', '.join(missing)}")
    return Credentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"].lower(),
        algorithm=params.get("algorithm", "MD5").upper(),
        qop=params.get("qop"),
        nc=params.get("nc"),
        cnonce=params.get("cnonce"),
        opaque=params.get("opaque"),
    )


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The ``response`` value of RFC 7616 §3.4.1 (qop=auth or none)."""
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = _hash(algorithm, f"{ha1}:{nonce}:{cnonce or ''}")
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop:
        return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")


def answer_challenge(
    challenge: Challenge, *, method: str, uri: str, username: str, password: str, cnonce: str, nc: int = 1
) -> Credentials:
    """The credentials a UAC sends back for ``challenge`` (qop=auth when offered)."""
    if challenge.algorithm.removesuffix("-SESS") not in ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {challenge.algorithm!r}")
    if challenge.qop and "auth" not in challenge.qop:
        raise ValueError(f"unsupported qop {','.join(challenge.qop)!r} (only auth)")
    qop = "auth" if challenge.qop else None
    nc_text = f"{nc:08x}" if qop else None
    response = compute_response(
        algorithm=challenge.algorithm,
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce if qop else None,
    )
    return Credentials(
        username,
        challenge.realm,
        challenge.nonce,
        uri,
        response,
        challenge.algorithm,
        qop,
        nc_text,
        cnonce if qop else None,
        challenge.opaque,
    )


def verify(credentials: Credentials, *, method: str, password: str) -> bool:
    expected = compute_response(
        algorithm=credentials.algorithm,
        username=credentials.username,
        realm=credentials.realm,
        password=password,
        method=method,
        uri=credentials.uri,
        nonce=credentials.nonce,
        qop=credentials.qop,
        nc=credentials.nc,
        cnonce=credentials.cnonce,
    )
    # As bytes: compare_digest raises TypeError for str with non-ASCII characters (a caller's).
    return hmac.compare_digest(expected.encode(), credentials.response.encode())


class NonceIssuer:
    """Stateless nonces: ``<issued ms hex>.<hmac>``; valid for ``lifetime_s`` after issue."""

    def __init__(self, secret: bytes, lifetime_s: float = 300.0) -> None:
        self._secret = secret
        self.lifetime_s = lifetime_s

    def _mac(self, stamp: str) -> str:
        return hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, now: float) -> str:
        stamp = f"{max(int(now * 1000), 0):x}"
        return f"{stamp}.{self._mac(stamp)}"

    def check(self, nonce: str, now: float) -> str:
        stamp, dot, mac = nonce.partition(".")
        # As bytes: compare_digest raises TypeError for str with non-ASCII characters (a caller's).
        if not dot or not hmac.compare_digest(mac.encode("utf-8", "replace"), self._mac(stamp).encode()):
            return "bad"
        try:
            issued = int(stamp, 16) / 1000
        except ValueError:
            return "bad"
        return "ok" if 0 <= now - issued <= self.lifetime_s else "stale"
