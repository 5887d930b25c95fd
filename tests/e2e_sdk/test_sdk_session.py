"""A live AI session (real Call, media ticks, turn manager) whose scripted LLM calls SDK agent tools.

The SDK example agent runs as its own process; its SWML is fetched with our call id; the
session gets our `SwaigToolRunner` (as the app wires it) and a scripted LLM that chooses the
tool calls. Asserted: the agent executed the call for that call id, the tool result reached the
LLM and was spoken, and the actions changed the session (global_data).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from mediaserver.pipeline.llm import ToolCallRequested
from mediaserver.swaig.gateway import SwaigToolRunner
from mediaserver.swaig.prompt import render_prompt
from mediaserver.swaig.seam import CallInfo
from tests.e2e_sdk.agent import TOKEN_INVALID, SdkAgent, ai_verb
from tests.scenario.ai_fakes import Scenario, ScriptedLlm, tone

pytest.importorskip("signalwire")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _talk(s: Scenario, ticks: int = 150) -> None:
    """The caller says something (a tone the fake ASR hears as a phrase), then silence."""
    await s.play(tone(700, 800), ticks=ticks)


async def test_quickstart_tool_through_a_live_session(http: aiohttp.ClientSession) -> None:
    with SdkAgent("quickstart_agent.py", "/agent") as agent:
        ai = ai_verb(agent.fetch_swml("ai1"))  # Scenario's call id
        ai.setdefault("params", {})["wait_for_user"] = True
        runner = SwaigToolRunner(ai, CallInfo(call_id="ai1"), http=http)
        llm = ScriptedLlm([ToolCallRequested("c1", "get_time", "{}"), "It is late."])
        s = Scenario(ai, llm=llm, phrases={700: "what time is it"}, tools=runner)
        s.config.prompt = render_prompt(ai["prompt"])  # as the app injects it into AiSessionConfig
        await s.start()
        await _talk(s)
        tool_messages = [m for m in s.session.history if m.get("role") == "tool"]
        assert len(tool_messages) == 1 and tool_messages[0]["content"].startswith("The time is ")
        assert TOKEN_INVALID not in tool_messages[0]["content"]
        assert tool_messages[0] in llm.requests[1]  # the result went back to the LLM
        assert any(text.startswith("It is late") for text in s.tts.spoken)
        assert any("function_executed_successfully" in line and "call_id=ai1" in line for line in agent.lines)
        # the system prompt the session used is the POM rendered as the SDK renders it
        assert llm.requests[0][0] == {"role": "system", "content": "## Role\n\nYou are a helpful assistant.\n"}
        await s.finish()


async def test_info_gatherer_actions_change_the_session(http: aiohttp.ClientSession) -> None:
    with SdkAgent("info_gatherer_example.py", "/contact") as agent:
        ai = ai_verb(agent.fetch_swml("ai1"))
        ai.setdefault("params", {})["wait_for_user"] = True
        runner = SwaigToolRunner(ai, CallInfo(call_id="ai1"), http=http)
        llm = ScriptedLlm(
            [
                ToolCallRequested("c1", "start_questions", "{}"),
                "What is your full name?",
                ToolCallRequested("c2", "submit_answer", json.dumps({"answer": "Ada Lovelace"})),
                "And your phone?",
            ]
        )
        s = Scenario(ai, llm=llm, phrases={700: "ada lovelace"}, tools=runner)
        await s.start()
        await _talk(s)
        await _talk(s)
        gd = s.session.global_data()
        assert gd["question_index"] == 1
        assert gd["answers"] == [{"key_name": "name", "answer": "Ada Lovelace"}]
        # the second request carried the global_data the first call's actions left
        bodies = [e["post_data"] for e in runner.swaig_log]
        assert [b["function"] for b in bodies] == ["start_questions", "submit_answer"]
        assert bodies[1]["global_data"]["question_index"] == 0 and bodies[1]["call_id"] == "ai1"
        await s.finish()
