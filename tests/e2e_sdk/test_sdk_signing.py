"""A real SDK agent with a signing key: our signed SWML fetch and signed SWAIG calls get through.

The quickstart example runs as its own process with `SIGNALWIRE_SIGNING_KEY`; the SDK then
refuses (403) every unsigned POST to its root, /swaig and /post_prompt. The fetch uses
`kernel/fetch.py` and the session our `SwaigToolRunner`, both with the key as the app passes
`[swaig] signing_key`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from mediaserver.kernel.fetch import FetchError, fetch_swml
from mediaserver.pipeline.llm import ToolCallRequested
from mediaserver.swaig.gateway import SwaigToolRunner
from mediaserver.swaig.seam import CallInfo
from tests.e2e_sdk.agent import TOKEN_INVALID, SdkAgent, call_body
from tests.scenario.ai_fakes import Scenario, ScriptedLlm, tone

pytest.importorskip("signalwire")

KEY = "PSK_test_signing_key"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_signed_fetch_and_signed_tool_call_pass_an_sdk_agent_with_a_signing_key(
    http: aiohttp.ClientSession,
) -> None:
    with SdkAgent("quickstart_agent.py", "/agent", env={"SIGNALWIRE_SIGNING_KEY": KEY}) as agent:
        with pytest.raises(FetchError, match="403"):
            await fetch_swml(http, agent.url, call_body("ai1"), 30.0)  # unsigned: refused
        document = await fetch_swml(http, agent.url, call_body("ai1"), 30.0, signing_key=KEY)
        ai = next(verb.params for verb in document.sections["main"] if verb.name == "ai")
        ai = dict(ai)
        ai["params"] = {**ai.get("params", {}), "wait_for_user": True}
        results = {}
        for key in (KEY, "not-the-key"):
            runner = SwaigToolRunner(ai, CallInfo(call_id="ai1"), http=http, signing_key=key)
            llm = ScriptedLlm([ToolCallRequested("c1", "get_time", "{}"), "It is late."])
            s = Scenario(ai, llm=llm, phrases={700: "what time is it"}, tools=runner)
            await s.start()
            await s.play(tone(700, 800), ticks=150)
            await s.finish()
            results[key] = next(m["content"] for m in s.session.history if m.get("role") == "tool")
    assert results[KEY].startswith("The time is ") and TOKEN_INVALID not in results[KEY]
    assert "HTTP 403" in results["not-the-key"]  # the SDK refused the wrongly signed call
