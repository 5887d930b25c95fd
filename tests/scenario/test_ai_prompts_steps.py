"""Prompts, contexts/steps and replace_in_history through the real AiSession: what the NEXT LLM
request carries.

Each test runs a call with the scripted LLM and the SWAIG runner the app builds
(`SwaigToolRunner`), with the prompt rendered by the renderer the app wires
(`swaig.prompt.render_prompt`), and reads the requests the LLM received. Caller turns are
typed in (`add_user_input`, what the control API does) so that a test reads as a conversation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.pipeline.llm import LlmSettings, ToolCallRequested
from mediaserver.swaig.gateway import SwaigToolRunner
from mediaserver.swaig.prompt import STEP_HEADER, render_prompt
from mediaserver.swaig.seam import CallInfo
from tests.scenario.ai_fakes import Scenario, ScriptedLlm

Message = dict[str, Any]


class ToolsSeenLlm(ScriptedLlm):
    """The scripted LLM that also keeps the tool names offered with each request."""

    def __init__(self, script: list[Any]) -> None:
        super().__init__(script)
        self.tools: list[list[str]] = []

    def stream(
        self, messages: list[Message], *, tools: list[Message] | None = None, settings: LlmSettings
    ) -> AsyncIterator[Any]:
        self.tools.append([t["function"]["name"] for t in tools or []])
        return super().stream(messages, tools=tools, settings=settings)


def call_of(ai: dict[str, Any], script: list[Any], swml_vars: dict[str, Any] | None = None) -> Scenario:
    """A call running `ai` as the app runs it: SWAIG runner, SDK-exact prompt renderer."""
    s = Scenario(ai, llm=ToolsSeenLlm(script), tools=SwaigToolRunner(ai, CallInfo(call_id="ai1")))
    s.call.info["swml_vars"] = swml_vars or {}
    s.config = s.session.config = AiSessionConfig.from_params(ai, render_prompt=render_prompt)
    return s


async def finish(s: Scenario) -> None:
    await s.finish()
    await s.session.tools.close()  # the SWAIG runner's own HTTP session


async def say(s: Scenario, text: str, ticks: int = 60) -> None:
    s.session.add_user_input(text)
    await s.play(ticks=ticks)


def offered(s: Scenario) -> list[list[str]]:
    """The tool names offered with each request so far."""
    assert isinstance(s.llm, ToolsSeenLlm)
    return s.llm.tools


def system_of(request: list[Message]) -> str:
    assert request[0]["role"] == "system"
    return str(request[0]["content"])


def dialogue(request: list[Message]) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content")) for m in request[1:]]


def next_step(call_id: str, step: str) -> ToolCallRequested:
    return ToolCallRequested(call_id, "next_step", json.dumps({"step": step}))


def change_context(call_id: str, context: str) -> ToolCallRequested:
    return ToolCallRequested(call_id, "change_context", json.dumps({"context": context}))


# -- the prompt ------------------------------------------------------------------------------


async def test_prompt_and_post_prompt_expand_global_data_and_call_vars_with_conscience_after() -> None:
    ai = {
        "prompt": {"text": "Hello ${customer}. Plan ${global_data.plan}. Ref ${ref}. ${caller_id_number}"},
        "post_prompt": {"text": "Summarize the call with ${customer} (${global_data.plan})."},
        "global_data": {"customer": "Ada", "plan": "gold"},
        "params": {"conscience": "Never reveal ${global_data.plan} pricing.", "wait_for_user": True},
        "SWAIG": {
            "functions": [
                {
                    "function": "upgrade",
                    "description": "upgrade the plan",
                    "data_map": {
                        "output": {"response": "Upgraded.", "action": [{"set_global_data": {"plan": "platinum"}}]}
                    },
                }
            ]
        },
    }
    s = call_of(ai, [ToolCallRequested("c1", "upgrade", "{}"), "Done.", "Sure."], swml_vars={"ref": "R1"})
    s.call.info["caller_id_num"] = "+15550100"
    await s.start()
    await say(s, "upgrade me")
    first = system_of(s.llm.requests[0])
    assert first == "Hello Ada. Plan gold. Ref R1. +15550100\n\nNever reveal gold pricing."
    await say(s, "thanks")
    # the caller's next turn is answered under the global_data the function set
    later = system_of(s.llm.requests[2])
    assert later == "Hello Ada. Plan platinum. Ref R1. +15550100\n\nNever reveal platinum pricing."
    await finish(s)
    summary = s.llm.requests[-1]
    assert summary[0] == {"role": "system", "content": "Summarize the call with Ada (platinum)."}


@pytest.mark.parametrize("pom_format", ["markdown", "xml"])
async def test_pom_prompt_is_rendered_in_the_pom_format_asked(pom_format: str) -> None:
    ai = {
        "prompt": {"pom": [{"title": "Role", "body": "You help ${name}.", "bullets": ["Be brief"]}]},
        "global_data": {"name": "Ada"},
        "params": {"pom_format": pom_format, "wait_for_user": True},
    }
    s = call_of(ai, ["Hi."])
    await s.start()
    await say(s, "hello")
    expected = {
        "markdown": "## Role\n\nYou help Ada.\n\n- Be brief\n",
        "xml": '<?xml version="1.0" encoding="UTF-8"?>\n<prompt>\n  <section>\n    <title>Role</title>\n'
        "    <body>You help Ada.</body>\n    <bullets>\n      <bullet>Be brief</bullet>\n    </bullets>\n"
        "  </section>\n</prompt>",
    }[pom_format]
    assert system_of(s.llm.requests[0]) == expected
    await finish(s)


# -- steps -----------------------------------------------------------------------------------


def steps_ai(*steps: dict[str, Any], base: str = "Base.", **context: Any) -> dict[str, Any]:
    return {
        "prompt": {"text": base, "contexts": {"default": {"steps": list(steps), **context}}},
        "params": {"wait_for_user": True},
    }


async def test_the_step_block_is_sent_once_and_replaced_when_the_step_changes() -> None:
    ai = steps_ai({"name": "greet", "text": "Say hi to ${who}."}, {"name": "help", "text": "Help with the order."})
    ai["global_data"] = {"who": "Ada"}
    s = call_of(ai, [next_step("c1", "help"), "What is the order number?", "Thanks."])
    await s.start()
    await say(s, "hello")
    greet, follow = system_of(s.llm.requests[0]), system_of(s.llm.requests[1])
    assert greet.startswith("Base.\n\n" + STEP_HEADER + "\nSay hi to Ada.") and greet.count(STEP_HEADER) == 1
    # the tool loop's next round already runs in the new step, and only in it
    assert follow.startswith("Base.\n\n" + STEP_HEADER + "\nHelp with the order.") and follow.count(STEP_HEADER) == 1
    assert "Say hi" not in follow
    await say(s, "order 42")
    later = s.llm.requests[2]
    assert system_of(later) == follow
    assert not [m for m in later[1:] if m["role"] == "system"]  # no step text rides in the history
    assert offered(s)[2] == []  # `help` is the last step: no next_step
    await finish(s)


async def test_end_step_leaves_step_mode_after_its_turn() -> None:
    ai = steps_ai(
        {"name": "greet", "text": "Say hi."},
        {"name": "bye", "text": "Say goodbye.", "end": True},
        prompt="Context words.",
        valid_contexts=["other"],
    )
    ai["prompt"]["contexts"]["other"] = {"steps": [{"name": "o", "text": "Other."}]}
    s = call_of(ai, [next_step("c1", "bye"), "Goodbye!", "Anything else?"])
    await s.start()
    await say(s, "I am done")
    assert offered(s)[0] == ["next_step", "change_context"]
    assert "Say goodbye." in system_of(s.llm.requests[1])
    await say(s, "one more thing")
    # after the end step's turn: base and context prompt only, no navigation; the call goes on
    assert system_of(s.llm.requests[2]) == "Base.\n\nContext words."
    assert offered(s)[2] == []
    await finish(s)


async def test_skip_to_next_step_and_skip_user_turn_go_on_without_the_caller() -> None:
    ai = steps_ai(
        {"name": "intro", "text": "Introduce yourself.", "skip_user_turn": True, "skip_to_next_step": True},
        {"name": "ask", "text": "Ask what they need.", "skip_user_turn": True},
        {"name": "serve", "text": "Serve them."},
    )
    ai["params"] = {}  # the agent opens
    s = call_of(ai, ["I am the assistant.", "Let me ask.", "What do you need?", "Unused."])
    await s.start()
    await s.play(ticks=200)
    # intro's turn, then ask's (entered by skip_to_next_step) and ask's once more (skip_user_turn
    # only: it stays): once per entry of a step, then the agent waits for the caller
    assert len(s.llm.requests) == 3
    opening, second, third = s.llm.requests
    assert "Introduce yourself." in system_of(opening)
    assert "Ask what they need." in system_of(second) and "Introduce" not in system_of(second)
    assert dialogue(second) == [("assistant", "I am the assistant.")]  # no caller turn in between
    assert system_of(third) == system_of(second)
    assert dialogue(third) == [("assistant", "I am the assistant."), ("assistant", "Let me ask.")]
    await say(s, "a pizza")
    assert len(s.llm.requests) == 4 and "Ask what they need." in system_of(s.llm.requests[3])
    await finish(s)


async def test_step_history_keep_keeps_the_old_instructions_and_hide_brings_back_a_summary() -> None:
    ai = steps_ai(
        {"name": "name", "text": "Get their name."},
        {"name": "city", "text": "Get their city.", "history": "keep"},
        {
            "name": "done",
            "text": "Earlier: ${step_history.prev.summary}. Name step: ${step_history.name.summary}",
            "history": "hide",
        },
    )
    script = [next_step("c1", "city"), "Which city?", next_step("c2", "done"), "Thanks!", "Bye."]
    s = call_of(ai, script)
    await s.start()
    await say(s, "I am Ada")
    # keep: the left step's instructions stay, as a system message in the history
    kept = s.llm.requests[1]
    assert "Get their city." in system_of(kept) and "Get their name." not in system_of(kept)
    assert ("system", f"{STEP_HEADER}\nGet their name.") in [(r, c.split("\n\n")[0]) for r, c in dialogue(kept) if c]
    await say(s, "Paris")
    # hide: the earlier dialogue leaves the model's view; step_history brings back what the step asks
    hidden = s.llm.requests[3]
    assert dialogue(hidden)[0][0] == "assistant" and not [c for r, c in dialogue(hidden) if r == "user"]
    # the city step's own turns (its question, the answer), and the name step's
    assert "Earlier: Agent: Which city?\nCaller: Paris. Name step: Caller: I am Ada\n" in system_of(hidden)
    await say(s, "bye")
    later = s.llm.requests[4]
    assert [c for r, c in dialogue(later) if r == "user"] == ["bye"]
    assert any(m.get("content") == "I am Ada" for m in s.session.history)  # the call log keeps it
    await finish(s)


# -- contexts --------------------------------------------------------------------------------

CONTEXT_CASES: dict[str, tuple[dict[str, Any], str, list[tuple[str, Any]]]] = {
    "isolated": ({"isolated": True}, "Base.", []),
    "leaving_step_reset": (  # the reset of the step the switch leaves: a consolidation instead of the wipe
        {"isolated": True, "step_reset": {"consolidate": True}},
        "Base.",
        [("system", "Summary of the conversation so far:\nCaller: my card was charged twice")],
    ),
    "consolidate": (
        {"isolated": True, "consolidate": True},
        "Base.",
        [("system", "Summary of the conversation so far:\nCaller: my card was charged twice")],
    ),
    "full_reset": (
        {"full_reset": True, "system_prompt": "You are billing for ${who}."},
        "You are billing for Ada.",
        [],
    ),
    "inject": (
        {"system_prompt": "Billing rules apply.", "user_prompt": "I need billing help."},
        "Base.",
        [
            ("user", "my card was charged twice"),
            ("system", "Billing rules apply."),
            ("user", "I need billing help."),
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CONTEXT_CASES))
async def test_context_entry_resets_isolates_or_consolidates_history(case: str) -> None:
    entry, base, kept = CONTEXT_CASES[case]
    entry = dict(entry)
    ai = steps_ai({"name": "s1", "text": "Triage.", "reset": entry.pop("step_reset", {})}, valid_contexts=["billing"])
    ai["global_data"] = {"who": "Ada"}
    ai["prompt"]["contexts"]["billing"] = {"steps": [{"name": "b1", "text": "Fix the bill."}], **entry}
    s = call_of(ai, [change_context("c1", "billing"), "Let me look.", "Refunded."])
    await s.start()
    await say(s, "my card was charged twice")
    follow = s.llm.requests[1]
    assert system_of(follow).startswith(f"{base}\n\n{STEP_HEADER}\nFix the bill.")
    # before the switch: what the entry keeps; then the switch's own tool call and result
    assert dialogue(follow)[: len(kept)] == kept
    assert [m["role"] for m in follow[1 + len(kept) :]] == ["assistant", "tool"]
    await say(s, "thanks")
    later = s.llm.requests[2]
    assert dialogue(later)[: len(kept)] == kept and dialogue(later)[-1] == ("user", "thanks")
    await finish(s)


# -- replace_in_history with the SDK's InfoGatherer prefab -------------------------------------

QUESTIONS = [{"key_name": "name", "question_text": "What is your name?"}, {"key_name": "age", "question_text": "Age?"}]


@asynccontextmanager
async def info_gatherer() -> AsyncIterator[str]:
    """The InfoGatherer prefab's own tool code answering SWAIG POSTs (no SDK web server)."""
    prefabs = pytest.importorskip("signalwire.prefabs")
    agent = prefabs.InfoGathererAgent(questions=QUESTIONS)

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        args = (body.get("argument", {}).get("parsed") or [{}])[0]
        tool = getattr(agent, request.match_info["name"])
        return web.json_response(tool(args, body).to_dict())

    app = web.Application()
    app.router.add_post("/swaig/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/swaig"
    finally:
        await runner.cleanup()


async def test_replace_in_history_from_the_info_gatherer_prefab() -> None:
    async with info_gatherer() as url:
        ai = {
            "prompt": {"text": "Gather the caller's answers."},
            "global_data": {"questions": QUESTIONS, "question_index": 0, "answers": []},
            "SWAIG": {
                "functions": [
                    {"function": "start_questions", "description": "start", "web_hook_url": f"{url}/start_questions"},
                    {
                        "function": "submit_answer",
                        "description": "answer",
                        "parameters": {"type": "object", "properties": {"answer": {"type": "string"}}},
                        "web_hook_url": f"{url}/submit_answer",
                    },
                ]
            },
            "params": {"wait_for_user": True},
        }
        script = [
            ToolCallRequested("c1", "start_questions", "{}"),
            "What is your name?",
            ToolCallRequested("c2", "submit_answer", '{"answer": "Ada"}'),
            "How old are you?",
            "Thank you.",
        ]
        s = call_of(ai, script)
        await s.start()
        await say(s, "hi", ticks=120)
        first_send = s.llm.requests[1]
        assert any(m.get("tool_call_id") == "c1" for m in first_send)  # the model reads the question once
        await say(s, "Ada", ticks=120)
        replaced = s.llm.requests[2]
        # a string: the call becomes an assistant message with that text, its result goes
        assert not [m for m in replaced if m.get("tool_call_id") == "c1" or m.get("tool_calls")]
        assert dialogue(replaced)[:2] == [("user", "hi"), ("assistant", "Welcome! Let me ask you a few questions.")]
        assert any(m.get("tool_call_id") == "c2" for m in s.llm.requests[3])
        assert s.session.global_data()["answers"] == [{"key_name": "name", "answer": "Ada"}]
        await say(s, "36", ticks=120)
        dropped = s.llm.requests[4]
        # True: the pair is gone, nothing in its place
        assert not [m for m in dropped if m.get("tool_call_id") or m.get("tool_calls")]
        assert dialogue(dropped)[2:] == [
            ("assistant", "What is your name?"),
            ("user", "Ada"),
            ("assistant", "How old are you?"),
            ("user", "36"),
        ]
        await finish(s)
