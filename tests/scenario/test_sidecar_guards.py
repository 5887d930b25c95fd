"""A looping scripted LLM trips each anti-loop guard of seed 002; each bail is an error event."""

from __future__ import annotations

from typing import Any

from mediaserver.agents.ai.tools import StaticTool, StaticToolRunner
from tests.unit.sidecar.fakes import BODY, Calls, Harness, ScriptedLlm, types

LOOP_REPLY = "You have already looked up this information. Use the prior results to craft your answer."


def counting_tools() -> StaticToolRunner:
    return StaticToolRunner(
        [StaticTool(name, f"Look up {name}.", lambda args, _c: f"result {args}") for name in ("a", "b", "c", "d", "e")]
    )


async def run_tick(script: list[Any], params: dict[str, Any] | None = None) -> tuple[Harness, list[dict[str, Any]]]:
    tools = counting_tools()
    h = Harness(ScriptedLlm(script, default="Fallback advice."), tools=tools)
    await h.start({**BODY, "params": {"idle_timeout_ms": 50, **(params or {})}})
    h.say("remote-caller", "Tell me everything.")
    await h.turn_end()
    return h, h.events()


async def test_more_than_four_tool_calls_in_a_tick_bails_with_tool_loop() -> None:
    script = [Calls([(n, "{}")]) for n in "abcde"]
    h, events = await run_tick(script, {"max_iters_per_tick": 10})
    tool_calls = [e for e in events if e["type"] == "tool_call"]
    assert [e["name"] for e in tool_calls] == ["a", "b", "c", "d", "e"]
    error = events[-1]
    assert error["type"] == "error" and error["error_reason"] == "tool_loop"
    assert error["detail"] == "more than 4 tool calls in one tick" and error["iter"] == 4
    assert events[-2] == {**events[-2], "type": "tool_result", "name": "e", "response": LOOP_REPLY}
    assert [i.name for i in h.tools.invocations] == ["a", "b", "c", "d"]  # type: ignore[union-attr]
    assert "insight" not in types(events) and h.engine.stats.errors == 1
    assert h.engine.history[-1] == {"role": "tool", "tool_call_id": "call_5", "content": LOOP_REPLY}


async def test_same_call_repeated_is_answered_duplicate_then_bails_on_the_third() -> None:
    script = [Calls([("a", '{"q": 1}')]), Calls([("a", '{ "q":1 }')]), Calls([("a", '{"q":1}')])]
    h, events = await run_tick(script)
    results = [e["response"] for e in events if e["type"] == "tool_result"]
    assert results[0] == "result {'q': 1}"
    assert results[1].startswith("DUPLICATE: you already called this tool with these arguments")
    assert results[2] == LOOP_REPLY
    assert len(h.tools.invocations) == 1  # type: ignore[union-attr]  # the webhook was hit once
    error = events[-1]
    assert (error["type"], error["error_reason"]) == ("error", "tool_loop")
    assert error["detail"] == "the same tool with the same arguments 3 times in a row"


async def test_phantom_tools_get_the_valid_list_then_bail_after_three() -> None:
    script = [Calls([("web_search", "{}")]), Calls([("browse", "{}")]), Calls([("python", "{}")])]
    h, events = await run_tick(script)
    results = [e["response"] for e in events if e["type"] == "tool_result"]
    assert results[0] == (
        "'web_search' is not a valid tool. Available tools: a, b, c, d, e, sidecar_skip. Retry with one of these."
    )
    assert results[1].startswith("'browse' is not a valid tool.")
    assert results[2] == LOOP_REPLY
    assert h.tools.invocations == []  # type: ignore[union-attr]
    error = events[-1]
    assert (error["type"], error["error_reason"]) == ("error", "phantom_tool")
    assert error["detail"] == "3 calls to tools that do not exist in one tick"


async def test_a_phantom_then_a_valid_call_lets_the_model_recover() -> None:
    script = [Calls([("web_search", "{}")]), Calls([("a", "{}")]), "Use the lookup result."]
    _h, events = await run_tick(script)
    assert types(events)[-2:] == ["request", "insight"]
    assert "error" not in types(events)


async def test_guards_reset_between_ticks() -> None:
    script = [Calls([(n, "{}")]) for n in "abcd"] + ["First."] + [Calls([(n, "{}")]) for n in "abcd"] + ["Second."]
    h, events = await run_tick(script, {"max_iters_per_tick": 10})
    h.say("remote-caller", "And another thing.")
    await h.turn_end()
    events += h.events()
    assert [e["raw"] for e in events if e["type"] == "insight"] == ["First.", "Second."]
    assert "error" not in types(events)


async def test_max_iters_per_tick_caps_the_loop() -> None:
    script = [Calls([("a", "{}")]), Calls([("b", "{}")])]
    _h, events = await run_tick(script, {"max_iters_per_tick": 2})
    assert types(events).count("request") == 2
    assert events[-1]["error_reason"] == "max_iters"


async def test_asks_are_bounded_by_the_same_guards() -> None:
    h = Harness(ScriptedLlm([Calls([(n, "{}")]) for n in "abcde"]), tools=counting_tools())
    await h.start({**BODY, "params": {"idle_timeout_ms": 50, "max_iters_per_tick": 10}})
    h.events()
    h.manager.ask("call-a", "Look everything up.")
    await h.engine.idle()
    events = h.events()
    assert events[-1] == {**events[-1], "type": "error", "error_reason": "tool_loop", "triggered_by": "ask"}
    assert "ask_answer" not in types(events)


async def test_min_interval_throttles_llm_calls() -> None:
    slept: list[float] = []
    h = Harness(ScriptedLlm([Calls([("a", "{}")]), "Advice."]), tools=counting_tools())

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        h.clock.ms += int(seconds * 1000)

    await h.start({**BODY, "params": {"idle_timeout_ms": 50, "min_interval_ms": 1500}})
    h.engine.sleep = sleep
    h.say("remote-caller", "Hi.")
    await h.turn_end()
    assert slept == [1.5]  # the second LLM call of the tick waited out the throttle (fake clock did not move)
