"""SWAIG features that need the live session: basic auth from the defaults, ai_agents_global_data
shared with ai_sidecar, check_for_input polling, function fillers, wait_file and speech fillers.

Each drives a real AiSession (scripted LLM, fake TTS) against a local aiohttp agent.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from mediaserver.pipeline.llm import LlmSettings, ToolCallRequested
from tests.scenario.ai_fakes import ScriptedLlm, WordTts
from tests.scenario.swaig_harness import SwaigCall, dominant_hz, wav_file
from tests.unit.sidecar.fakes import BODY, Harness
from tests.unit.sidecar.fakes import ScriptedLlm as SidecarLlm
from tests.unit.swaig.agent_server import FakeAgent
from tests.unit.swaig.datamap_gen import free_port


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _fn(name: str, url: str = "", **extra: Any) -> dict[str, Any]:
    return {"function": name, "description": name, **({"web_hook_url": url} if url else {}), **extra}


def _calls(*names: str) -> ScriptedLlm:
    return ScriptedLlm([*(ToolCallRequested(f"c{i}", n, "{}") for i, n in enumerate(names)), "Done."])


async def test_basic_auth_from_the_defaults_unless_the_url_or_function_has_its_own() -> None:
    async with FakeAgent().running() as agent:
        ai = {
            "prompt": {"text": "t"},
            "SWAIG": {
                "defaults": {
                    "web_hook_url": agent.url("/default"),
                    "web_hook_auth_user": "dflt",
                    "web_hook_auth_password": "p@ss:word",
                },
                "functions": [
                    _fn("a"),  # the defaults' URL and auth
                    _fn("b", agent.url("/own?__token=t")),  # its own URL, the defaults' auth
                    _fn("c", agent.url("/userinfo", "mine:pw")),  # userinfo wins
                    _fn("d", agent.url("/fn"), web_hook_auth_user="fnuser", web_hook_auth_password="fnpw"),
                ],
            },
        }
        s = SwaigCall(ai, llm=_calls("a", "b", "c", "d"))
        await s.start()
        await s.until(lambda: len(agent.seen) == 4)
        await s.close()
    auth = {seen.path: seen.headers.get("Authorization") for seen in agent.seen}
    assert auth == {
        "/default": _basic("dflt", "p@ss:word"),
        "/own": _basic("dflt", "p@ss:word"),
        "/userinfo": _basic("mine", "pw"),
        "/fn": _basic("fnuser", "fnpw"),
    }
    assert agent.seen[1].query == {"__token": "t"}


async def test_ai_agents_global_data_is_read_at_start_written_on_change_and_shared_with_the_sidecar() -> None:
    variables: dict[str, Any] = {"ai_agents_global_data": {"tier": "gold", "seen": 1}}
    async with FakeAgent().running() as agent:
        agent.replies["/f"] = [{"response": "ok", "action": [{"set_global_data": {"order": 42}}]}]
        ai = {"prompt": {"text": "t"}, "global_data": {"tier": "basic", "lang": "en"}, "SWAIG": {"functions": []}}
        ai["SWAIG"]["functions"] = [_fn("f", agent.url("/f"))]  # type: ignore[index]
        s = SwaigCall(ai, llm=_calls("f"), variables=variables)
        assert variables["ai_agents_global_data"] == {"tier": "gold", "seen": 1, "lang": "en"}  # written at once
        await s.start()
        await s.until(lambda: "order" in variables["ai_agents_global_data"])
        await s.close()
        # the channel's state beats the verb's declared defaults, as the sidecar merges it
        assert agent.seen[0].json["global_data"] == {"tier": "gold", "lang": "en", "seen": 1}
        assert variables["ai_agents_global_data"] == {"tier": "gold", "seen": 1, "lang": "en", "order": 42}

        sidecar = Harness(SidecarLlm([]))  # an ai_sidecar started later on the same script
        sidecar.variables = variables
        await sidecar.start({**BODY, "global_data": {}})
        assert sidecar.engine.global_data["order"] == 42
        sidecar.engine.change_global_data({"stage": "closing"}, ["seen"])
        await sidecar.manager.stop("call-a")

        agent.seen.clear()
        again = SwaigCall(ai, llm=_calls("f"), variables=variables)  # a second ai verb sees it all
        await again.start()
        await again.until(lambda: bool(agent.seen))
        await again.close()
    assert agent.seen[0].json["global_data"] == {"tier": "gold", "lang": "en", "order": 42, "stage": "closing"}


async def test_persist_global_data_false_neither_reads_nor_writes_the_variable() -> None:
    variables: dict[str, Any] = {"ai_agents_global_data": {"tier": "gold"}}
    ai = {"prompt": {"text": "t"}, "global_data": {"tier": "basic"}, "params": {"persist_global_data": "false"}}
    s = SwaigCall(ai, llm=ScriptedLlm(["Hi."]), variables=variables)
    await s.start()
    s.session.set_global_data({"x": 1})
    await s.close()
    assert s.session.global_data() == {"tier": "basic", "x": 1}
    assert variables == {"ai_agents_global_data": {"tier": "gold"}}


async def test_check_for_input_is_polled_at_input_poll_freq_and_new_input_is_a_caller_turn() -> None:
    periods: list[float] = []

    async def fast_sleep(seconds: float) -> None:  # the poll period is asserted, not waited for
        periods.append(seconds)
        await asyncio.sleep(0.02)

    async with FakeAgent().running() as agent:
        agent.replies["/check_for_input"] = [
            {"status": "success", "new_input": False, "messages": []},
            {"status": "success", "new_input": True, "messages": ["my email is ann at example dot com"]},
            {"response": "ok", "action": [{"user_input": "and my name is Ann"}]},  # a SWAIG-shaped reply
            {"status": "success", "new_input": False, "messages": []},
        ]
        ai = {
            "prompt": {"text": "t"},
            "params": {"input_poll_freq": 1500, "wait_for_user": True, "conversation_id": "conv-7"},
            "SWAIG": {"functions": [_fn("check_for_input", agent.url("/check_for_input"))]},
        }
        s = SwaigCall(ai, llm=ScriptedLlm(["Got your email.", "Thanks Ann."]), sleep=fast_sleep)
        await s.start()
        await s.until(lambda: len([m for m in s.session.history if m["role"] == "assistant"]) == 2)
        polls = len(agent.seen)
        await s.close()
        await asyncio.sleep(0.1)
        assert len(agent.seen) == polls  # polling stops with the AI
    assert periods[:3] == [1.5, 1.5, 1.5]
    body = agent.seen[0].json
    assert body["function"] == "check_for_input" and body["conversation_id"] == "conv-7"
    users = [m["content"] for m in s.session.history if m["role"] == "user"]
    assert users == ["my email is ann at example dot com", "and my name is Ann"]
    assert s.llm.requests[0][-1] == {"role": "user", "content": "my email is ann at example dot com"}
    assert "check_for_input" not in str(s.llm.requests)  # a hook: never offered to the LLM


async def test_function_fillers_speak_and_wait_file_plays_while_the_webhook_runs(tmp_path: Path) -> None:
    music = wav_file(tmp_path / "hold.wav", 1000, 200)  # 10 frames of 1 kHz
    async with FakeAgent().running() as agent:
        agent.replies["/slow"] = [0.6, {"response": "Found it."}]  # the agent takes 600 ms
        ai = {
            "prompt": {"text": "t"},
            "params": {"wait_for_user": True},
            "SWAIG": {
                "functions": [
                    _fn(
                        "slow",
                        agent.url("/slow"),
                        fillers={"en-US": ["Let me look that up"], "default": ["One moment"]},
                        wait_file=str(music),
                        wait_file_loops=2,
                        wait_for_fillers=True,
                    )
                ]
            },
        }
        tts = WordTts()
        s = SwaigCall(ai, llm=_calls("slow"), tts=tts)
        await s.start()
        s.session.add_user_input("find my order")
        await s.until(lambda: agent.seen and any(m.get("content") == "Done." for m in s.session.history))
        await s.play(ticks=30)
        await s.close()
    assert tts.spoken[:2] == ["Let me look that up", "Done."]
    assert all(m.get("content") != "Let me look that up" for m in s.session.history)  # not in the LLM history
    manual = [e for e in s.session.raw_call_log() if e["role"] == "assistant-manual"]
    assert [e["content"] for e in manual] == ["Let me look that up"]
    voiced = s.agent_ticks()
    music_ticks = [t for t in voiced if abs(dominant_hz(s.agent[t - 1]) - 1000) < 30]
    filler_ticks = [t for t in voiced if abs(dominant_hz(s.agent[t - 1]) - 300) < 30]
    assert len(music_ticks) == 20  # two loops of 200 ms, then the function answered
    assert max(filler_ticks[:20]) < min(music_ticks)  # wait_for_fillers: the filler first


class SlowFirstTokenLlm(ScriptedLlm):
    """The first reply's first token comes after `delay_s`: a slow LLM turn."""

    def __init__(self, script: list[Any], delay_s: float) -> None:
        super().__init__(script)
        self.delay_s = delay_s

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[Any]:
        if not self.requests:
            await asyncio.sleep(self.delay_s)
        async for event in super().stream(messages, tools=tools, settings=settings):
            yield event


