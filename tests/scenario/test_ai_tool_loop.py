"""The `ai` verb on the shared tool loop: the round limit, as the session's history sees it."""

from __future__ import annotations

import logging

import pytest

from mediaserver.agents.ai.reply import MAX_TOOL_ROUNDS
from mediaserver.agents.ai.tools import StaticTool, StaticToolRunner, ToolOutcome
from mediaserver.pipeline.llm import ToolCallRequested
from tests.scenario.ai_fakes import Scenario, ScriptedLlm


async def test_a_model_that_only_calls_tools_stops_at_the_round_limit(caplog: pytest.LogCaptureFixture) -> None:
    clock = StaticTool("clock", "The time", lambda args, control: ToolOutcome("noon"))
    runner = StaticToolRunner([clock])
    script = [ToolCallRequested(f"c{n}", "clock", "{}") for n in range(MAX_TOOL_ROUNDS + 1)]
    llm = ScriptedLlm(script)
    s = Scenario({"prompt": {"text": "t"}}, llm=llm, tools=runner)
    with caplog.at_level(logging.WARNING, logger="mediaserver.agents.ai.reply"):
        await s.start()
        await s.play(ticks=40)
    assert len(llm.requests) == MAX_TOOL_ROUNDS and len(runner.invocations) == MAX_TOOL_ROUNDS
    assert "tool rounds exhausted" in caplog.text
    history = s.session.history
    assert [m["role"] for m in history] == ["assistant", "tool"] * MAX_TOOL_ROUNDS
    assert [m["tool_call_id"] for m in history[1::2]] == [f"c{n}" for n in range(MAX_TOOL_ROUNDS)]
    assert all(m["content"] is None for m in history[::2])
    assert llm.requests[-1][-2:] == history[-4:-2]  # the last request saw the round before it
    assert not s.events("ai_failure")
    await s.finish()
