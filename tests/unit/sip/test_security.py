"""Inbound security on the sans-I/O endpoint: digest auth, trunk allow-lists, rate limit."""

from __future__ import annotations

import random

import pytest

from mssip.digest import (
    Challenge,
    NonceIssuer,
    answer_challenge,
    compute_response,
    parse_challenge,
    parse_credentials,
)
from mssip.endpoint import SipEndpoint
from mssip.events import InviteReceived, MessageRejected
from mssip.security import AccessPolicy, RateLimiter, Trunk
from tests.unit.sip.sipkit import PEER, Phone, drain, responses, statuses

USERS = {"alice": "wonderland"}


def endpoint(**policy: object) -> SipEndpoint:
    return SipEndpoint("192.0.2.1", 5060, rng=random.Random(1), policy=AccessPolicy(**policy))  # type: ignore[arg-type]


def test_rfc_2617_and_7616_known_answers() -> None:
    # RFC 2617 §3.5 (MD5, qop=auth).
    assert (
        compute_response(
            algorithm="MD5",
            username="Mufasa",
            realm="testrealm@host.com",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )
    # RFC 7616 §3.9.1 (SHA-256 and MD5 for the same request).
    common = dict(
        username="Mufasa",
        realm="http-auth@example.org",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        qop="auth",
        nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert compute_response(algorithm="MD5", **common) == "8ca523f5e9506fed4657c9700eebdbec"
    assert compute_response(algorithm="SHA-256", **common) == (
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    )


def test_nonce_expiry() -> None:
    issuer = NonceIssuer(b"k", lifetime_s=300)
    nonce = issuer.issue(1000.0)
    assert issuer.check(nonce, 1299.0) == "ok"
    assert issuer.check(nonce, 1301.0) == "stale"
    assert issuer.check(nonce.replace(".", ".0"), 1000.0) == "bad"
    assert NonceIssuer(b"other").check(nonce, 1000.0) == "bad"


def authed_invite(phone: Phone, challenge_header: str, password: str, *, cseq: int, uri: str | None = None) -> bytes:
    challenge = parse_challenge(challenge_header)
    creds = answer_challenge(
        challenge,
        method="INVITE",
        uri=uri or "sip:agent@192.0.2.1",
        username="alice",
        password=password,
        cnonce="c0ffee",
    )
    return phone.request("INVITE", cseq=cseq, body=b"v=0\r\n", extra=(("Authorization", creds.header_value()),))


@pytest.mark.parametrize("algorithm_index", [0, 1])  # SHA-256, then MD5
def test_digest_challenge_and_success(algorithm_index: int) -> None:
    ep, phone = endpoint(users=USERS, secret=b"s3cret", realm="ms.example"), Phone()
    ep.receive_datagram(phone.invite(), PEER, 10.0)
    [challenge] = responses(ep)
    assert challenge.status == 401
    offered = [parse_challenge(v) for v in challenge.headers.get_all("WWW-Authenticate")]
    assert [c.algorithm for c in offered] == ["SHA-256", "MD5"]
    assert all(c.qop == ("auth",) and c.realm == "ms.example" for c in offered)
    [rejected] = drain(ep)
    assert isinstance(rejected, MessageRejected) and rejected.status == 401
    header = challenge.headers.get_all("WWW-Authenticate")[algorithm_index]
    ep.receive_datagram(authed_invite(phone, header, "wonderland", cseq=2), PEER, 11.0)
    assert statuses(ep) == [100]
    [event] = drain(ep)
    assert isinstance(event, InviteReceived) and event.identity == "user:alice"
    used = parse_credentials(event.request.headers.get("Authorization") or "")
    assert used.algorithm == offered[algorithm_index].algorithm


def test_wrong_password_and_unknown_user_are_403_and_stale_nonce_rechallenges() -> None:
    ep, phone = endpoint(users=USERS, secret=b"s3cret", nonce_lifetime_s=30), Phone()
    ep.receive_datagram(phone.invite(), PEER, 0.0)
    [challenge] = responses(ep)
    header = challenge.headers.get("WWW-Authenticate") or ""
    ep.receive_datagram(authed_invite(phone, header, "guess", cseq=2), PEER, 1.0)
    assert statuses(ep) == [403]
    ep.receive_datagram(authed_invite(phone, header, "wonderland", cseq=3, uri="sip:other@192.0.2.1"), PEER, 1.0)
    assert statuses(ep) == [403]  # credentials computed for another URI: a replay elsewhere
    ep.receive_datagram(authed_invite(phone, header, "wonderland", cseq=4), PEER, 31.0)
    [stale] = responses(ep)
    assert stale.status == 401 and parse_challenge(stale.headers.get("WWW-Authenticate") or "").stale
    fresh = stale.headers.get("WWW-Authenticate") or ""
    ep.receive_datagram(authed_invite(phone, fresh, "wonderland", cseq=5), PEER, 32.0)
    assert statuses(ep) == [100]


def test_proxy_auth_uses_407() -> None:
    ep, phone = endpoint(users=USERS, secret=b"x", proxy_auth=True), Phone()
    ep.receive_datagram(phone.invite(), PEER, 0.0)
    [challenge] = responses(ep)
    assert challenge.status == 407 and challenge.headers.get("Proxy-Authenticate", "").startswith("Digest ")


def test_trunk_allow_list() -> None:
    trunk = Trunk.from_strings("carrier", ["198.51.100.0/24", "2001:db8::5"])
    ep, phone = endpoint(trunks=[trunk]), Phone()
    ep.receive_datagram(phone.invite(), PEER, 0.0)  # PEER is 198.51.100.7
    assert statuses(ep) == [100]
    [event] = drain(ep)
    assert isinstance(event, InviteReceived) and event.identity == "trunk:carrier"
    other = Phone(call_id="x@y", from_tag="xy")
    ep.receive_datagram(other.invite(), ("203.0.113.9", 5060), 0.0)
    assert statuses(ep) == [403]
    with pytest.raises(ValueError, match="'10.0.0.300'"):
        Trunk.from_strings("bad", ["10.0.0.300"])


def test_open_by_default() -> None:
    ep, phone = SipEndpoint("192.0.2.1", 5060), Phone()
    ep.receive_datagram(phone.invite(), PEER, 0.0)
    assert statuses(ep) == [100]


def test_rate_limit_answers_503_with_retry_after_and_spares_dialogs() -> None:
    ep = SipEndpoint("192.0.2.1", 5060, rng=random.Random(2), rate_limiter=RateLimiter(rate_per_s=5, burst=10))
    live = Phone(call_id="live@x")
    ep.receive_datagram(live.invite(), PEER, 0.0)
    [event] = drain(ep)
    ep.answer(event.call_id, b"v=0\r\n", 0.0)  # type: ignore[union-attr]
    tag = responses(ep)[-1].to_addr.tag
    ep.receive_datagram(live.request("ACK", cseq=1, to_tag=tag), PEER, 0.01)
    drain(ep)
    codes = []
    for i in range(2000):  # 2,000 INVITEs within one second from the same address
        ep.receive_datagram(Phone(call_id=f"flood{i}", from_tag=f"f{i}").invite(), PEER, i / 2000)
        codes += statuses(ep)
    drain(ep)
    assert codes.count(100) <= 10 + 5 + 1 and codes.count(503) >= 1980
    flood = Phone(call_id="flood-last", from_tag="fl").invite()
    ep.receive_datagram(flood, PEER, 1.0)
    [busy] = responses(ep)
    assert busy.status == 503 and busy.headers.get("Retry-After") == "1"
    assert ep.get_timer() is not None and len(ep._server_tx) < 40  # no state kept for refused floods
    # The live call still hangs up normally in the middle of the flood.
    ep.receive_datagram(live.request("BYE", cseq=2, to_tag=tag), PEER, 1.0)
    assert statuses(ep) == [200]
    # Another source is not affected; and the flooder gets through again later.
    ep.receive_datagram(Phone(call_id="other@z", from_tag="oz").invite(), ("203.0.113.1", 5060), 1.0)
    assert statuses(ep) == [100]
    ep.receive_datagram(Phone(call_id="later@z", from_tag="lz").invite(), PEER, 3.0)
    assert statuses(ep) == [100]


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=1, max_keys=100)
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}", float(i))
    assert len(limiter) <= 100


def test_challenge_header_round_trip() -> None:
    c = Challenge("r", "n", "SHA-256", ("auth",), opaque="o", stale=True)
    assert parse_challenge(c.header_value()) == c


def test_trunks_are_not_rate_limited() -> None:
    policy = AccessPolicy(trunks=[Trunk.from_strings("carrier", ["198.51.100.0/24"])])
    ep = SipEndpoint("192.0.2.1", 5060, policy=policy, rate_limiter=RateLimiter(rate_per_s=1, burst=1))
    codes = []
    for i in range(20):
        ep.receive_datagram(Phone(call_id=f"t{i}", from_tag=f"t{i}").invite(), PEER, i / 100)
        codes += statuses(ep)
    assert codes == [100] * 20
