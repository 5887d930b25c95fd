"""Unmodified SDK example agents, each in its own process, driven through our SwaigToolRunner.

For each agent: POST the call body to fetch its SWML (tokens minted for our call id), build the
runner from the `ai` verb exactly as the server would, invoke its tools as the LLM would, and
assert what the agent received (its own request log), the replies (never "security token …
invalid") and the actions' effects through a recording AiControl.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mediaserver.swaig.gateway import SwaigToolRunner
from mediaserver.swaig.hooks import run_startup_hook
from mediaserver.swaig.post_prompt import deliver_summary
from mediaserver.swaig.seam import CallInfo, ToolInvocation
from tests.e2e_sdk.agent import TOKEN_INVALID, SdkAgent, ai_verb
from tests.unit.swaig.fakes import FakeControl

pytest.importorskip("signalwire")

CALL_ID = "3f0e1c9a-e2e-call"
DATA_MAP_DEMO = json.loads((Path(__file__).resolve().parents[1] / "fixtures/swaig/data_map_demo.swml.json").read_text())


def _agent(example: str, route: str) -> Iterator[SdkAgent]:
    agent = SdkAgent(example, route).start()
    try:
        yield agent
    finally:
        agent.stop()


@pytest.fixture(scope="module")
def quickstart() -> Iterator[SdkAgent]:
    yield from _agent("quickstart_agent.py", "/agent")


@pytest.fixture(scope="module")
def session_state() -> Iterator[SdkAgent]:
    yield from _agent("session_and_state_demo.py", "/session-state-demo")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _runner(agent: SdkAgent, http: aiohttp.ClientSession, call_id: str = CALL_ID) -> tuple[SwaigToolRunner, dict]:
    ai = ai_verb(agent.fetch_swml(call_id))
    return SwaigToolRunner(ai, CallInfo(call_id=call_id, caller_id_num="+15551230000"), http=http), ai


async def _logged(agent: SdkAgent, match: Callable[[str], bool], timeout_s: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not any(match(line) for line in list(agent.lines)):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def _call(name: str, args: dict[str, Any] | None = None, n: int = 1) -> ToolInvocation:
    return ToolInvocation(f"call_{n}", name, json.dumps(args or {}))


async def test_quickstart_tool_runs_with_its_token(quickstart: SdkAgent, http: aiohttp.ClientSession) -> None:
    runner, ai = _runner(quickstart, http)
    url = ai["SWAIG"]["functions"][0]["web_hook_url"]
    assert "__token=" in url and "@" in url  # the SDK's per-function tokened URL, with userinfo
    assert [t["function"]["name"] for t in runner.tool_definitions()] == ["get_time"]
    outcome = await runner.invoke(_call("get_time"), FakeControl())
    assert outcome.response is not None and outcome.response.startswith("The time is ")
    assert TOKEN_INVALID not in outcome.response
    # The agent logs after it has answered; its output is read by a thread, so give it a moment.
    assert await _logged(quickstart, lambda line: "function_executed_successfully" in line and CALL_ID in line)


async def test_token_is_bound_to_the_fetch_call_id(quickstart: SdkAgent, http: aiohttp.ClientSession) -> None:
    """Negative control: the same SWML used with another call id is refused by the agent."""
    ai = ai_verb(quickstart.fetch_swml("call-one"))
    runner = SwaigToolRunner(ai, CallInfo(call_id="call-two"), http=http)
    outcome = await runner.invoke(_call("get_time"), FakeControl())
    assert outcome.response is not None and TOKEN_INVALID in outcome.response


async def test_expansion_hangup_and_summary(session_state: SdkAgent, http: aiohttp.ClientSession) -> None:
    runner, ai = _runner(session_state, http)
    control = FakeControl(ai["global_data"])
    assert control.global_data()["status"] == "active"

    # SDK 3.7.5's own example handler takes (field, value) but is called as (args, raw_data):
    # the agent answers with its error text, exactly as `swaig-test --exec` shows. Our side
    # delivers it as the tool result (a failure the model can speak), not a crash.
    out = await runner.invoke(_call("update_customer_info", {"field": "customer_name", "value": "Ada"}, 1), control)
    assert out.response is not None and out.response.startswith("Error executing function 'update_customer_info'")
    control.set_global_data({"customer_name": "Ada"})
    runner.begin_turn()

    # the agent answers with ${global_data.*} templates; the server expands them from current state
    out = await runner.invoke(_call("get_session_info", {}, 2), control)
    assert out.response is not None and "active, Ada," in out.response

    bodies = [e["post_data"] for e in runner.swaig_log]
    assert bodies[1]["global_data"]["customer_name"] == "Ada"  # the body carries the current global_data
    assert all(b["call_id"] == CALL_ID for b in bodies)

    summary = json.dumps({"customer_name": "Ada", "issue_type": "billing", "resolved": True, "notes": "ok"})
    reply = await deliver_summary(
        http,
        ai["post_prompt_url"],
        summary,
        call=runner.call,
        params=runner.params,
        global_data=control.global_data(),
        call_log=[],
        swaig_log=runner.swaig_log,
    )
    assert reply.ok, reply.error
    assert any("Customer: Ada, Resolved: True" in line for line in session_state.lines)


async def test_info_gatherer_keeps_its_state_in_global_data(http: aiohttp.ClientSession) -> None:
    """The InfoGatherer prefab keeps state only in global_data: each body must carry the latest."""
    with SdkAgent("info_gatherer_example.py", "/contact") as agent:
        runner, ai = _runner(agent, http)
        control = FakeControl(ai["global_data"])
        out = await runner.invoke(_call("start_questions"), control)
        assert out.response is not None and "What is your full name?" in out.response
        answers = ["Ada Lovelace", "555 0100", "36", "billing"]
        for n, answer in enumerate(answers, 2):
            runner.begin_turn()
            out = await runner.invoke(_call("submit_answer", {"answer": answer}, n), control)
            assert out.response is not None and TOKEN_INVALID not in out.response
            assert {"replace_in_history": True} in out.actions
        final = control.global_data()
        assert final["question_index"] == 4
        assert [a["answer"] for a in final["answers"]] == answers


async def test_summary_without_token_is_refused(session_state: SdkAgent, http: aiohttp.ClientSession) -> None:
    """Negative control for the post-prompt token: the URL without `__token` gets 403."""
    runner, ai = _runner(session_state, http)
    url = ai["post_prompt_url"].split("?")[0]
    reply = await deliver_summary(http, url, "{}", call=runner.call, params={}, global_data={}, call_log=[])
    assert not reply.ok and reply.status == 403


async def test_startup_hook_absent_is_a_no_op(quickstart: SdkAgent, http: aiohttp.ClientSession) -> None:
    runner, _ = _runner(quickstart, http)
    control = FakeControl()
    assert await run_startup_hook(runner, control) is False
    assert control.calls == []


async def test_data_map_demo_runs_inside_the_server(http: aiohttp.ClientSession) -> None:
    """data_map tools run locally; the odd action names the demo emits are ignored, not fatal.

    data_map_demo.py only prints its functions (it starts no server), so its SWML comes from
    `swaig-test --dump-swml` (tests/fixtures/swaig/data_map_demo.swml.json).
    """
    runner = SwaigToolRunner(ai_verb(DATA_MAP_DEMO), CallInfo(call_id=CALL_ID), http=http, webhook_timeout_s=2)
    control = FakeControl()
    out = await runner.invoke(_call("file_control", {"command": "start", "filename": "intro.mp3"}), control)
    assert out.response == "Starting playback"
    assert out.actions == [{"start_playback": {"file": "intro.mp3"}}] and control.calls == []


async def test_contexts_demo_live_swml(http: aiohttp.ClientSession) -> None:
    with SdkAgent("contexts_demo.py", "/advanced-contexts-demo") as agent:
        runner, _ = _runner(agent, http)
        tools = {t["function"]["name"]: t["function"] for t in runner.tool_definitions()}
        assert tools["next_step"]["parameters"]["properties"]["step"]["enum"] == ["determine_form_factor"]
        control = FakeControl()
        out = await runner.invoke(_call("change_context", {"context": "manager"}), control)
        assert out.response == "Now in context 'manager'. Follow its instructions."
        assert ("change_context", "manager") in control.calls


async def test_gather_info_demo_live_swml(http: aiohttp.ClientSession) -> None:
    with SdkAgent("gather_info_demo.py", "/patient-intake") as agent:
        runner, _ = _runner(agent, http)
        assert [t["function"]["name"] for t in runner.tool_definitions()] == ["gather_submit"]
        control = FakeControl()
        out = await runner.invoke(_call("gather_submit", {"answer": "Ada Lovelace"}), control)
        assert out.response is not None and "date of birth" in out.response
        assert control.global_data() == {"patient_demographics": {"full_name": "Ada Lovelace"}}
