"""`mediaserver chat`: a text conversation with an `ai` document, run as a user runs it (a subprocess).

The LLM is the scripted OpenAI-compatible server (real HTTP) choosing each tool; the tools are
real: an unmodified SDK example agent's webhook (its SWML fetched by the chat for its own call
id, so the token must be valid), and a local document's DataMap and contexts/steps. The
post-prompt summary goes to a local aiohttp endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.llm_server import ScriptedLlmServer, ToolCall, Turn
from tests.support.server import REPO, free_port


def chat(*args: str, llm: ScriptedLlmServer, stdin: str = "", timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MS_CONFIG"}
    env["MS_LLM_BASE_URL"] = llm.base_url
    return subprocess.run(
        [sys.executable, "-m", "mediaserver", "chat", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )


def events(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def of(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in lines if e["event"] == kind]


@contextlib.contextmanager
def summary_endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local post_prompt_url: each POSTed body is kept."""
    bodies: list[dict[str, Any]] = []

    async def summary(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.json_response({"response": "ok"})

    app = web.Application()
    app.router.add_post("/summary", summary)
    runner = web.AppRunner(app, handle_signals=False)
    port = free_port(socket.SOCK_STREAM)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}/summary", bodies
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_sdk_agent_tool_runs_with_a_valid_token_and_the_json_lines_show_it() -> None:
    pytest.importorskip("signalwire")
    from tests.e2e_sdk.agent import TOKEN_INVALID, SdkAgent

    script = [Turn(text="Hello, how can I help?"), Turn(tool_calls=[ToolCall("get_time", "{}")]), Turn("It is late.")]
    with SdkAgent("quickstart_agent.py", "/agent") as agent, ScriptedLlmServer(script).running() as llm:
        result = chat(agent.url, "--json", "--say", "what time is it", llm=llm)
    lines = events(result)
    call_id = of(lines, "start")[0]["call_id"]
    assert [e["event"] for e in lines if e["event"] in ("agent", "user", "tool_call", "tool_result", "end")] == [
        "agent",
        "user",
        "tool_call",
        "tool_result",
        "agent",
        "end",
    ]
    assert of(lines, "agent")[0]["text"] == "Hello, how can I help?"
    assert of(lines, "user")[0]["text"] == "what time is it"
    assert of(lines, "tool_call")[0]["name"] == "get_time" and of(lines, "tool_call")[0]["arguments"] == {}
    response = of(lines, "tool_result")[0]["response"]
    assert response.startswith("The time is ") and TOKEN_INVALID not in response
    assert of(lines, "agent")[1]["text"] == "It is late."
    # the agent itself says it ran the function, for the chat's call id (its token was valid)
    assert any("function_executed_successfully" in line and f"call_id={call_id}" in line for line in agent.lines)
    # the tool result went back to the LLM, under the POM prompt rendered as the SDK renders it
    assert {"role": "tool", "tool_call_id": "call_2_0", "content": response} in llm.requests[2].messages
    assert llm.requests[0].messages[0]["content"].startswith("## Role\n\nYou are a helpful assistant.")


