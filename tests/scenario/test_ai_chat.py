"""The chat (agents/ai/chat.py) in process: a real AiSession on a text call, the scripted fake LLM.

What a chat must keep of a call: the opening's initial sleep and greeting (in virtual time, not
on the wall clock), SWAIG actions that speak and hang up (the chat ends with the agent), and an
agent reply printed as one line, however the clause splitter cut it for TTS.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mediaserver.agents.ai.chat import ChatOptions, ChatPrinter, run_chat
from mediaserver.pipeline.llm import ToolCallRequested
from tests.scenario.ai_fakes import ScriptedLlm


async def lines_of(*texts: str) -> AsyncIterator[str]:
    for text in texts:
        yield text


def write(tmp_path: Path, ai: dict[str, Any]) -> Path:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"version": "1.0.0", "sections": {"main": [{"ai": ai}]}}))
    return path


async def chat(tmp_path: Path, ai: dict[str, Any], script: list[Any], *said: str, as_json: bool = True) -> str:
    out = io.StringIO()
    options = ChatOptions(llm=ScriptedLlm(script), settle_s=0.05, turn_timeout_s=10)
    await run_chat(write(tmp_path, ai), options, ChatPrinter(out, as_json=as_json), lines_of(*said))
    return out.getvalue()


def events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


async def test_the_greeting_comes_after_the_initial_sleep_in_virtual_time(tmp_path: Path) -> None:
    ai = {"prompt": {"text": "Be brief."}, "params": {"static_greeting": "Welcome!", "initial_sleep_ms": 5000}}
    started = time.monotonic()
    out = events(await chat(tmp_path, ai, ["Sure."], "hello"))
    assert time.monotonic() - started < 4  # the 5 s sleep passed on the call's tick clock, not the wall's
    assert [(e["event"], e.get("text")) for e in out if e["event"] in ("agent", "user")] == [
        ("agent", "Welcome!"),
        ("user", "hello"),
        ("agent", "Sure."),
    ]


async def test_a_say_and_hangup_action_end_the_chat_with_the_agent(tmp_path: Path) -> None:
    ai = {
        "prompt": {"text": "Be brief."},
        "params": {"wait_for_user": True},
        "SWAIG": {
            "functions": [
                {
                    "function": "bye",
                    "description": "End the call.",
                    "parameters": {"type": "object", "properties": {}},
                    "data_map": {"output": {"response": "Done.", "action": [{"say": "Goodbye!"}, {"hangup": True}]}},
                }
            ]
        },
    }
    out = events(await chat(tmp_path, ai, [ToolCallRequested("c1", "bye", "{}"), "Bye."], "bye", "never read"))
    assert [e["text"] for e in out if e["event"] == "user"] == ["bye"]
    assert [e["action"] for e in out if e["event"] == "action"] == ["say", "hangup"]
    assert "Goodbye!" in [e["text"] for e in out if e["event"] == "agent"]
    assert [e["event"] for e in out if e["event"] == "hangup_requested"] == ["hangup_requested"]
    assert out[-1]["event"] == "end"


async def test_a_reply_cut_into_clauses_for_speech_prints_as_one_line(tmp_path: Path) -> None:
    ai = {"prompt": {"text": "Be brief."}, "params": {"wait_for_user": True}}
    reply = "Hello there, nice to hear from you. We open at nine. See you soon!"
    text = await chat(tmp_path, ai, [reply], "hi", as_json=False)
    assert text.splitlines()[1:] == ["you: hi", f"agent: {reply}", "ended: success"]


async def test_human_lines_show_each_tool_call_result_and_action(tmp_path: Path) -> None:
    ai = {
        "prompt": {"text": "Be brief."},
        "params": {"wait_for_user": True},
        "SWAIG": {
            "functions": [
                {
                    "function": "hours",
                    "description": "Opening hours.",
                    "parameters": {"type": "object", "properties": {"day": {"type": "string"}}},
                    "data_map": {
                        "output": {"response": "Open on ${args.day}.", "action": [{"set_global_data": {"d": 1}}]}
                    },
                }
            ]
        },
    }
    script = [ToolCallRequested("c1", "hours", '{"day": "Monday"}'), "Open."]
    text = await chat(tmp_path, ai, script, "monday?", as_json=False)
    assert text.splitlines()[1:] == [
        "you: monday?",
        '  -> hours({"day": "Monday"})',
        "  <- hours: Open on Monday.",
        '  action set_global_data: {"d": 1}',
        "agent: Open.",
        "ended: success",
    ]
