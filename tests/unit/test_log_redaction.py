"""Passwords and tokens never reach the log output (issue 17, item 6): neither the records the code
makes (a fetch from a `user:pass@` URL, a control request with a bad token) nor the lines the
server's handler writes, whose `RedactSecrets` filter and `JsonFormatter` mask what slips in."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mediaserver.kernel.agent import AgentRegistry
from mediaserver.kernel.eventbus import EventBus
from mediaserver.logs import MASK, RedactSecrets, redact, redact_value, setup_logging
from mediaserver.signaling.control import control_routes
from tests.scenario.test_swml_executor import Harness

PASSWORD = "s3cr3t-Pa55"
API_TOKEN = "api-token-9d2b4f"
BAD_TOKENS = ("wrong-token-5e8a71", "wrong-token-in-query-3c9d")
SECRETS = (PASSWORD, base64.b64encode(f"agent:{PASSWORD}".encode()).decode(), API_TOKEN, *BAD_TOKENS)


class Records(logging.Handler):
    """Keeps every record as the code made it (installed ahead of the redacting handler)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        exc = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        self.texts.append(record.getMessage() + repr(record.__dict__) + exc)


@pytest.fixture
def server_logging() -> Iterator[tuple[Records, io.StringIO]]:
    """The server's own logging (`setup_logging`) writing to a buffer, and the raw records."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    setup_logging("DEBUG", out)
    raw = Records()
    root.handlers.insert(0, raw)
    try:
        yield raw, out
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def assert_clean(raw: Records, out: io.StringIO, *secrets: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines, "nothing was logged"
    for secret in secrets:
        leaks = [text for text in raw.texts if secret in text]
        assert not leaks, f"{secret!r} in a log record: {leaks[0]}"
        assert secret not in out.getvalue(), f"{secret!r} in the log output"
    return lines


# -- what the code logs -----------------------------------------------------------------------


@pytest.fixture
async def agent_server() -> AsyncIterator[str]:
    """An SDK-like agent that checks basic auth and fails (the fetch's error paths log most)."""

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text=f"boom, you sent {request.headers.get('Authorization')}")

    app = web.Application()
    app.router.add_post("/agent", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_a_fetch_with_userinfo_logs_no_password(
    tmp_path: Path, agent_server: str, server_logging: tuple[Records, io.StringIO]
) -> None:
    raw, out = server_logging
    url = agent_server.replace("http://", f"http://agent:{PASSWORD}@") + "/agent?tenant=x"
    harness = Harness(tmp_path)
    async with aiohttp.ClientSession() as http:
        await harness.run(
            {
                "main": [
                    {"request": {"url": url, "method": "GET"}},
                    {"request": {"url": f"http://agent:{PASSWORD}@127.0.0.1:1/closed", "method": "GET", "timeout": 1}},
                    {"execute": {"dest": url}},
                ]
            },
            http=http,
        )
    assert harness.tts.spoken == ["Sorry, goodbye."]  # the fetch failed: HTTP 500 (echoing our Basic header)
    lines = assert_clean(raw, out, *SECRETS[:2])
    events = [line.get("event") for line in lines]
    assert {"request_done", "request_failed", "swml_fetch", "swml_fetch_failed", "swml_error"} <= set(events)
    failed = next(line for line in lines if line.get("event") == "swml_fetch_failed")
    assert failed["error"].startswith(f"{agent_server}/agent?tenant=x: HTTP 500")
    assert f"Basic {MASK}" in failed["error"]  # the agent echoed the header back: masked in the event too


async def test_a_control_request_with_a_bad_token_logs_no_token(server_logging: tuple[Records, io.StringIO]) -> None:
    raw, out = server_logging
    kernel: Any = SimpleNamespace(calls={}, agents=AgentRegistry())
    app = web.Application()
    control_routes(kernel, None, EventBus(), API_TOKEN)(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        bad_header = await client.get("/api/calls", headers={"Authorization": f"Bearer {BAD_TOKENS[0]}"})
        bad_query = await client.get("/api/events", params={"token": BAD_TOKENS[1], "call_id": "c1"})
        good = await client.get("/api/calls", headers={"Authorization": f"Bearer {API_TOKEN}"})
    finally:
        await client.close()
    assert (bad_header.status, bad_query.status, good.status) == (401, 401, 200)
    lines = assert_clean(raw, out, *SECRETS[2:])
    refused = [line for line in lines if line["msg"] == "control API: bad token"]
    assert [(line["path"], line["failures"]) for line in refused] == [("/api/calls", 1), ("/api/events", 2)]


# -- the safety net ---------------------------------------------------------------------------


def test_whatever_slips_into_a_record_is_masked_in_the_output(server_logging: tuple[Records, io.StringIO]) -> None:
    _, out = server_logging
    log = logging.getLogger("mediaserver.test.leaky")
    log.warning("fetching %s", f"http://agent:{PASSWORD}@example.com/swml")
    log.info(
        "webhook",
        extra={
            "url": f"https://hooks.example.com/x?__token={API_TOKEN}&a=1",
            "headers": {"Authorization": f"Basic {SECRETS[1]}", "X-Other": "kept"},
            "password": PASSWORD,
            "tokens": 42,  # a count, not a secret
        },
    )
    log.info("sent Authorization: Bearer %s and Proxy-Authorization: Basic %s", API_TOKEN, SECRETS[1])
    try:
        raise RuntimeError(f"cannot connect to http://agent:{PASSWORD}@10.0.0.1/ with token={API_TOKEN}")
    except RuntimeError:
        log.exception("failed")
    text = out.getvalue()
    for secret in SECRETS[:3]:
        assert secret not in text
    first, second, third, fourth = (json.loads(line) for line in text.splitlines())
    assert first["msg"] == f"fetching http://agent:{MASK}@example.com/swml"
    assert second["url"] == f"https://hooks.example.com/x?__token={MASK}&a=1"
    assert second["headers"] == {"Authorization": MASK, "X-Other": "kept"}
    assert (second["password"], second["tokens"]) == (MASK, 42)
    assert third["msg"] == f"sent Authorization: Bearer {MASK} and Proxy-Authorization: Basic {MASK}"
    assert f"http://agent:{MASK}@10.0.0.1/ with token={MASK}" in fourth["exc"]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("http://user:pw@h:3000/a?b=1", f"http://user:{MASK}@h:3000/a?b=1"),
        ("rtsp://cam:pw@10.0.0.1/s", f"rtsp://cam:{MASK}@10.0.0.1/s"),
        ('{"Authorization": "Bearer abc.def"}', f'{{"Authorization": "Bearer {MASK}"}}'),
        ("GET /api/events?call_id=c&token=t0k&kinds=log", f"GET /api/events?call_id=c&token={MASK}&kinds=log"),
        ("https://x/y?api_key=k&sig=1", f"https://x/y?api_key={MASK}&sig=1"),
        ("password=hunter2 user=bob", f"password={MASK} user=bob"),
        ('Digest username="a", response="0123456789abcdef0123"', f'Digest username="a", response="{MASK}"'),
    ],
)
def test_redact(text: str, masked: str) -> None:
    assert redact(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:3000/agent?tenant=x",
        "http://[::1]:8080/x",
        "sip:alice@example.com:5060",
        "missing or wrong bearer token",
        '{"first_token_timeout_s": 8.0, "token_env": "MS_API_TOKEN", "prompt_tokens": 12}',
        "control API: bad token",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_the_filter_rewrites_the_record_itself() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s", (f"http://u:{PASSWORD}@h/",), None)
    record.token = API_TOKEN
    record.nested = [{"api_key": "k1"}, f"Bearer {API_TOKEN}"]
    assert RedactSecrets().filter(record)
    assert record.getMessage() == f"to http://u:{MASK}@h/"
    assert record.token == MASK  # type: ignore[attr-defined]
    assert record.nested == [{"api_key": MASK}, f"Bearer {MASK}"]  # type: ignore[attr-defined]
    assert redact_value({"credentials": {"user": "u"}}) == {"credentials": MASK}