async def test_speech_fillers_break_the_silence_of_a_slow_llm_turn_only() -> None:
    ai = {
        "prompt": {"text": "t"},
        "languages": [{"name": "English", "code": "en-US", "voice": "x", "speech_fillers": ["umm"]}],
    }
    tts = WordTts()
    s = SwaigCall(ai, llm=SlowFirstTokenLlm(["Hello there.", "Sure."], delay_s=1.2), tts=tts)
    await s.start()  # the greeting turn: its first token after 1.2 s
    await s.until(lambda: any(m.get("content") == "Hello there." for m in s.session.history), pause_s=0.01)
    s.session.add_user_input("hi")  # a quick turn: no filler
    await s.until(lambda: any(m.get("content") == "Sure." for m in s.session.history))
    await s.close()
    assert tts.spoken == ["umm", "Hello there.", "Sure."]
    assert [m["content"] for m in s.session.history if m["role"] == "assistant"] == ["Hello there.", "Sure."]
    assert np.count_nonzero([abs(dominant_hz(p) - 300) < 30 for p in s.agent]) > 0


async def test_wait_file_over_http_plays_and_a_missing_one_is_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = wav_file(tmp_path / "hold.wav", 1000, 200).read_bytes()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=data) if request.path == "/hold.wav" else web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        s = SwaigCall({"prompt": {"text": "t"}, "params": {"wait_for_user": True}}, llm=ScriptedLlm([]))
        await s.start()
        with caplog.at_level(logging.WARNING):
            missing = asyncio.ensure_future(s.session.play_file(f"http://127.0.0.1:{port}/gone.wav", 1))
            await s.until(missing.done)
        assert "call ai1: wait_file http://127.0.0.1" in caplog.text and "HTTP 404" in caplog.text
        played = asyncio.ensure_future(s.session.play_file(f"http://127.0.0.1:{port}/hold.wav", 1))
        await s.until(played.done)
        await s.close()
    finally:
        await runner.cleanup()
    assert len([t for t in s.agent_ticks() if abs(dominant_hz(s.agent[t - 1]) - 1000) < 30]) == 10
