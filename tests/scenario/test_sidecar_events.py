"""The sidecar on a call with fake transcripts and a scripted LLM: every event type, in order."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from mediaserver.agents.ai.tools import StaticTool, ToolOutcome
from tests.unit.sidecar.fakes import BODY, ActingTools, Calls, Harness, LlmError, ScriptedLlm, lookup_tool, types

SALES_SCRIPT: list[Any] = [
    Calls([("lookup_competitor", '{"competitor":"ACME"}')], text="Checking ACME pricing."),
    "Tell them we are $20 a seat cheaper than ACME.",
    Calls([("sidecar_skip", '{"reason":"small talk"}')]),
]


def lookup_with_actions() -> ActingTools:
    return ActingTools(
        [
            lookup_tool(
                actions=[
                    {"user_event": {"topic": "sidecar.alert", "level": "info"}},
                    {"set_global_data": {"last_lookup": "ACME"}},
                ]
            )
        ]
    )


async def test_a_call_emits_every_tick_event_in_order_with_its_fields() -> None:
    h = Harness(ScriptedLlm(SALES_SCRIPT), tools=lookup_with_actions())
    assert await h.start() == "+OK started"
    h.say("remote-caller", "We're also looking at ACME.")
    h.say("local-caller", "Sure, let me check.")  # the agent speaks: the tick fires at once
    await h.engine.idle()
    h.say("remote-caller", "Okay thanks, that's all.")
    await h.turn_end()
    events = h.events()
    assert types(events) == [
        "start",
        "turn",
        "request",
        "thought",
        "tool_call",
        "tool_result",
        "action",
        "action",
        "global_data_change",
        "request",
        "insight",
        "turn",
        "request",
        "skip",
    ]
    start, turn = events[0], events[1]
    assert start["model"] == "gpt-4o-mini"
    assert start["tools"] == ["lookup_competitor", "sidecar_skip"]
    assert start["global_data"] == {"company": "Initech"}  # a snapshot, not the live tree
    assert turn["customer_text"] == "We're also looking at ACME."
    assert turn["agent_text"] == "Sure, let me check."
    assert [u["role"] for u in turn["transcript_delta"]] == ["customer", "agent"]
    request = events[2]
    assert request["iter"] == 0 and request["tool_choice"] == "auto" and request["messages_count"] == 2
    assert request["messages_token_count"] > 0 and "triggered_by" not in request
    assert events[3] == {**events[3], "text": "Checking ACME pricing.", "iter": 0}
    assert events[4]["name"] == "lookup_competitor" and json.loads(events[4]["arguments"]) == {"competitor": "ACME"}
    assert events[5]["response"] == "ACME charges $99/seat. We're $79."
    assert events[6]["action"] == {"user_event": {"topic": "sidecar.alert", "level": "info"}}
    assert events[6]["source_function"] == "lookup_competitor" and events[6]["executed"] is True
    assert events[8] == {**events[8], "key": "last_lookup", "old_value": None, "new_value": "ACME"}
    insight = events[10]
    assert insight["raw"] == "Tell them we are $20 a seat cheaper than ACME."
    assert (insight["iter"], insight["total_iters"], insight["tick_id"]) == (1, 2, 1)
    assert events[13]["reason"] == "small talk" and events[13]["tick_id"] == 2
    for event in events:
        assert event["channel_data"]["call_id"] == "call-a" and isinstance(event["ts"], int)
    # The tick's LLM saw the turn as a user message after the system prompt, with the skip tool.
    first = h.llm.requests[0]
    assert first.messages[0]["role"] == "system" and "Initech" in first.messages[0]["content"]
    assert first.messages[1] == {
        "role": "user",
        "content": "Customer: We're also looking at ACME.\nAgent: Sure, let me check.",
    }
    assert first.tools == ["lookup_competitor", "sidecar_skip"]
    assert h.variables["ai_agents_global_data"] == {"company": "Initech", "last_lookup": "ACME"}
    assert h.manager.status("call-a") == (
        f"+OK running=1 ticks=2 insights=1 skips=1 tools=1 errors=0 in_tokens={h.engine.stats.in_tokens} "
        f"out_tokens={h.engine.stats.out_tokens} history_size={len(h.engine.history)} "
        f"event_log_bytes={h.engine.event_log_bytes}"
    )


async def test_stop_emits_stop_then_final_with_the_state_dump() -> None:
    h = Harness(ScriptedLlm(SALES_SCRIPT[:2] + ["A summary of the session."]), tools=lookup_with_actions())
    body = {**BODY, "params": {"idle_timeout_ms": 50, "final_summary": True}}
    assert await h.start(body) == "+OK started"
    h.say("remote-caller", "We're also looking at ACME.")
    await h.turn_end()
    assert await h.manager.stop("call-a") == "+OK stopped"
    events = h.events()
    assert types(events)[-2:] == ["stop", "final"]
    assert events[-2]["stop_reason"] == "api_stop"
    final = events[-1]
    assert final["stop_reason"] == "api_stop" and final["summary"] == "A summary of the session."
    assert final["transcript"][0]["text"] == "We're also looking at ACME."
    assert final["insights"][0]["raw"] == "Tell them we are $20 a seat cheaper than ACME."
    assert final["tool_calls"][0]["name"] == "lookup_competitor"
    assert final["stats"]["ticks"] == 1 and final["stats"]["tools"] == 1
    assert final["global_data"]["last_lookup"] == "ACME" and final["model"] == "gpt-4o-mini"
    assert final["ended_at"] >= final["started_at"] and final["duration_ms"] >= 0
    assert [e["type"] for e in final["event_log"]][:2] == ["start", "turn"]
    assert final["history"][0]["role"] == "system"
    assert h.manager.status("call-a") == "-ERR: no sidecar attached"
    assert "call-a" not in h.manager.transcribers  # the call may take a new transcriber


async def test_the_call_ending_closes_the_sidecar_with_transcribe_close() -> None:
    h = Harness(ScriptedLlm([]))
    await h.start()
    h.call.remote_hung_up("BYE")
    for _ in range(50):
        await asyncio.sleep(0)
        if "call-a" not in h.manager.sidecars:
            break
    events = h.events()
    assert types(events) == ["start", "stop", "final"]
    assert events[-1]["stop_reason"] == "transcribe_close"


async def test_ask_answers_from_a_snapshot_and_leaves_history_untouched() -> None:
    llm = ScriptedLlm(
        [
            "Mention the discount.",
            Calls([("lookup_competitor", '{"competitor":"ACME"}')]),
            "Price is their main concern.",
        ]
    )
    h = Harness(llm)
    await h.start()
    h.say("remote-caller", "ACME is cheaper.")
    await h.turn_end()
    history = json.loads(json.dumps(h.engine.history))
    h.events()
    assert h.manager.ask("call-a", "What's the customer's main concern?") == "+OK queued"
    await h.engine.idle()
    events = h.events()
    assert types(events) == ["ask_request", "request", "tool_call", "tool_result", "request", "ask_answer"]
    assert events[0]["question"] == "What's the customer's main concern?"
    assert all(e["triggered_by"] == "ask" for e in events[1:])
    assert events[-1]["raw"] == "Price is their main concern."
    assert (events[-1]["iter"], events[-1]["total_iters"]) == (1, 2)
    assert h.engine.history == history  # persistent history not mutated
    ask_request = llm.requests[1]
    assert "sidecar_skip" not in ask_request.tools
    assert ask_request.messages[0]["content"].startswith("You are an AI sidecar observing")
    assert ask_request.messages[-1]["content"] == "The agent asks: What's the customer's main concern?"
    assert h.engine.stats.ticks == 1  # an ask is not a tick


async def test_poke_mutates_history_and_forces_a_tick() -> None:
    h = Harness(ScriptedLlm(["Ask about their timeline."]))
    await h.start()
    h.events()
    assert h.manager.poke("call-a", "The customer just emailed a budget of $10k.") == "+OK poked"
    await h.engine.idle()
    events = h.events()
    assert types(events) == ["request", "insight"]
    assert events[0]["triggered_by"] == "poke"
    assert h.engine.history[1] == {"role": "user", "content": "The customer just emailed a budget of $10k."}
    assert h.engine.history[2]["content"].strip() == "Ask about their timeline."


async def test_idle_timer_fires_the_tick_and_customer_speech_holds_it() -> None:
    h = Harness(ScriptedLlm(["Advice."]))
    await h.start()
    h.say("remote-caller", "I need to think.")
    h.manager.speech_started("call-a", "remote-caller")  # still talking: no tick yet
    h.clock.ms += 1000
    await asyncio.sleep(0.12)
    assert "turn" not in types(h.events())
    h.say("remote-caller", "It's the price.")
    h.clock.ms += 60  # the customer's silence passes idle_timeout_ms (50)
    for _ in range(100):
        await asyncio.sleep(0.01)
        if h.engine.stats.insights:
            break
    events = h.events()
    assert types(events) == ["turn", "request", "insight"]
    assert events[0]["customer_text"] == "I need to think. It's the price." and events[0]["trigger"] == "idle_timeout"


async def test_llm_failure_is_an_error_event_and_the_next_tick_works() -> None:
    h = Harness(ScriptedLlm([LlmError("timeout", "no first token"), "Recovered advice."]))
    await h.start()
    h.say("remote-caller", "Hello?")
    await h.turn_end()
    h.say("remote-caller", "Anyone there?")
    await h.turn_end()
    events = h.events()
    assert types(events)[1:] == ["turn", "request", "error", "turn", "request", "insight"]
    error = events[3]
    assert error["error_reason"] == "llm_timeout" and "no first token" in error["detail"] and error["iter"] == 0


async def test_act_on_channel_false_emits_actions_without_running_them() -> None:
    tools = lookup_with_actions()
    h = Harness(ScriptedLlm([Calls([("lookup_competitor", "{}")]), "Done."]), tools=tools)
    await h.start({**BODY, "params": {"idle_timeout_ms": 50, "act_on_channel": False}})
    h.say("remote-caller", "ACME?")
    await h.turn_end()
    events = h.events()
    actions = [e for e in events if e["type"] == "action"]
    assert [a["executed"] for a in actions] == [False, False]
    assert actions[0]["reason"] == "act_on_channel_false"
    assert "global_data_change" not in types(events)
    assert "last_lookup" not in h.engine.global_data


async def test_say_is_event_only_and_hangup_ends_the_call_with_hung_up() -> None:
    def act(args: dict[str, Any], _c: Any) -> ToolOutcome:
        return ToolOutcome("ok", actions=[{"say": "Hello"}, {"hangup": True}])

    tools = ActingTools([StaticTool("end_it", "End.", act)])
    h = Harness(ScriptedLlm([Calls([("end_it", "{}")]), "Bye."]), tools=tools)
    await h.start()
    h.say("remote-caller", "Cancel my account.")
    await h.turn_end()
    for _ in range(50):
        await asyncio.sleep(0)
    events = h.events()
    actions = [e for e in events if e["type"] == "action"]
    assert actions[0]["executed"] is False and actions[0]["reason"] == "no_tts_in_sidecar"
    assert actions[1]["executed"] is True
    assert h.call.is_over
    h.call.signaling_ended("bye sent")
    for _ in range(50):
        await asyncio.sleep(0)
    assert [e for e in h.events() if e["type"] == "final"][0]["stop_reason"] == "hung_up"


async def test_events_are_posted_to_the_webhook_wrapped_with_call_info() -> None:
    received: list[dict[str, Any]] = []

    async def sink(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/events", sink)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    import aiohttp

    async with aiohttp.ClientSession() as http:
        h = Harness(ScriptedLlm(SALES_SCRIPT), tools=lookup_with_actions())
        h.services.http = lambda: http
        await h.start({**BODY, "url": f"http://user:pw@127.0.0.1:{port}/events"})
        h.say("remote-caller", "We're also looking at ACME.")
        await h.turn_end()
        await h.manager.stop("call-a")
        bus_types = types(h.events())
    await runner.cleanup()
    assert [b["sidecar_event"]["type"] for b in received] == bus_types
    assert received[0]["call_info"] == {
        "project_id": "",
        "space_id": "",
        "call_id": "call-a",
        "content_type": "text/json",
        "content_disposition": "post_data",
        "conversation_type": "voice",
    }
    assert received[-1]["sidecar_event"]["type"] == "final"


async def test_swml_without_permission_is_an_error_event_and_settings_swap_the_model() -> None:
    def act(args: dict[str, Any], _c: Any) -> ToolOutcome:
        return ToolOutcome(
            "ok",
            actions=[
                {"SWML": {"sections": {"main": [{"hangup": {}}]}}},
                {"settings": {"model": "gpt-4.1-mini", "temperature": 0.2}},
            ],
        )

    from mediaserver.swaig.actions import apply_actions

    class PermissionTools(ActingTools):
        async def invoke(self, invocation: Any, control: Any) -> ToolOutcome:
            outcome = await StaticToolRunnerInvoke(self, invocation, control)
            apply_actions(outcome.actions, control, {"swaig_allow_swml": False})
            return outcome

    tools = PermissionTools([StaticTool("route", "Route.", act)])
    h = Harness(ScriptedLlm([Calls([("route", "{}")]), "Next."]), tools=tools)
    await h.start({**BODY, "permissions": {"swaig_allow_swml": False}})
    h.say("remote-caller", "Transfer me.")
    await h.turn_end()
    events = h.events()
    i = types(events).index("action")
    assert types(events)[i : i + 3] == ["action", "error", "action"]
    assert events[i]["executed"] is False and events[i]["reason"] == "swml_not_allowed"
    assert events[i + 1]["error_reason"] == "swml_not_allowed"
    assert events[i + 2]["executed"] is True
    assert not h.call.is_over
    assert h.llm.requests[-1].model == "gpt-4.1-mini" and h.engine.settings.temperature == 0.2
    assert events[-1]["type"] == "insight"


async def StaticToolRunnerInvoke(runner: Any, invocation: Any, control: Any) -> ToolOutcome:
    from mediaserver.agents.ai.tools import StaticToolRunner

    return await StaticToolRunner.invoke(runner, invocation, control)


async def test_real_swaig_runner_webhook_body_and_a_failing_webhook_is_an_error_event() -> None:
    bodies: list[dict[str, Any]] = []

    async def swaig(request: web.Request) -> web.Response:
        body = await request.json()
        bodies.append(body)
        if json.loads(body["argument"]["raw"])["competitor"] == "Globex":
            return web.Response(status=500, text="boom")
        return web.json_response(
            {"response": "ACME is $99.", "action": [{"SWML": {"sections": {"main": []}}, "transfer": "true"}]}
        )

    app = web.Application()
    app.router.add_post("/swaig", swaig)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    script = [
        Calls([("lookup_competitor", '{"competitor":"ACME"}'), ("lookup_competitor", '{"competitor":"Globex"}')]),
        "Advice.",
    ]
    h = Harness(ScriptedLlm(script))
    h.services.tool_factory = None  # the real SWAIG runner from the verb's SWAIG block
    body = {
        **BODY,
        "SWAIG": {
            "defaults": {"web_hook_url": f"http://127.0.0.1:{port}/swaig"},
            "functions": [
                {
                    "function": "lookup_competitor",
                    "description": "Look up.",
                    "parameters": {"type": "object", "properties": {"competitor": {"type": "string"}}},
                }
            ],
        },
    }
    try:
        assert await h.start(body) == "+OK started"
        h.say("remote-caller", "ACME or Globex?")
        await h.turn_end()
    finally:
        await h.manager.stop("call-a")
        await runner.cleanup()
    events = h.events()
    assert bodies[0]["function"] == "lookup_competitor" and bodies[0]["global_data"] == {"company": "Initech"}
    assert bodies[0]["call_id"] == "call-a"
    action = next(e for e in events if e["type"] == "action")
    assert action["executed"] is False and action["reason"] == "swml_not_supported_in_sidecar"
    error = next(e for e in events if e["type"] == "error")
    assert error["error_reason"] == "tool_webhook" and error["detail"].startswith("lookup_competitor: HTTP 500")
    assert types(events)[-3:] == ["insight", "stop", "final"]  # neither the transfer nor the 500 ended the sidecar


async def test_the_manager_gives_the_control_api_counters_and_user_input() -> None:
    h = Harness(ScriptedLlm(["Ask about their timeline."]))
    assert h.manager.counters("call-a") is None and not h.manager.user_input("call-a", "hi")
    await h.start()
    h.events()
    assert h.manager.user_input("call-a", "The customer just emailed a budget.")
    await h.engine.idle()
    assert types(h.events()) == ["request", "insight"]
    assert h.engine.history[1] == {"role": "user", "content": "The customer just emailed a budget."}
    counters = h.manager.counters("call-a")
    assert counters == h.engine.status() and counters is not None and counters["insights"] == 1


async def test_an_action_system_message_reaches_the_engine_through_the_control() -> None:
    h = Harness(ScriptedLlm([]))
    await h.start()
    h.engine.control.add_system_message("The caller is a VIP.")
    assert h.engine.history[-1] == {"role": "system", "content": "The caller is a VIP."}
    assert h.engine.control.user_turns() == 0  # the engine resets the runner's guards per tick itself
