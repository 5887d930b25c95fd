"""Admission control over real sockets: a `mediaserver serve` with one AI slot.

While one caller holds the slot (its route's document has an `ai` verb, after a long greeting,
so the slot is a reservation and no AI engine ever loads), a second INVITE to an AI route gets
503 with Retry-After, a browser offer gets HTTP 503 with Retry-After, a media-only call is still
answered, and a call that reaches `ai` through a fetched document hears the overflow document
and is hung up. /health and /metrics show the counts; once the first caller hangs up, the next
AI call gets in."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from benchmarks.sipclient import SipCaller
from tests.support.server import REPO, ServerProcess

RETRY_AFTER_S = 7
AI_AFTER_GREETING = """
sections:
  main:
    - answer: {}
    - play:
        url: "silence:60"
    - ai:
        prompt:
          text: "You are a test agent."
"""
HOLD = """
sections:
  main:
    - answer: {}
    - sleep: -1
"""
# What the URL route returns: a document that reaches `ai` at once (no reservation was made for it).
FETCHED_AI = {"version": "1.0.0", "sections": {"main": [{"ai": {"prompt": {"text": "You are a test agent."}}}]}}


@pytest.fixture
async def swml_site() -> AsyncIterator[int]:
    """An HTTP server in this process that answers every SWML fetch with `FETCHED_AI`."""

    async def agent(_: web.Request) -> web.Response:
        return web.json_response(FETCHED_AI)

    app = web.Application()
    app.router.add_route("*", "/ai", agent)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def write_config(tmp: Path, swml_port: int) -> Path:
    (tmp / "ai_after_greeting.yaml").write_text(AI_AFTER_GREETING)
    (tmp / "hold.yaml").write_text(HOLD)
    config = tmp / "admission.toml"
    config.write_text(
        f"""
[routes]
default = "hold.yaml"

[routes.users]
agent = "ai_after_greeting.yaml"
hold = "hold.yaml"
fetched = "http://127.0.0.1:{swml_port}/ai"

[swml]
allowed_hosts = ["127.0.0.1"]

[llm]
enabled = false             # no AI engine: no ai verb runs here long enough to need one

[admission]
ai_capacity = 1
max_calls = 10
retry_after_s = {RETRY_AFTER_S}
overflow = "{REPO / "config/swml/overflow.yaml"}"
"""
    )
    return config


def post_offer(server: ServerProcess, route: str) -> tuple[int, dict[str, str], dict[str, object]]:
    """A browser's JSON offer; the refusal comes before the SDP is looked at beyond its m=audio."""
    offer = {
        "type": "offer",
        "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}/webrtc/{route}/offer",
        data=json.dumps(offer).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def scrape(server: ServerProcess) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics", timeout=5) as response:
        return str(response.read().decode())


async def test_over_capacity_calls_get_503_with_retry_after_and_the_overflow(tmp_path: Path, swml_site: int) -> None:
    server = ServerProcess(write_config(tmp_path, swml_site), rtp_base=42600, log_level="INFO").start()
    callers: list[SipCaller] = []

    async def dial(user: str) -> tuple[SipCaller, int, dict[str, str]]:
        caller = SipCaller(("127.0.0.1", server.sip_port), user=user, codec="PCMU")
        await caller.open()
        callers.append(caller)
        final = await caller.call()
        return caller, final.status, final.headers

    try:
        health = server.get("/health")["admission"]
        assert (health["state"], health["ai_capacity"], health["ai_headroom"]) == ("open", 1, 1)

        first, status, _ = await dial("agent")
        assert status == 200
        health = server.get("/health")["admission"]
        assert (health["state"], health["ai_reserved"], health["ai_headroom"]) == ("ai_full", 1, 0)

        # SIP: a second AI call is refused cleanly, with the Retry-After a proxy or trunk honours.
        _, status, headers = await dial("agent")
        assert status == 503
        assert headers["retry-after"] == str(RETRY_AFTER_S)

        # WebRTC: the same answer over HTTP.
        code, http_headers, body = post_offer(server, "agent")
        assert code == 503 and http_headers["Retry-After"] == str(RETRY_AFTER_S)
        assert body["reason"] == "ai_capacity"

        # A media-only call does not need an AI slot.
        hold, status, _ = await dial("hold")
        assert status == 200

        # A call whose ai verb comes from a fetched document: answered, then the overflow document.
        fetched, status, _ = await dial("fetched")
        assert status == 200
        await asyncio.wait_for(fetched.bye_received.wait(), 30)
        pcm, _rate = fetched.decoded_audio()
        assert abs(pcm.astype(int)).max() > 2000  # it heard the apology, not silence
        over = [r for r in server.records(fetched.call_id) if r.get("event") == "ai_over_capacity"]
        assert over and over[0]["overflow"] is True

        health = server.get("/health")["admission"]
        assert health["refused"] == {"ai_capacity": 3, "call_limit": 0, "rtp_ports": 0}
        metrics = scrape(server)
        assert 'mediaserver_calls_refused_total{reason="ai_capacity"} 3.0' in metrics
        assert "mediaserver_ai_capacity 1.0" in metrics
        assert "mediaserver_ai_reserved 1.0" in metrics

        # The AI caller hangs up: its slot is free and the next AI call is answered.
        assert (await first.hangup()).status == 200
        assert (await hold.hangup()).status == 200
        server.wait_idle()
        assert server.get("/health")["admission"]["ai_headroom"] == 1
        again, status, _ = await dial("agent")
        assert status == 200
        assert (await again.hangup()).status == 200
        server.wait_idle()
    finally:
        for caller in callers:
            caller.close()
        server.stop()
    refused = [r for r in server.records() if r.get("msg") == "call refused"]
    assert {r.get("front_end") for r in refused} == {"sip", "webrtc", "ai verb"}
    assert all(r.get("call_id") for r in refused)
