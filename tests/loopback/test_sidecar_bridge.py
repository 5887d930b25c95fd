"""Acceptance of issue 9 over real sockets: baresip A -> server -> `connect` -> baresip B, with an
`ai_sidecar` watching the bridged call.

The customer (A) and the agent (B) speak espeak-ng lines from their microphone files; the server
transcribes both legs with whisper tiny.en. The sidecar's LLM is the scripted OpenAI-compatible
server, its SWAIG function and its event `url` are a small local HTTP app. The test reads the
server's event stream (server-sent events) and the webhook, and checks: `start`, `turn` (ended by
the agent speaking), `request`, `tool_call`/`tool_result`, `insight`, `skip` (the second
customer turn, ended by the idle timeout) and `final`, in order, on both paths; an `ask` answered
by `ask_answer` with the persistent history unchanged; and a looping LLM tripping each guard.
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
from aiohttp import web

from tests.loopback.test_sidecar_api import TOKEN, Api, EventStream
from tests.support.baresip import BARESIP, Baresip
from tests.support.llm_server import ScriptedLlmServer, ToolCall, Turn
from tests.support.server import ServerProcess
from tests.support.speech import contains_words, read_wav, resample, synthesize_espeak, to_mono, write_wav

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BARESIP is None or shutil.which("espeak-ng") is None, reason="needs baresip and espeak-ng"),
]

CUSTOMER_1 = "We are also looking at ACME. What is your price?"
AGENT_1 = "Let me check the price list."
CUSTOMER_2 = "Okay, thank you very much."
LOOKUP = '{"competitor":"ACME"}'
SCRIPT = [
    Turn(tool_calls=[ToolCall("lookup_competitor", LOOKUP)]),  # tick 1, iter 0
    Turn(text="Tell them we beat ACME by twenty dollars a seat."),  # tick 1, iter 1: insight
    Turn(tool_calls=[ToolCall("sidecar_skip", '{"reason":"thanks only"}')]),  # tick 2: skip
    Turn(text="Their main concern is price."),  # the ask
    # A looping model, one poke per guard:
    Turn(tool_calls=[ToolCall("lookup_competitor", LOOKUP)]),
    Turn(tool_calls=[ToolCall("lookup_competitor", LOOKUP)]),
    Turn(tool_calls=[ToolCall("lookup_competitor", LOOKUP)]),  # 3rd identical call: tool_loop
    Turn(tool_calls=[ToolCall("lookup_competitor", json.dumps({"competitor": n})) for n in "ABCDE"]),  # 5 calls
    Turn(tool_calls=[ToolCall(n, "{}") for n in ("web_search", "browse", "python")]),  # 3 phantoms
]


def voice(folder: Path, name: str, text: str) -> np.ndarray:
    samples, rate = read_wav(synthesize_espeak(text, folder / f"{name}.wav", 16000))
    return resample(to_mono(samples), rate, 16000)


def mic(folder: Path, name: str, parts: list[tuple[float, np.ndarray | None]]) -> Path:
    """A 16 kHz WAV: each part is (silence before it in seconds, speech or None)."""
    chunks = []
    for gap_s, speech in parts:
        chunks.append(np.zeros(int(gap_s * 16000), dtype=np.float32))
        if speech is not None:
            chunks.append(speech.astype(np.float32))
    return write_wav(folder / f"{name}-mic.wav", np.concatenate(chunks), 16000)


class AppServer:
    """The operator's app: SWAIG function and sidecar event sink on one local port."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.swaig: list[dict[str, Any]] = []
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/events", self._event)
        app.router.add_post("/swaig", self._swaig)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _event(self, request: web.Request) -> web.Response:
        self.events.append(await request.json())
        return web.Response(status=200)

    async def _swaig(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.swaig.append(body)
        return web.json_response(
            {
                "response": "ACME charges $99 a seat; we are $79.",
                "action": [{"set_global_data": {"last_lookup": "ACME"}}],
            }
        )


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLlmServer]:
    with ScriptedLlmServer(list(SCRIPT)).running() as server:
        yield server


def route(folder: Path, app_port: int, agent: Baresip) -> Path:
    doc = {
        "version": "1.0.0",
        "sections": {
            "main": [
                {"answer": {}},
                {
                    "ai_sidecar": {
                        "prompt": {
                            "sections": [
                                {"title": "Role", "body": "Real-time sales copilot for ${global_data.company}."},
                                {
                                    "title": "Rules",
                                    "bullets": [
                                        "Call lookup_competitor when a competitor is named.",
                                        "Call sidecar_skip otherwise.",
                                    ],
                                },
                            ]
                        },
                        "lang": "en-US",
                        "url": f"http://127.0.0.1:{app_port}/events",
                        "hints": ["ACME"],
                        "global_data": {"company": "Initech"},
                        "SWAIG": {
                            "defaults": {"web_hook_url": f"http://127.0.0.1:{app_port}/swaig"},
                            "functions": [
                                {
                                    "function": "lookup_competitor",
                                    "description": "Look up a competitor.",
                                    "parameters": {
                                        "type": "object",
                                        "properties": {
                                            "competitor": {"type": "string", "description": "Company name."}
                                        },
                                        "required": ["competitor"],
                                    },
                                }
                            ],
                        },
                        "params": {"idle_timeout_ms": 5000, "max_iters_per_tick": 5},
                    }
                },
                {"connect": {"from": "+15555550100", "to": f"sip:agent@127.0.0.1:{agent.sip_port}"}},
                {"hangup": {}},
            ]
        },
    }
    path = folder / "sales.json"
    path.write_text(json.dumps(doc))
    return path


