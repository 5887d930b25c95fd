"""The live call control API over real HTTP against a `mediaserver serve` process.

A raw-SIP caller holds a call on a document that answers and waits; the test drives the
`/api` routes with a bearer token from the test config, reads the server-sent event stream,
and checks the spec's reply strings. The sidecar's LLM is the scripted OpenAI-compatible server;
the caller speaks an espeak-ng line so that the customer leg is really transcribed (whisper
tiny.en) and ends a turn by itself.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from benchmarks.sipclient import SipCaller
from tests.support.llm_server import ScriptedLlmServer, ToolCall, Turn
from tests.support.server import ServerProcess
from tests.support.speech import contains_words, read_wav, resample, synthesize_espeak, to_mono

TOKEN = "test-token-5f3a"
HOLD = """
sections:
  main:
    - answer: {}
    - sleep: 60000
    - hangup: {}
"""
SCRIPT = [
    Turn(tool_calls=[ToolCall("sidecar_skip", '{"reason":"greeting only"}')]),  # the spoken turn
    Turn(text="Ask about their budget."),  # the poke
    Turn(text="Their main concern is price."),  # the ask
]


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLlmServer]:
    with ScriptedLlmServer(list(SCRIPT)).running() as server:
        yield server


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLlmServer) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("sidecar-api")
    (folder / "hold.yaml").write_text(HOLD)
    config = folder / "config.toml"
    config.write_text(
        f'[routes]\ndefault = "hold.yaml"\n[api]\ntoken = "{TOKEN}"\n[llm]\nbase_url = "{llm.base_url}"\n'
    )
    proc = ServerProcess(config=config, rtp_base=43000, log_level="INFO").start()  # its own RTP ports
    try:
        yield proc
    finally:
        proc.stop()


class Api:
    def __init__(self, server: ServerProcess, http: aiohttp.ClientSession, token: str = TOKEN) -> None:
        self.base = f"http://127.0.0.1:{server.http_port}"
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None, raw: str | None = None) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"headers": self.headers}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        async with self.http.request(method, self.base + path, **kwargs) as response:
            return response.status, await response.json()


class EventStream:
    """Reads /api/events (server-sent events) in the background."""

    def __init__(self, api: Api, call_id: str) -> None:
        self.events: list[dict[str, Any]] = []
        self._task = asyncio.create_task(self._read(api, call_id))
        self.ready = asyncio.Event()

    async def _read(self, api: Api, call_id: str) -> None:
        async with api.http.get(f"{api.base}/api/events", params={"call_id": call_id, "token": TOKEN}) as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
            async for line in response.content:
                text = line.decode().strip()
                if text == ": subscribed":
                    self.ready.set()
                if text.startswith("data: "):
                    self.events.append(json.loads(text[6:]))

    def types(self, kind: str = "sidecar") -> list[str]:
        return [e["data"].get("type") for e in self.events if e["kind"] == kind]

    async def wait_for(self, event_type: str, count: int = 1, timeout: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.types().count(event_type) < count:
            assert asyncio.get_running_loop().time() < deadline, f"no {event_type} in {self.types()}"
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def spoken_line(folder: Path, text: str) -> np.ndarray:
    wav = synthesize_espeak(text, folder / "line.wav", 8000)
    pcm, rate = read_wav(wav)
    pcm = to_mono(pcm)
    pcm = resample(pcm, rate, 8000) if rate != 8000 else pcm
    return np.asarray(np.clip(pcm * 32767, -32768, 32767), dtype=np.int16)  # read_wav gives floats in [-1, 1]


async def test_requests_without_the_token_are_refused(api_server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as http:
        status, data = await Api(api_server, http, token="wrong").call("GET", "/api/calls")
        assert status == 401 and data["error"] == "missing or wrong bearer token"
        async with http.get(f"http://127.0.0.1:{api_server.http_port}/api/calls") as response:
            assert response.status == 401


async def test_unknown_call_gets_the_spec_errors(api_server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as http:
        api = Api(api_server, http)
        assert await api.call("GET", "/api/calls") == (200, {"calls": []})
        for method, path, body in [
            ("GET", "/api/calls/nope", None),
            ("POST", "/api/calls/nope/hangup", {}),
            ("POST", "/api/calls/nope/sidecar/start", {"prompt": "x", "lang": "en"}),
            ("GET", "/api/calls/nope/sidecar/status", None),
            ("POST", "/api/calls/nope/sidecar/ask", {"question": "?"}),
            ("POST", "/api/calls/nope/sidecar/stop", None),
        ]:
            status, data = await api.call(method, path, body)
            assert (status, data["reply"], data["ok"]) == (404, "-ERR: Invalid Call", False), path


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
async def test_sidecar_lifecycle_over_http_with_a_live_call(
    api_server: ServerProcess, llm: ScriptedLlmServer, tmp_path: Path
) -> None:
    caller = SipCaller(("127.0.0.1", api_server.sip_port), user="hold", codec="PCMU")
    await caller.open()
    async with aiohttp.ClientSession() as http:
        api = Api(api_server, http)
        try:
            assert (await caller.call()).status == 200
            status, listing = await api.call("GET", "/api/calls")
            [view] = [c for c in listing["calls"] if c["call_id"] == caller.call_id]
            call_id = view["call_id"]
            assert view["state"] == "active" and view["transcriber"] is None
            stream = EventStream(api, call_id)
            await asyncio.wait_for(stream.ready.wait(), 10)
            base = f"/api/calls/{call_id}/sidecar"
            replies = [
                (await api.call("POST", f"{base}/start", raw="{not json"))[1]["reply"],
                (await api.call("POST", f"{base}/start", {"prompt": "x"}))[1]["reply"],
                (
                    await api.call(
                        "POST", f"{base}/start", {"prompt": "x", "lang": "en-US", "direction": ["remote-caller"]}
                    )
                )[1]["reply"],
                (
                    await api.call(
                        "POST", f"{base}/start", {"prompt": "x", "lang": "en-US", "params": {"max_iters_per_tick": 0}}
                    )
                )[1]["reply"],
            ]
            assert replies == [
                "-ERR: Invalid JSON config",
                "-ERR: lang is required",
                "-ERR: sidecar requires both legs (remote-caller and local-caller)",
                "-ERR: max_iters_per_tick: 0 is outside 1..20",
            ]
            status, data = await api.call("GET", f"{base}/status")
            assert (status, data["reply"]) == (404, "-ERR: no sidecar attached")
            body = {
                "prompt": "Coach the agent of ${global_data.company}.",
                "lang": "en-US",
                "global_data": {"company": "Initech"},
                "params": {"idle_timeout_ms": 300},
            }
            assert await api.call("POST", f"{base}/start", body) == (200, {"ok": True, "reply": "+OK started"})
            status, data = await api.call("POST", f"{base}/start", body)
            assert (status, data["reply"]) == (409, "-ERR: there is already a transcriber attached to this call")
            await stream.wait_for("start")

            # The customer speaks over RTP: whisper hears it, the idle timer ends the turn.
            await caller.send_audio(
                np.concatenate(
                    [spoken_line(tmp_path, "Hello, I would like a quote please."), np.zeros(8000, dtype=np.int16)]
                )
            )
            await stream.wait_for("skip", timeout=90)
            turn = next(e["data"] for e in stream.events if e["data"].get("type") == "turn")
            assert contains_words(turn["customer_text"], "hello I would like a quote please", 0.5), turn

            assert (await api.call("POST", f"{base}/poke", {"text": "Budget is $10k."}))[1]["reply"] == "+OK poked"
            await stream.wait_for("insight")
            status, data = await api.call("POST", f"{base}/ask", {"question": "What's the main concern?"})
            assert data["reply"] == "+OK queued"
            await stream.wait_for("ask_answer")
            status, data = await api.call("GET", f"{base}/status")
            counters = data["status"]
            assert data["reply"].startswith("+OK running=1 ticks=2 insights=1 skips=1 tools=0 errors=0 ")
            assert counters["history_size"] == 6  # system, turn, skip call+result, poke, insight: ask added none

            status, data = await api.call("POST", f"/api/calls/{call_id}/user_input", {"text": "x"})
            assert data == {"ok": True, "reply": "+OK queued", "via": "sidecar"}
            assert (await api.call("POST", f"{base}/stop"))[1]["reply"] == "+OK stopped"
            await stream.wait_for("final")
            types = stream.types()
            assert types[:2] == ["start", "turn"] and types[-2:] == ["stop", "final"]
            assert [t for t in types if t in ("ask_request", "ask_answer")] == ["ask_request", "ask_answer"]
            final = stream.events[-1]["data"]
            assert final["stop_reason"] == "api_stop" and final["global_data"] == {"company": "Initech"}
            assert "Initech" in llm.requests[0].messages[0]["content"]
            assert "sidecar_skip" not in [t["function"]["name"] for t in llm.requests[2].tools or []]

            status, data = await api.call("POST", f"/api/calls/{call_id}/say", {"text": "This call is recorded."})
            assert data == {"ok": True, "reply": "+OK queued", "via": "tts"}
            status, data = await api.call("POST", f"/api/calls/{call_id}/hangup", {"reason": "done"})
            assert (status, data["reply"]) == (200, "+OK hung up")
            await asyncio.wait_for(caller.bye_received.wait(), 10)
            await asyncio.sleep(0.2)
            hangups = [e["data"] for e in stream.events if e["kind"] == "call"]
            assert {"event": "hangup_requested", "reason": "done"} in hangups
            await stream.close()
        finally:
            caller.close()
    api_server.wait_idle()


async def test_websocket_stream_carries_call_events_filtered_by_call(api_server: ServerProcess) -> None:
    caller = SipCaller(("127.0.0.1", api_server.sip_port), user="hold", codec="PCMU")
    await caller.open()
    async with aiohttp.ClientSession() as http:
        api = Api(api_server, http)
        try:
            assert (await caller.call()).status == 200
            [view] = [c for c in (await api.call("GET", "/api/calls"))[1]["calls"] if c["call_id"] == caller.call_id]
            url = f"{api.base}/api/events/ws"
            async with (
                http.ws_connect(url, params={"call_id": "someone-else"}, headers=api.headers) as other,
                http.ws_connect(url, params={"call_id": view["call_id"], "kinds": "call"}, headers=api.headers) as mine,
            ):
                await asyncio.sleep(0.2)
                status, data = await api.call("POST", f"/api/calls/{view['call_id']}/user_input", {"text": "hi"})
                assert (status, data["reply"]) == (400, "-ERR: no AI on this call")
                assert (await api.call("POST", f"/api/calls/{view['call_id']}/hangup", {}))[1]["reply"] == "+OK hung up"
                message = json.loads((await mine.receive(timeout=5)).data)
                assert message["call_id"] == view["call_id"] and message["kind"] == "call"
                assert message["data"] == {"event": "hangup_requested", "reason": "api"}
                with pytest.raises(asyncio.TimeoutError):
                    await other.receive(timeout=0.5)
            await asyncio.wait_for(caller.bye_received.wait(), 10)
        finally:
            caller.close()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"http://127.0.0.1:{api_server.http_port}/api/events/ws")
        assert refused.value.status == 401


async def test_the_call_event_log_streams_on_the_bus_when_asked_for(api_server: ServerProcess) -> None:
    """`kinds=log`: every entry of the call's event log, as `GET /api/calls/{id}` lists it, pushed."""
    caller = SipCaller(("127.0.0.1", api_server.sip_port), user="hold", codec="PCMU")
    await caller.open()
    async with aiohttp.ClientSession() as http:
        api = Api(api_server, http)
        try:
            assert (await caller.call()).status == 200
            [view] = [c for c in (await api.call("GET", "/api/calls"))[1]["calls"] if c["call_id"] == caller.call_id]
            call_id = view["call_id"]
            url = f"{api.base}/api/events/ws"
            async with http.ws_connect(url, params={"call_id": call_id, "kinds": "log"}, headers=api.headers) as log:
                await asyncio.sleep(0.2)
                assert (await api.call("POST", f"/api/calls/{call_id}/hangup", {}))[1]["reply"] == "+OK hung up"
                seen: list[dict[str, Any]] = []
                while not seen or seen[-1]["data"]["event"] != "call_ended":
                    seen.append(json.loads((await log.receive(timeout=5)).data))
            assert {m["kind"] for m in seen} == {"log"} and {m["call_id"] for m in seen} == {call_id}
            names = [m["data"]["event"] for m in seen]
            assert names[0] == "hangup_requested" and "state_changed" in names
            hangup = seen[0]["data"]
            assert (
                hangup["cause"] == "NORMAL_CLEARING" and "api" in hangup["reason"] and isinstance(hangup["ts"], float)
            )
            await asyncio.wait_for(caller.bye_received.wait(), 10)
        finally:
            caller.close()
