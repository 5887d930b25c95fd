"""WHIP and JSON signalling against a real server, with aiortc as the caller (no browser).

The caller is a real WebRTC stack (ICE, DTLS, SRTP, Opus), so these tests cover the media
path end to end: the greeting route's speech is recorded on the caller's side and transcribed.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.browser.aiortc_client import RATE, AiortcCaller, HttpError
from tests.support.server import ServerProcess
from tests.support.speech import contains_words, transcribe, write_wav

GREETING = "Hello, thank you for calling. This is your voice media server speaking. Goodbye."


def base(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.http_port}"


async def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def wait_idle(server: ServerProcess, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        health = server.get("/health")
        if health["calls"] == 0 and health.get("webrtc_sessions") == 0:
            return
        assert time.monotonic() < deadline, f"server not idle: {health}"
        time.sleep(0.1)


def call_record(server: ServerProcess, call_id: str, event: str, timeout: float = 5.0) -> dict[str, Any]:
    """The call's first `event` record; waits for it, since the server's log reaches this process
    through a pipe and a reader thread, a moment after the HTTP answer that followed it."""
    deadline = time.monotonic() + timeout
    while True:
        for entry in server.records(call_id):
            if entry.get("event") == event:
                return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"{event} not logged for {call_id}")
        time.sleep(0.05)


@pytest.mark.slow
async def test_json_offer_greeting_is_heard_and_server_hangs_up(server: ServerProcess, tmp_path: Path) -> None:
    caller = AiortcCaller(base(server))
    try:
        answer = await caller.call_json("greeting")
        assert answer["type"] == "answer" and answer["call_id"].startswith("webrtc-")
        assert "opus/48000" in answer["sdp"].lower()
        candidates = [line for line in answer["sdp"].splitlines() if line.startswith("a=candidate")]
        assert candidates and all(" typ host" in c for c in candidates)  # no STUN/TURN unless configured
        await asyncio.wait_for(caller.hung_up.wait(), 30)  # SWML `hangup` after the greeting
        await asyncio.sleep(0.2)
    finally:
        await caller.close()
    wav = write_wav(tmp_path / "greeting.wav", caller.recording(), RATE)
    text = transcribe(wav)
    assert contains_words(text, GREETING), text
    names = [m.get("event") for m in caller.messages if m["type"] == "event"]
    assert names.index("audio_started") < names.index("audio_stopped") < names.index("hangup_requested")
    assert caller.messages[0] == {"type": "call", "call_id": answer["call_id"], "route": "greeting"}
    wait_idle(server)
    ended = call_record(server, answer["call_id"], "call_ended")
    assert ended["cause"] == "NORMAL_CLEARING"
    assert ended["packets_in"] > 0  # the caller's audio reached the kernel's inbound side
    # 0.5 s of silence plus the spoken greeting at 48 kHz, all of it taken by aiortc
    assert ended["played_samples"] > RATE


async def test_whip_offer_answer_and_delete(server: ServerProcess) -> None:
    caller = AiortcCaller(base(server))
    try:
        location = await caller.call_whip("long")
        assert location == f"/whip/long/{caller.call_id}"
        await asyncio.wait_for(caller.opened.wait(), 15)
        await wait_for(lambda: caller.events("audio_started"))
        assert await caller.delete(location) == 200
        await asyncio.wait_for(caller.hung_up.wait(), 10)
        assert await caller.delete(location) == 404  # the resource is gone
    finally:
        await caller.close()
    wait_idle(server)
    assert call_record(server, caller.call_id or "", "remote_hangup")["reason"] == "DELETE from the client"
    started = call_record(server, caller.call_id or "", "call_started")
    assert started["document"] == "long" and started["front_end"]["signalling"] == "whip"  # the route, no path


async def test_route_selects_the_document(server: ServerProcess) -> None:
    documents = {}
    for route in ("greeting", "long", "default"):
        caller = AiortcCaller(base(server))
        try:
            answer = await caller.call_json(route)
            assert await caller.delete(f"/webrtc/calls/{answer['call_id']}") == 200
        finally:
            await caller.close()
        documents[route] = call_record(server, answer["call_id"], "call_started")["document"]
    assert documents == {"greeting": "greeting", "long": "long", "default": "default"}  # route names, no paths
    wait_idle(server)


async def test_unknown_route_is_404_naming_it(server: ServerProcess) -> None:
    caller = AiortcCaller(base(server))
    try:
        with pytest.raises(HttpError) as json_error:
            await caller.call_json("no-such-route")
        with pytest.raises(HttpError) as whip_error:
            await caller.call_whip("no-such-route")
    finally:
        await caller.close()
    assert json_error.value.status == 404 and "'no-such-route'" in json_error.value.body
    assert whip_error.value.status == 404 and "greeting" in whip_error.value.body  # lists the real routes


def post(server: ServerProcess, path: str, body: bytes, content_type: str) -> tuple[int, str]:
    request = urllib.request.Request(f"{base(server)}{path}", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_bad_offers_get_clear_errors(server: ServerProcess) -> None:
    status, body = post(server, "/whip/greeting", b"v=0\r\n", "text/plain")
    assert status == 415 and "application/sdp" in body
    status, body = post(server, "/webrtc/greeting/offer", b"{not json", "application/json")
    assert status == 400 and "JSON" in body
    status, body = post(
        server, "/webrtc/greeting/offer", json.dumps({"sdp": "x", "type": "answer"}).encode(), "application/json"
    )
    assert status == 400 and "offer" in body
    status, body = post(
        server, "/whip/greeting", b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "application/sdp"
    )
    assert status == 400 and "audio" in body
    status, body = post(server, "/whip/greeting", b"v=0\r\nm=audio 9 garbage\r\n", "application/sdp")
    assert status == 400 and "cannot answer" in body
    assert server.get("/health")["status"] == "ok"
    wait_idle(server)


async def test_dtmf_over_the_data_channel_reaches_the_call(server: ServerProcess) -> None:
    caller = AiortcCaller(base(server))
    try:
        answer = await caller.call_json("long")
        await asyncio.wait_for(caller.opened.wait(), 15)
        await wait_for(lambda: caller.events("audio_started"))
        for digit in "5#x":
            caller.send_dtmf(digit)
        await wait_for(
            lambda: len(caller.events("dtmf_received")) == 2 and any(m["type"] == "error" for m in caller.messages)
        )
        assert [e["digit"] for e in caller.events("dtmf_received")] == ["5", "#"]
        assert any("'x'" in m.get("error", "") for m in caller.messages)
        caller.channel.send(json.dumps({"type": "hangup"}))
        await asyncio.wait_for(caller.hung_up.wait(), 10)
    finally:
        await caller.close()
    wait_idle(server)
    assert call_record(server, answer["call_id"], "remote_hangup")["reason"] == "hangup from the page"


def test_routes_and_page_are_served(server: ServerProcess) -> None:
    routes = server.get("/webrtc/routes")
    assert routes["routes"][0] == "default" and {"greeting", "long"} <= set(routes["routes"])
    assert routes["ice_servers"] == []  # nothing outside this machine unless configured
    with urllib.request.urlopen(f"{base(server)}/", timeout=5) as response:
        page = response.read().decode()
    assert "<title>" in page and "/web/app.js" in page
    with urllib.request.urlopen(f"{base(server)}/web/app.js", timeout=5) as response:
        assert b"createDataChannel" in response.read()


async def test_whip_client_reads_events_as_sse(server: ServerProcess) -> None:
    caller = AiortcCaller(base(server))
    events: list[dict[str, Any]] = []
    try:
        location = await caller.call_whip("greeting")
        import aiohttp

        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{base(server)}/webrtc/calls/{caller.call_id}/events") as response,
        ):
            assert response.headers["Content-Type"] == "text/event-stream"
            async for line in response.content:  # ends when the call does (the greeting hangs up)
                if line.startswith(b"data: "):
                    events.append(json.loads(line[6:]))
        assert await caller.delete(location) == 404
    finally:
        await caller.close()
    names = [e["event"] for e in events]
    assert names[0] == "call_started"  # from the start of the call, not from when we subscribed
    assert "audio_started" in names and "hangup_requested" in names
    wait_idle(server)


async def test_caller_closing_its_peer_connection_ends_the_call(server: ServerProcess) -> None:
    caller = AiortcCaller(base(server))
    answer = await caller.call_json("long")
    await asyncio.wait_for(caller.opened.wait(), 15)
    await wait_for(lambda: caller.events("audio_started"))
    await caller.close()  # like a closed tab: DTLS close_notify, no signalling
    await asyncio.to_thread(wait_idle, server)
    reason = call_record(server, answer["call_id"], "remote_hangup")["reason"]
    assert reason in ("peer connection closed", "remote track ended"), reason