async def test_sidecar_watches_a_bridged_baresip_call(tmp_path: Path, llm: ScriptedLlmServer) -> None:
    app = AppServer()
    await app.start()
    customer_mic = mic(
        tmp_path,
        "customer",
        [(1.0, voice(tmp_path, "c1", CUSTOMER_1)), (9.0, None), (0.0, voice(tmp_path, "c2", CUSTOMER_2)), (1.0, None)],
    )
    agent_mic = mic(tmp_path, "agent", [(4.5, voice(tmp_path, "a1", AGENT_1)), (1.0, None)])
    agent = Baresip("agent", workdir=tmp_path / "b", auto_answer=True, mic=agent_mic, mic_tail_s=120).start()
    customer = Baresip("customer", workdir=tmp_path / "a", mic=customer_mic, mic_tail_s=120).start()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[routes]\ndefault = "{route(tmp_path, app.port, agent)}"\n[api]\ntoken = "{TOKEN}"\n'
        f'[llm]\nbase_url = "{llm.base_url}"\n'
    )
    server = ServerProcess(config=config, rtp_base=43100, log_level="INFO").start()  # its own RTP ports
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(server, http)
            stream = EventStream(api, "")  # every call: the customer's call id is not known yet
            await asyncio.wait_for(stream.ready.wait(), 10)
            customer.call(f"sip:sales@127.0.0.1:{server.sip_port}")
            customer.wait_for("established", timeout=15)
            agent.wait_for("established", timeout=15)
            await stream.wait_for("skip", timeout=120)
            call_id = stream.events[0]["call_id"]
            sidecar = f"/api/calls/{call_id}/sidecar"

            # ask: answered from a snapshot; the persistent history does not change
            before = (await api.call("GET", f"{sidecar}/status"))[1]["status"]
            assert (await api.call("POST", f"{sidecar}/ask", {"question": "What's the main concern?"}))[1][
                "reply"
            ] == "+OK queued"
            await stream.wait_for("ask_answer")
            after = (await api.call("GET", f"{sidecar}/status"))[1]["status"]
            assert after["history_size"] == before["history_size"] and after["ticks"] == before["ticks"]

            # a looping model trips each guard, one poke each
            for n in range(3):
                assert (await api.call("POST", f"{sidecar}/poke", {"text": f"Look it up again ({n})."}))[1][
                    "reply"
                ] == "+OK poked"
                await stream.wait_for("error", count=n + 1)
            customer.hangup()
            await stream.wait_for("final", timeout=20)
            await asyncio.sleep(0.5)
            await stream.close()
    finally:
        server.stop()
        customer.stop()
        agent.stop()
        await app.runner.cleanup()

    events = [e["data"] for e in stream.events if e["kind"] == "sidecar"]
    kinds = [e["type"] for e in events]
    # Turn 1 (ended by the agent speaking): lookup via SWAIG, then advice. Turn 2: skip.
    first_tick = kinds[: kinds.index("insight") + 1]
    assert first_tick == [
        "start",
        "turn",
        "request",
        "tool_call",
        "tool_result",
        "action",
        "global_data_change",
        "request",
        "insight",
    ], kinds
    turn1 = events[1]
    # Each leg was transcribed from its own audio (tiny.en over G.711 is not word-perfect).
    assert contains_words(turn1["customer_text"], CUSTOMER_1, 0.5), turn1
    assert turn1["trigger"] == "agent_spoke" and contains_words(turn1["agent_text"], AGENT_1, 0.5), turn1
    assert events[4]["response"] == "ACME charges $99 a seat; we are $79."
    assert kinds[len(first_tick) : len(first_tick) + 3] == ["turn", "request", "skip"]
    turn2 = events[len(first_tick)]
    assert contains_words(turn2["customer_text"], CUSTOMER_2, 0.5) and turn2["trigger"] == "idle_timeout", turn2
    ask = kinds.index("ask_request")
    assert kinds[ask : ask + 3] == ["ask_request", "request", "ask_answer"]
    errors = [e for e in events if e["type"] == "error"]
    assert [(e["error_reason"], e["triggered_by"]) for e in errors] == [
        ("tool_loop", "poke"),
        ("tool_loop", "poke"),
        ("phantom_tool", "poke"),
    ]
    assert errors[0]["detail"] == "the same tool with the same arguments 3 times in a row"
    assert errors[1]["detail"] == "more than 4 tool calls in one tick"
    assert kinds[-2:] == ["stop", "final"]
    final = events[-1]
    assert final["stop_reason"] == "transcribe_close"
    assert final["global_data"] == {"company": "Initech", "last_lookup": "ACME"}
    assert {u["role"] for u in final["transcript"]} == {"customer", "agent"}

    # The SWAIG webhook got the spec's body; the event webhook got every event, wrapped.
    assert app.swaig[0]["function"] == "lookup_competitor" and json.loads(app.swaig[0]["argument"]["raw"]) == {
        "competitor": "ACME"
    }
    assert [b["sidecar_event"]["type"] for b in app.events] == kinds
    assert all(b["call_info"]["call_id"] == call_id for b in app.events)
    assert llm.requests[0].messages[0]["content"].count("Initech") == 1
    print("\nsidecar events:", kinds)
