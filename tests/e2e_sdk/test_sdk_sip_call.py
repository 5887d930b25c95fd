"""End to end: a SIP call through a real server process reaches an unmodified SDK agent.

The agent runs as its own process (`SdkAgent`), the server fetches its SWML per call from a URL
route (the SIP Call-ID is the call_id the agent's tokens are minted for), the scripted LLM picks
the tool calls, and the test reads what the agent itself logged: the tool ran with a valid token,
and after the hangup the post-prompt summary reached its `on_summary`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from benchmarks.sipclient import SipCaller
from tests.e2e_sdk.agent import PASSWORD, TOKEN_INVALID, USER, SdkAgent
from tests.support.llm_server import ScriptedLlmServer, ToolCall, Turn
from tests.support.server import ServerProcess

pytest.importorskip("signalwire")
pytestmark = pytest.mark.slow


def server_config(tmp: Path, agent: SdkAgent, llm_url: str) -> Path:
    cfg = tmp / "e2e.toml"
    cfg.write_text(
        f'[routes.users]\nagent = "http://{USER}:{PASSWORD}@127.0.0.1:{agent.port}{agent.route}"\n'
        f'[llm]\nbase_url = "{llm_url}"\nmodel = "scripted"\napi_key_env = ""\n'
    )
    return cfg


async def wait_for_line(agent: SdkAgent, needle: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(agent.lines):
            if needle in line:
                return line
        await asyncio.sleep(0.2)
    raise AssertionError(f"{needle!r} not in the agent's output:\n" + "\n".join(agent.lines[-30:]))


async def place_call(server: ServerProcess) -> SipCaller:
    caller = SipCaller(("127.0.0.1", server.sip_port), user="agent", codec="PCMU")
    await caller.open()
    final = await caller.call(timeout=30)
    assert final.status == 200, final.raw
    return caller


async def test_quickstart_tool_runs_with_its_token_over_sip(tmp_path: Path) -> None:
    script = [Turn(tool_calls=[ToolCall("get_time", "{}")]), Turn(text="It is late, goodbye.")]
    with SdkAgent("quickstart_agent.py", "/agent") as agent:
        async with ScriptedLlmServer(script) as llm:
            server = ServerProcess(config=server_config(tmp_path, agent, llm.base_url), rtp_base=44000).start()
            try:
                caller = await place_call(server)
                try:
                    line = await wait_for_line(agent, "function_executed_successfully")
                    assert caller.call_id in line  # the token was minted for this call's SIP Call-ID
                    await asyncio.sleep(3.0)  # the reply after the tool result is spoken
                    await caller.hangup()
                finally:
                    caller.close()
                server.wait_idle(15)
            finally:
                server.stop()
        assert len(llm.kept_requests) >= 2
        tool_messages = [m for m in llm.kept_requests[1].messages if m.get("role") == "tool"]
        assert tool_messages and tool_messages[0]["content"].startswith("The time is")
        assert TOKEN_INVALID not in tool_messages[0]["content"]
        assert any(
            r.get("event") == "tts_first_audio" or r.get("event") == "turn_tts_first_audio"
            for r in server.records(caller.call_id)
        )


async def test_post_prompt_summary_reaches_on_summary_after_hangup(tmp_path: Path) -> None:
    script = [
        Turn(text="Hello, I can help you with your account."),
        Turn(text='{"customer_name": "Ada", "resolved": true}'),
    ]
    with SdkAgent("session_and_state_demo.py", "/session-state-demo") as agent:
        async with ScriptedLlmServer(script) as llm:
            server = ServerProcess(config=server_config(tmp_path, agent, llm.base_url), rtp_base=44100).start()
            try:
                caller = await place_call(server)
                try:
                    await asyncio.sleep(4.0)  # the first reply is spoken
                    await caller.hangup()
                finally:
                    caller.close()
                line = await wait_for_line(agent, "Customer: Ada")
                assert "Resolved: True" in line
                server.wait_idle(15)
            finally:
                server.stop()
        summary_request = llm.requests[-1].messages
        assert summary_request[0]["role"] == "system"  # the post_prompt
        assert "Hello, I can help you" in summary_request[-1]["content"]  # the conversation as heard
