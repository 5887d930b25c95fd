"""The SWAIG-side `ai.params` keys that mediaserver/swaig/coverage.py calls honoured, through the runner.

`SwaigToolRunner` is what the session calls for every tool; these drive it as the session does
(`invoke`) against a local agent and check what the key changed, beside a run without the key.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from mediaserver.swaig.gateway import SwaigToolRunner
from mediaserver.swaig.seam import CallInfo, ToolInvocation
from tests.unit.swaig.agent_server import FakeAgent
from tests.unit.swaig.fakes import FakeControl

CALL = CallInfo(call_id="call-7", ai_session_id="sess-7", caller_id_name="Ada", caller_id_num="+15551230000")
NOV_14_2023_22_13_UTC = 1_700_000_000.0


def _ai(agent: FakeAgent | None, params: dict[str, Any]) -> dict[str, Any]:
    functions = [{"function": "lookup", "description": "Look up", "web_hook_url": agent.url("/hook")}] if agent else []
    return {
        "prompt": {"text": "t"},
        "params": params,
        "SWAIG": {"functions": functions, "native_functions": ["check_time"]},
    }


async def test_app_name_and_conversation_id_reach_the_webhook() -> None:
    agent = FakeAgent()
    async with agent.running(), aiohttp.ClientSession() as http:
        for params in ({"app_name": "clinic", "conversation_id": "conv-9"}, {}):
            runner = SwaigToolRunner(_ai(agent, params), CALL, http=http)
            out = await runner.invoke(ToolInvocation("1", "lookup", "{}"), FakeControl())
            assert out.response == "ok"
    named, plain = (seen.json for seen in agent.seen)
    assert (named["app_name"], named["conversation_id"]) == ("clinic", "conv-9")
    assert plain["app_name"] == "swml app" and "conversation_id" not in plain


async def test_local_tz_is_the_zone_of_check_time() -> None:
    said = []
    for params in ({"local_tz": "Europe/Paris"}, {"local_tz": "Asia/Tokyo"}, {}):
        runner = SwaigToolRunner(_ai(None, params), CALL, now_s=lambda: NOV_14_2023_22_13_UTC)
        out = await runner.invoke(ToolInvocation("1", "check_time", "{}"), FakeControl())
        said.append(out.response)
    assert said == [
        "The current time is 11:13 PM on Tuesday, November 14, 2023 (CET).",
        "The current time is 7:13 AM on Wednesday, November 15, 2023 (JST).",
        "The current time is 4:13 PM on Tuesday, November 14, 2023 (CST).",  # US/Central, the default
    ]
