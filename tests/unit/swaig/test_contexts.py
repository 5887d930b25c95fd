"""Contexts/steps and gather_info on the SWML the SDK's example agents render (tests/fixtures/swaig)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mediaserver.swaig.contexts import ContextEngine, NavigationError
from mediaserver.swaig.gateway import SwaigToolRunner
from mediaserver.swaig.history_ops import ResetHistory
from mediaserver.swaig.prompt import STEP_HEADER, render_ai_prompt
from mediaserver.swaig.seam import CallInfo, ToolInvocation
from tests.unit.swaig.fakes import FakeControl

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "swaig"


def ai_of(name: str) -> dict[str, Any]:
    doc = json.loads((FIXTURES / f"{name}.swml.json").read_text())
    return next(v["ai"] for v in doc["sections"]["main"] if "ai" in v)


def names(tools: list[dict[str, Any]]) -> list[str]:
    return [t["function"]["name"] for t in tools]


def enum_of(tools: list[dict[str, Any]], tool: str, arg: str) -> list[str]:
    t = next(t for t in tools if t["function"]["name"] == tool)
    return list(t["function"]["parameters"]["properties"][arg]["enum"])


def test_contexts_demo_starts_in_first_context_without_default() -> None:
    engine = ContextEngine(ai_of("contexts_demo")["prompt"]["contexts"])
    assert engine.context_name == "sales" and engine.step_name == "determine_use_case"
    tools = engine.definitions()
    assert enum_of(tools, "next_step", "step") == ["determine_form_factor"]
    assert enum_of(tools, "change_context", "context") == ["tech_support", "manager"]
    block = engine.current_block()
    assert "You are Franklin" in block and STEP_HEADER in block and "GAMING, WORK, or BALANCED" in block


def test_contexts_demo_navigation_through_the_runner() -> None:
    runner = SwaigToolRunner(ai_of("contexts_demo"), CallInfo(call_id="c1"))
    control = FakeControl()
    import asyncio

    async def go() -> None:
        o = await runner.invoke(ToolInvocation("1", "next_step", '{"step": "make_recommendation"}'), control)
        assert o.response is not None and "not allowed" in o.response  # not in the whitelist
        o = await runner.invoke(ToolInvocation("2", "change_context", '{"context": "tech_support"}'), control)
        assert o.response == "Now in context 'tech_support'. Follow its instructions."

    asyncio.run(go())
    assert ("change_context", "tech_support") in control.calls
    # isolated context: the session is told to wipe the history; the context's enter filler is spoken
    ops = runner.take_history_ops()
    assert ResetHistory(wipe=True) in ops and runner.take_history_ops() == []
    said = [v for n, v in control.calls if n == "say"]
    assert len(said) == 1 and said[0]
    system = runner.system_prompt("Base.")
    assert system.startswith("Base.\n\n") and system.count(STEP_HEADER) == 1
    assert "You are Rachael" in system and "provide_support" not in system  # step names stay hidden
    assert enum_of(runner.tool_definitions(), "change_context", "context") == ["sales", "manager"]


def test_step_function_whitelists_inherit_and_lock() -> None:
    ai = ai_of("step_function_inheritance_demo")
    runner = SwaigToolRunner(ai, CallInfo(call_id="c1"))
    engine = runner.contexts
    assert engine is not None
    seen = []
    for step in ["step_inherit", "step_explicit", "step_disabled"]:
        seen.append((engine.step_name, sorted(n for n in names(runner.tool_definitions()) if n != "next_step")))
        engine.go_step(step)
    seen.append((engine.step_name, sorted(names(runner.tool_definitions()))))
    assert seen == [
        ("step_lookup", ["lookup_account"]),
        ("step_inherit", ["lookup_account"]),  # no `functions`: the previous set carries over
        ("step_explicit", ["process_payment"]),
        ("step_disabled", []),  # [] locks everything, and `end` offers no next_step
    ]


def test_internal_filler_spoken_on_next_step_in_rotation() -> None:
    import asyncio

    ai = ai_of("contexts_demo")
    runner = SwaigToolRunner(ai, CallInfo(call_id="c1"))
    control = FakeControl()
    asyncio.run(runner.invoke(ToolInvocation("1", "next_step", '{"step": "determine_form_factor"}'), control))
    phrases = ai["SWAIG"]["internal_fillers"]["next_step"]["en-US"]
    assert [v for n, v in control.calls if n == "say"] == [phrases[0]]
    assert [n for n, _ in control.calls] == ["say", "change_step"]  # the step block is in the system prompt


def test_implicit_next_step_and_next_keyword() -> None:
    engine = ContextEngine(
        {
            "default": {
                "steps": [
                    {"name": "a", "text": "A"},
                    {"name": "b", "text": "B", "valid_steps": ["next"]},
                    {"name": "c", "text": "C", "valid_steps": []},
                ]
            }
        }
    )
    assert engine.valid_steps() == ["b"]
    engine.go_step("b")
    assert engine.valid_steps() == ["c"]
    engine.go_step("next")
    assert engine.valid_steps() == [] and engine.definitions() == []
    with pytest.raises(NavigationError, match="no step named 'zzz'"):
        engine.go_step("zzz", forced=True)


def test_gather_info_with_confirmation_types_and_completion() -> None:
    engine = ContextEngine(ai_of("gather_per_question_functions_demo")["prompt"]["contexts"])
    assert names(engine.definitions()) == ["gather_submit"]
    assert engine.allowed_functions() == {"validate_email"}
    params = engine.definitions()[0]["function"]["parameters"]
    assert params["required"] == ["answer", "confirmed_by_user"]
    with pytest.raises(NavigationError, match="Confirm the answer"):
        engine.submit({"answer": "ada@example.com"})
    reply, update = engine.submit({"answer": "ada@example.com", "confirmed_by_user": "true"})
    assert update == {"customer": {"email": "ada@example.com"}} and "ZIP" in reply
    assert engine.allowed_functions() == {"geocode_zip"}
    engine.submit({"answer": "02134"})
    assert engine.definitions()[0]["function"]["parameters"]["properties"]["answer"]["type"] == "integer"
    with pytest.raises(NavigationError, match="must be a integer"):
        engine.submit({"answer": "old"})
    engine.submit({"answer": "36"})
    reply, update = engine.submit({"answer": "a friend"})
    assert update == {
        "customer": {"email": "ada@example.com", "zip": "02134", "age": 36, "referral_source": "a friend"}
    }
    assert engine.step_name == "confirm" and "confirm" in reply  # completion_action next_step
    assert engine.allowed_functions() == set()


def test_gather_info_demo_through_runner_sets_global_data() -> None:
    import asyncio

    runner = SwaigToolRunner(ai_of("gather_info_demo"), CallInfo(call_id="c1"))
    control = FakeControl()
    answers = [("Ada Lovelace", None), ("1815-12-10", None), ("555 0100", "true"), ("ada@example.com", None)]

    async def go() -> None:
        for i, (answer, confirmed) in enumerate(answers):
            runner.begin_turn()
            args: dict[str, Any] = {"answer": answer}
            if confirmed:
                args["confirmed_by_user"] = confirmed
            await runner.invoke(ToolInvocation(str(i), "gather_submit", json.dumps(args)), control)

    asyncio.run(go())
    assert control.global_data()["patient_demographics"] == {
        "full_name": "Ada Lovelace",
        "date_of_birth": "1815-12-10",
        "phone_number": "555 0100",
        "email": "ada@example.com",
    }
    # no completion_action: back to the step's own instructions, with next_step to `symptoms`
    assert enum_of(runner.tool_definitions(), "next_step", "step") == ["symptoms"]


def test_initial_prompt_includes_first_step_and_expands_global_data() -> None:
    ai = {
        "prompt": {
            "text": "Hello ${customer}. Plan ${global_data.plan}.",
            "contexts": {"default": {"steps": [{"name": "greet", "text": "Say hi", "step_criteria": "greeted"}]}},
        },
        "global_data": {"customer": "Ada", "plan": "gold"},
        "params": {"conscience": "Be kind."},
    }
    text = render_ai_prompt(ai)
    assert text.startswith("Hello Ada. Plan gold.\n\nBe kind.\n\n" + STEP_HEADER + "\nSay hi")
    assert "greeted" in text


def test_render_prompt_is_the_base_only_and_survives_bad_pom() -> None:
    """The step block is the runner's, added per request: in the base it would outlive its step."""
    from mediaserver.swaig.prompt import render_prompt

    ai = ai_of("gather_info_demo")
    text = render_prompt(ai["prompt"])
    assert text.startswith("## Role\n\nYou are a friendly medical office intake assistant")
    assert "What is your full name?" not in text and STEP_HEADER not in text
    system = SwaigToolRunner(ai, CallInfo(call_id="c1")).system_prompt(text)
    assert system.startswith(text) and "What is your full name?" in system and "gather_submit" in system
    assert render_prompt({"pom": [{"title": "Good", "body": "x"}, {"title": "Bad"}]}) == "## Good\n\nx\n"