def test_sdk_agent_gets_the_post_prompt_summary_when_the_input_ends() -> None:
    pytest.importorskip("signalwire")
    from tests.e2e_sdk.agent import SdkAgent

    script = [
        Turn(text="Hello, I can help you with your account."),
        Turn(text="Noted, Ada."),
        Turn(text='{"customer_name": "Ada", "resolved": true}'),
    ]
    with SdkAgent("session_and_state_demo.py", "/session-state-demo") as agent:
        with ScriptedLlmServer(script).running() as llm:
            result = chat(agent.url, "--json", "--say", "my name is Ada", llm=llm)
        lines = events(result)
        assert [e["text"] for e in of(lines, "agent")] == ["Hello, I can help you with your account.", "Noted, Ada."]
        summary = of(lines, "summary")[0]
        assert summary["text"] == '{"customer_name": "Ada", "resolved": true}'
        assert summary["url"] == f"{agent.base}/session-state-demo/post_prompt/"  # shown without token or password
        # the end of input hung up; the agent's on_summary got it (its post_prompt token was valid)
        deadline = time.monotonic() + 10
        while not any("Customer: Ada, Resolved: True" in line for line in agent.lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any("Customer: Ada, Resolved: True" in line for line in agent.lines), agent.lines[-20:]
    # the summary request was the post_prompt over the conversation as it went
    assert "user: my name is Ada" in llm.requests[2].messages[-1]["content"]


DOCUMENT = """
version: 1.0.0
sections:
  main:
    - answer: {}
    - ai:
        prompt:
          text: You help callers with opening hours.
          contexts:
            default:
              steps:
                - name: greet
                  text: Greet the caller and ask which day.
                  valid_steps: [hours]
                - name: hours
                  text: Tell the caller the hours of the day asked.
        post_prompt:
          text: Summarize the call in one sentence.
        post_prompt_url: "SUMMARY_URL"
        params:
          wait_for_user: true
        SWAIG:
          functions:
            - function: opening_hours
              description: The opening hours on one day.
              parameters:
                type: object
                properties:
                  day: {type: string}
              data_map:
                expressions:
                  - string: "${args.day}"
                    pattern: "(?i)^mon"
                    output:
                      response: "On ${args.day} we are open from 8 to 5."
                      action:
                        - set_global_data: {day_asked: "${args.day}"}
                output:
                  response: "Ask which day."
"""


def test_local_document_datamap_steps_and_post_prompt_summary(tmp_path: Path) -> None:
    script = [
        Turn(tool_calls=[ToolCall("next_step", json.dumps({"step": "hours"}))]),
        Turn(tool_calls=[ToolCall("opening_hours", json.dumps({"day": "Monday"}))]),
        Turn(text="We are open from 8 to 5 on Monday."),
        Turn(text="The caller asked about Monday's hours."),
    ]
    with summary_endpoint() as (url, bodies), ScriptedLlmServer(script).running() as llm:
        document = tmp_path / "hours.yaml"
        document.write_text(DOCUMENT.replace("SUMMARY_URL", url))
        # stdin lines are the caller's turns; /quit hangs up, and the summary is then delivered
        result = chat(str(document), "--json", llm=llm, stdin="when are you open on monday?\n/quit\nnot read\n")
        lines = events(result)
        assert [e["name"] for e in of(lines, "tool_call")] == ["next_step", "opening_hours"]
        assert of(lines, "ai_change_step") == [{"event": "ai_change_step", "name": "hours"}]
        datamap = of(lines, "tool_result")[1]
        assert datamap["response"] == "On Monday we are open from 8 to 5."
        assert of(lines, "action") == [
            {
                "event": "action",
                "function": "opening_hours",
                "action": "set_global_data",
                "value": {"day_asked": "Monday"},
            }
        ]
        assert [e["text"] for e in of(lines, "agent")] == ["We are open from 8 to 5 on Monday."]
        assert [e["text"] for e in of(lines, "user")] == ["when are you open on monday?"]  # nothing after /quit
        assert of(lines, "summary") == [
            {"event": "summary", "text": "The caller asked about Monday's hours.", "url": url}
        ]
        assert lines[-1]["event"] == "end" and lines[-1]["result"] == "success"
        # the third request ran in the new step, the summary went to the endpoint with the action's data
        assert "Tell the caller the hours" in llm.requests[1].messages[0]["content"]
        assert len(bodies) == 1
        assert bodies[0]["post_prompt_data"]["raw"] == "The caller asked about Monday's hours."
        assert bodies[0]["global_data"]["day_asked"] == "Monday"


def test_bad_sources_are_clear_errors_not_tracebacks(tmp_path: Path) -> None:
    with ScriptedLlmServer([]).running() as llm:
        missing = chat(str(tmp_path / "nope.yaml"), "--say", "hi", llm=llm)
        assert missing.returncode == 2 and "not a route" in missing.stderr and "Traceback" not in missing.stderr
        plain = tmp_path / "plain.yaml"
        plain.write_text("sections:\n  main:\n    - hangup: {}\n")
        no_ai = chat(str(plain), "--say", "hi", llm=llm)
        assert no_ai.returncode == 1 and "has no ai verb" in no_ai.stderr and "Traceback" not in no_ai.stderr
        url = f"http://127.0.0.1:{free_port(socket.SOCK_STREAM)}/agent"  # nothing listens
        refused = chat(url, "--say", "hi", llm=llm)
        assert refused.returncode == 1 and url in refused.stderr and "Traceback" not in refused.stderr
