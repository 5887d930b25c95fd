"""The control API's authentication (signaling/control.py): the bearer token is compared in constant
time (`hmac.compare_digest`), and a client with too many failed attempts in a window gets 429 with
Retry-After, right token or not, until the window has passed."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mediaserver.kernel.agent import AgentRegistry
from mediaserver.kernel.eventbus import EventBus
from mediaserver.signaling import control
from mediaserver.signaling.control import FailedAuthLimiter, control_routes

TOKEN = "right-token-7c1e"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_app(token: str, limiter: FailedAuthLimiter | None = None) -> web.Application:
    kernel: Any = SimpleNamespace(calls={}, agents=AgentRegistry())
    app = web.Application()
    control_routes(kernel, None, EventBus(), token, auth_limit=limiter)(app)
    return app


@pytest.fixture
async def clock_and_client() -> AsyncIterator[tuple[Clock, TestClient[Any, Any]]]:
    clock = Clock()
    client = TestClient(TestServer(make_app(TOKEN, FailedAuthLimiter(3, 60.0, clock=clock))))
    await client.start_server()
    try:
        yield clock, client
    finally:
        await client.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_right_token_passes_wrong_or_missing_is_401(clock_and_client: tuple[Clock, Any]) -> None:
    _, client = clock_and_client
    assert (await client.get("/api/calls", headers=bearer(TOKEN))).status == 200
    assert (await client.get("/api/calls", params={"token": TOKEN})).status == 200  # EventSource's way
    wrong = await client.get("/api/calls", headers=bearer("right-token-7c1f"))
    assert wrong.status == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    assert (await wrong.json())["error"] == "missing or wrong bearer token"
    assert (await client.get("/api/calls")).status == 401


async def test_failed_attempts_are_rate_limited_per_window(clock_and_client: tuple[Clock, Any]) -> None:
    clock, client = clock_and_client
    for _ in range(3):
        assert (await client.get("/api/calls", headers=bearer("guess"))).status == 401
        clock.now += 1
    limited = await client.get("/api/calls", headers=bearer("guess"))
    assert limited.status == 429
    assert (await limited.json())["error"] == "too many failed attempts: retry later"
    assert limited.headers["Retry-After"] == "57"  # the first failure (t=1000) leaves the window at t=1060
    # while blocked even the right token is refused: guessing cannot go on, nor tell right from wrong
    assert (await client.get("/api/calls", headers=bearer(TOKEN))).status == 429
    assert (await client.post("/api/calls/x/hangup", params={"token": TOKEN})).status == 429
    clock.now = 1060.0  # the oldest failure has aged out: one more try is allowed
    assert (await client.get("/api/calls", headers=bearer(TOKEN))).status == 200
    # a success clears the record: three fresh failures are needed to be blocked again
    for _ in range(2):
        assert (await client.get("/api/calls", headers=bearer("guess"))).status == 401
    assert (await client.get("/api/calls", headers=bearer(TOKEN))).status == 200


def test_the_limiter_counts_each_client_apart_and_stays_bounded() -> None:
    limiter = FailedAuthLimiter(2, 10.0, max_clients=3)
    limiter.failed("a", 0.0)
    limiter.failed("a", 1.0)
    assert limiter.blocked_for("a", 2.0) == pytest.approx(8.0)
    assert limiter.blocked_for("b", 2.0) == 0.0
    assert limiter.blocked_for("a", 10.0) == 0.0  # the failure at 0 has left the window
    for client in ("b", "c", "d", "e"):
        limiter.failed(client, 5.0)
    assert len(limiter._failures) <= 3


async def test_the_token_is_compared_with_compare_digest(
    clock_and_client: tuple[Clock, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = clock_and_client
    calls: list[tuple[bytes, bytes]] = []
    real = control.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(control.hmac, "compare_digest", spy)
    assert (await client.get("/api/calls", headers=bearer("short"))).status == 401
    assert (await client.get("/api/calls", headers=bearer(TOKEN))).status == 200
    # digests of equal length: not even the token's length shows in the timing
    assert calls == [
        (hashlib.sha256(b"short").digest(), hashlib.sha256(TOKEN.encode()).digest()),
        (hashlib.sha256(TOKEN.encode()).digest(), hashlib.sha256(TOKEN.encode()).digest()),
    ]


async def test_an_empty_token_still_turns_the_api_off() -> None:
    client = TestClient(TestServer(make_app("")))
    await client.start_server()
    try:
        for _ in range(12):  # refused as "disabled", not counted as guesses
            assert (await client.get("/api/calls", headers=bearer(""))).status == 403
    finally:
        await client.close()
