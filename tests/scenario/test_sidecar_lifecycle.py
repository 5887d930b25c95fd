"""Sidecar start/stop rules: one transcriber per call, start errors, persistence, pruning, legs."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from mediaserver.agents.sidecar.runner import SidecarManager
from tests.scenario.ai_fakes import InlineExecutor, ToneAsr, ToneVad, tone
from tests.unit.sidecar.fakes import BODY, Harness, ScriptedLlm, make_call, types


async def test_a_second_transcriber_is_refused_and_a_stopped_one_frees_the_call() -> None:
    h = Harness(ScriptedLlm([]))
    assert await h.start() == "+OK started"
    assert await h.start() == "-ERR: there is already a transcriber attached to this call"
    assert await h.manager.stop("call-a") == "+OK stopped"
    assert await h.start() == "+OK started"


async def test_start_errors_are_the_spec_strings() -> None:
    h = Harness(ScriptedLlm([]))
    m = h.manager
    assert await m.start(None, BODY) == "-ERR: Invalid Call"
    assert await m.start(h.call, "{not json") == "-ERR: Invalid JSON config"
    assert await m.start(h.call, {"prompt": "x"}) == "-ERR: lang is required"
    assert (
        await m.start(h.call, {**BODY, "direction": ["local-caller"]})
        == "-ERR: sidecar requires both legs (remote-caller and local-caller)"
    )
    assert (
        await m.start(h.call, {**BODY, "params": {"idle_timeout_ms": 1}})
        == "-ERR: idle_timeout_ms: 1 is outside 50..5000"
    )
    assert h.call.call_id not in m.transcribers  # a refused start claims nothing

    async def broken() -> Any:
        raise RuntimeError("no such model")

    h.services.llm = broken
    assert await m.start(h.call, BODY) == "-ERR: failed to build sidecar app (model resolution failed?)"
    h.services.llm = lambda: _async(h.llm)
    h.services.asr = broken
    h.services.vad = ToneVad
    assert await m.start(h.call, BODY) == "-ERR: failed to start transcribe"
    assert h.call.call_id not in m.transcribers
    h.call.hangup()
    assert await m.start(h.call, BODY) == "-ERR: Invalid Call"
    for name in ("status", "poke", "ask"):
        reply = getattr(m, name)("call-a") if name == "status" else getattr(m, name)("call-a", "x")
        assert reply == "-ERR: no sidecar attached"


async def _async(value: Any) -> Any:
    return value


async def test_inherited_global_data_wins_and_the_tree_is_flushed_back() -> None:
    h = Harness(ScriptedLlm([]))
    h.variables["ai_agents_global_data"] = {"company": "Globex", "deal": {"mrr": 900}}
    await h.start({**BODY, "global_data": {"company": "Initech", "tier": "gold"}})
    start = h.events()[0]
    assert start["global_data"] == {"company": "Globex", "tier": "gold", "deal": {"mrr": 900}}
    assert "Globex" in h.engine.history[0]["content"]  # ${global_data.company} saw the merged tree
    h.engine.change_global_data({"stage": "closing"}, ["tier"])
    assert h.variables["ai_agents_global_data"] == {"company": "Globex", "deal": {"mrr": 900}, "stage": "closing"}
    await h.manager.stop("call-a")
    assert h.variables["ai_agents_global_data"]["stage"] == "closing"


async def test_history_is_pruned_oldest_first_within_max_history_tokens() -> None:
    long = "word " * 500  # about 625 tokens a turn (the system prompt is about 200)
    h = Harness(ScriptedLlm([], default="Short advice."))
    await h.start({**BODY, "params": {"idle_timeout_ms": 50, "max_history_tokens": 1000}})
    h.say("remote-caller", long)
    await h.turn_end()
    assert "history_pruned" not in types(h.events())
    h.say("remote-caller", long + "again")
    await h.turn_end()
    events = h.events()
    pruned = [e for e in events if e["type"] == "history_pruned"]
    assert len(pruned) == 1
    assert pruned[0]["tokens_before"] > 1000 >= pruned[0]["tokens_after"] and pruned[0]["dropped_count"] == 1
    assert [m["role"] for m in h.engine.history] == ["system", "assistant", "user", "assistant"]
    assert h.engine.history[2]["content"].endswith("again")


async def test_each_leg_is_transcribed_from_its_own_audio_and_the_agent_forces_the_tick() -> None:
    """Real frames through the transcribers: the customer's on call A, the agent's on the bridged leg."""
    llm = ScriptedLlm(["Offer the annual plan."])
    h = Harness(llm)
    asr = ToneAsr({440: "what does the annual plan cost", 880: "let me look that up"})
    h.services.asr = lambda: _async(asr)
    h.services.vad = ToneVad
    h.services.blocking = InlineExecutor()
    agent = make_call("call-b", from_uri="sip:agent@example.com")
    await h.start({**BODY, "params": {"idle_timeout_ms": 5000, "vad_silence_ms": 200}})
    h.manager.bridged(h.call, agent)
    assert set(h.manager.sidecars["call-a"].transcribers) == {"remote-caller", "local-caller"}

    async def speak(call: Any, pcm: np.ndarray) -> None:
        for i in range(0, len(pcm), 160):
            assert call.media.taps.inbound
            from mediaserver.audio.frame import AudioFrame

            call.media.taps.inbound.emit(AudioFrame(pcm[i : i + 160], 8000, i))
        for _ in range(20):
            import asyncio

            await asyncio.sleep(0)

    silence = np.zeros(8000 // 2, dtype=np.int16)
    await speak(h.call, np.concatenate([tone(440, 800), silence]))
    assert "turn" not in types(h.events())  # idle_timeout_ms is long: the customer turn is pending
    await speak(agent, np.concatenate([tone(880, 800), silence]))
    await h.engine.idle()
    events = h.events()
    turn = next(e for e in events if e["type"] == "turn")
    assert turn["customer_text"] == "what does the annual plan cost"
    assert turn["agent_text"] == "let me look that up" and turn["trigger"] == "agent_spoke"
    assert events[-1]["type"] == "insight"


def test_manager_is_the_executor_seam() -> None:
    from mediaserver.kernel.services import SidecarRunner

    runner: SidecarRunner = SidecarManager.__new__(SidecarManager)
    assert callable(runner)


async def test_live_events_and_ai_summary_are_transcribe_events() -> None:
    h = Harness(ScriptedLlm(["Advice.", "The customer asked for a quote; the agent will send it."]))
    transcribe = h.bus.subscribe("call-a", kinds=["transcribe"])
    await h.start(
        {
            **BODY,
            "params": {
                "idle_timeout_ms": 50,
                "live_events": True,
                "ai_summary": True,
                "ai_summary_prompt": "Summarize briefly.",
            },
        }
    )
    h.say("remote-caller", "Can I get a quote?")
    h.say("local-caller", "Sure, I'll send one.")
    await h.engine.idle()
    await h.manager.stop("call-a")
    got = [transcribe.get_nowait() for _ in range(transcribe.pending())]
    assert [(e.data["type"], e.data.get("role")) for e in got] == [
        ("utterance", "customer"),
        ("utterance", "agent"),
        ("conversation_log", None),
    ]
    assert got[0].data["text"] == "Can I get a quote?" and got[0].data["leg"] == "remote-caller"
    log = got[2].data
    assert log["summary"] == "The customer asked for a quote; the agent will send it."
    assert [u["text"] for u in log["transcript"]] == ["Can I get a quote?", "Sure, I'll send one."]
    summary_request = h.llm.requests[-1]
    assert summary_request.messages[0] == {"role": "system", "content": "Summarize briefly."}
    assert summary_request.messages[1]["content"] == "customer: Can I get a quote?\nagent: Sure, I'll send one."


async def test_a_bridge_is_forgotten_when_its_legs_end() -> None:
    h = Harness(ScriptedLlm([]))
    agent = make_call("call-b")
    h.manager.bridged(h.call, agent)
    assert set(h.manager.bridges) == {"call-a", "call-b"}
    h.call.remote_hung_up("BYE")
    agent.remote_hung_up("BYE")
    for _ in range(10):
        await asyncio.sleep(0)
    assert h.manager.bridges == {}


async def test_a_stop_action_ends_only_the_sidecar() -> None:
    from mediaserver.agents.ai.tools import StaticTool, ToolOutcome
    from tests.unit.sidecar.fakes import ActingTools, Calls

    tools = ActingTools([StaticTool("done", "Done.", lambda a, c: ToolOutcome("ok", actions=[{"stop": True}]))])
    h = Harness(ScriptedLlm([Calls([("done", "{}")])]), tools=tools)
    await h.start()
    h.say("remote-caller", "Stop coaching.")
    await h.turn_end()
    for _ in range(50):
        await asyncio.sleep(0)
    events = h.events()
    assert events[-1]["type"] == "final" and events[-1]["stop_reason"] == "stop_action"
    assert not h.call.is_over and "call-a" not in h.manager.sidecars
