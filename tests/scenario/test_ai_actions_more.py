"""The last SWAIG actions of seed 001 / contract §5, each with its effect on the live AiSession.

As in test_ai_actions.py: the real session on a manual clock with a scripted LLM and the real
SWAIG runner; each tool's reply is what the SDK's own `FunctionResult` helper emits, served as
a data_map output (or by a local webhook agent where the next webhook body is what changes), so
it goes through the gateway, `apply_actions` and the session's `AiControl` as on a real call.
What is asserted is what changes: the next LLM request's messages and tools, the turn timing,
the AI ending while the call's script goes on, the next webhook body's global_data and meta_data,
and what a transfer hands to its destination.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from signalwire.core import function_result
from signalwire.core.function_result import FunctionResult

from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.runner import SessionRunner
from mediaserver.kernel.call import Call
from mediaserver.pipeline.llm import LlmSettings, ToolCallRequested
from mediaserver.swaig.actions import ACTIONS
from mediaserver.swaig.coverage import ACTION_STATUS, HONOURED
from mediaserver.swaig.gateway import SwaigToolRunner, call_info_from
from mediaserver.swaig.pom import render_pom
from mediaserver.swaig.prompt import STEP_HEADER, render_prompt
from mediaserver.swaig.seam import CallInfo
from tests.scenario.ai_fakes import Scenario, ScriptedLlm, tone
from tests.scenario.swaig_harness import SwaigCall
from tests.scenario.test_ai_swml_actions import AiHarness
from tests.scenario.test_media_taps import CALLER_HZ
from tests.unit.swaig.agent_server import FakeAgent

Message = dict[str, Any]
BASE = "You are a test agent."
VOICE_HZ = 700
ASK_HZ = 900
LATER_HZ = 1100


class ToolsSeenLlm(ScriptedLlm):
    """The scripted LLM that also keeps the tool names offered with each request (None: no tools)."""

    def __init__(self, script: list[Any]) -> None:
        super().__init__(script)
        self.tools: list[list[str] | None] = []

    def stream(
        self, messages: list[Message], *, tools: list[Message] | None = None, settings: LlmSettings
    ) -> AsyncIterator[Any]:
        self.tools.append(None if tools is None else [t["function"]["name"] for t in tools])
        return super().stream(messages, tools=tools, settings=settings)


def dm(name: str, result: FunctionResult | dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A data_map function whose output is the SDK reply `result`."""
    output = result.to_dict() if isinstance(result, FunctionResult) else result
    return {"function": name, "description": name, "data_map": {"output": output}, **extra}


def ai_of(*functions: dict[str, Any], params: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "prompt": {"text": BASE},
        "params": {"wait_for_user": True, **(params or {})},
        "SWAIG": {"functions": list(functions)},
        **extra,
    }


def call_of(ai: dict[str, Any], script: list[Any], phrases: dict[int, str] | None = None) -> Scenario:
    """A call running `ai` as the app runs it: the SWAIG runner and the SDK-exact prompt renderer."""
    s = Scenario(ai, llm=ToolsSeenLlm(script), tools=SwaigToolRunner(ai, CallInfo("ai1")), phrases=phrases)
    s.config = s.session.config = AiSessionConfig.from_params(ai, render_prompt=render_prompt)
    return s


def call(name: str, n: int = 1) -> ToolCallRequested:
    return ToolCallRequested(f"c{name}{n}", name, "{}")


async def say(s: Scenario, text: str, ticks: int = 60) -> None:
    s.session.add_user_input(text)  # a caller turn, as the control API types one in
    await s.play(ticks=ticks)


async def done(s: Scenario) -> None:
    await s.finish()
    await s.session.tools.close()


def offered(s: Scenario) -> list[list[str] | None]:
    assert isinstance(s.llm, ToolsSeenLlm)
    return s.llm.tools


def system_of(request: list[Message]) -> str:
    assert request[0]["role"] == "system"
    return str(request[0]["content"])


def dialogue(request: list[Message]) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content")) for m in request[1:]]


# -- stop ----------------------------------------------------------------------------------------


def _swaig_runners(runners: list[SwaigToolRunner]) -> Any:
    def factory(call: Call, _config: AiSessionConfig, ai: dict[str, Any]) -> SwaigToolRunner:
        runner = SwaigToolRunner(ai, call_info_from(call, ai))
        runners.append(runner)
        return runner

    return factory


async def run_script(h: AiHarness, sections: dict[str, Any], **kwargs: Any) -> None:
    """The harness's script with the real SWAIG runner behind the `ai` verb."""
    runners: list[SwaigToolRunner] = []
    h.ai_runner = SessionRunner(h.engines, tool_factory=_swaig_runners(runners), scripts=h.scripts)
    try:
        await h.run(sections, **kwargs)
    finally:
        for runner in runners:
            await runner.close()


@pytest.mark.parametrize("action", ["stop", "hangup"])
async def test_stop_ends_the_ai_and_the_script_goes_on_where_hangup_ends_the_call(tmp_path: Path, action: str) -> None:
    result = FunctionResult("Ending.").stop() if action == "stop" else FunctionResult("Ending.").hangup()
    llm = ScriptedLlm(["Hello", call("finish"), "Too late.", "Unused."])
    h = AiHarness(tmp_path, llm, [], {CALLER_HZ: "that is all"})
    ai = ai_of(dm("finish", result), params={"wait_for_user": False})
    await run_script(
        h,
        {"main": ["answer", {"ai": ai}, {"play": {"url": "say:after the agent"}}]},
        on_tick=h.speaker({60: tone(CALLER_HZ, 1000)}),
        ticks=300,
    )
    hangups = [e["reason"] for e in h.events("hangup_requested")]
    if action == "stop":  # the `ai` verb returned and the script went on to its next verb, then its end
        assert [e["result"] for e in h.events("ai_finished")] == ["success"]
        assert h.tts.spoken == ["after the agent"] and hangups == ["end of document"]
    else:
        assert h.tts.spoken == [] and hangups[0] == "swaig"


# -- an inline SWML document owns the caller's audio while it runs -------------------------------


async def test_while_an_inline_swml_document_runs_the_caller_is_not_heard_by_the_ai(tmp_path: Path) -> None:
    document = {"version": "1.0.0", "sections": {"main": [{"play": {"url": "silence:3"}}]}}
    result = FunctionResult("Playing.").execute_swml(document, transfer=False)
    llm = ScriptedLlm(["Hello", call("interlude"), "Playing.", "Back again.", "Unused."])
    h = AiHarness(tmp_path, llm, [], {CALLER_HZ: "play something", ASK_HZ: "are you there", LATER_HZ: "and now"})
    ai = ai_of(dm("interlude", result), params={"wait_for_user": False})
    speech = {60: tone(CALLER_HZ, 1000), 200: tone(ASK_HZ, 1000), 420: tone(LATER_HZ, 1000)}
    await run_script(h, {"main": ["answer", {"ai": ai}]}, on_tick=h.speaker(speech), ticks=560)
    # the words said during the 3 s of the document (ticks 200..250) never became a turn
    assert [m["content"] for m in llm.requests[-1] if m["role"] == "user"] == ["play something", "and now"]
    assert "Back again." in h.engines.tts.spoken  # type: ignore[attr-defined]


# -- unset_global_data / unset_meta_data ---------------------------------------------------------


def hooked(agent: FakeAgent, name: str) -> dict[str, Any]:
    return {"function": name, "description": name, "web_hook_url": agent.url(f"/{name}"), "meta_data_token": "tok"}


async def test_unset_global_data_and_unset_meta_data_reach_the_next_webhook_body() -> None:
    async with FakeAgent().running() as agent:
        agent.replies["/f1"] = [
            FunctionResult("1").update_global_data({"g1": 1, "g2": 2}).set_metadata({"a": 1, "b": 2}).to_dict()
        ]
        agent.replies["/f2"] = [FunctionResult("2").remove_global_data(["g1"]).remove_metadata("a").to_dict()]
        # the object shapes: unset_meta_data {} clears the scope, unset_global_data {…} replaces it all
        agent.replies["/f3"] = [
            {"response": "3", "action": [{"unset_meta_data": {}}, {"unset_global_data": {"fresh": 1}}]}
        ]
        agent.replies["/f4"] = [{"response": "4"}]
        ai = ai_of(*(hooked(agent, f"f{n}") for n in range(1, 5)))
        script: list[Any] = []
        for n in range(1, 5):
            script += [call(f"f{n}"), f"Done {n}."]
        s = SwaigCall(ai, llm=ScriptedLlm(script))
        await s.start()
        for n in range(1, 5):
            s.session.add_user_input(f"turn {n}")
            await s.until(lambda n=n: any(m.get("content") == f"Done {n}." for m in s.session.history))
        await s.close()
    bodies = {seen.path: seen.json for seen in agent.seen}
    assert bodies["/f2"]["global_data"] == {"g1": 1, "g2": 2} and bodies["/f2"]["meta_data"] == {"a": 1, "b": 2}
    assert bodies["/f3"]["global_data"] == {"g2": 2} and bodies["/f3"]["meta_data"] == {"b": 2}
    assert bodies["/f4"]["global_data"] == {"fresh": 1} and bodies["/f4"]["meta_data"] == {}
    assert s.variables["ai_agents_global_data"] == {"fresh": 1}  # what a later ai verb starts from


# -- toggle_functions ----------------------------------------------------------------------------


async def test_toggle_functions_changes_the_tools_offered_with_the_next_request() -> None:
    toggles = [{"function": "secret", "active": True}, {"function": "unlock", "active": False}]
    ai = ai_of(
        dm("unlock", FunctionResult("Unlocked.").toggle_functions(toggles)),
        dm("secret", FunctionResult("The code is 42."), active=False),
    )
    s = call_of(ai, [call("unlock"), "Unlocked.", call("unlock", 2), "Cannot.", "Sure."])
    await s.start()
    await say(s, "open it")
    assert offered(s)[0] == ["unlock"]  # secret starts inactive
    await say(s, "again")
    assert offered(s)[2] == ["secret"]  # the next request with tools: secret on, unlock off
    # the model calling the switched-off function gets a refusal, not the function's output
    result = [m for m in s.llm.requests[3] if m["role"] == "tool"][-1]
    assert "not a valid tool" in result["content"] and "Unlocked." not in result["content"]
    assert s.events("ai_toggle_functions")[0]["changes"] == [
        {"function": "secret", "active": True},
        {"function": "unlock", "active": False},
    ]
    await done(s)


# -- change_step ---------------------------------------------------------------------------------


def steps_ai(*functions: dict[str, Any]) -> dict[str, Any]:
    steps = [
        {"name": "greet", "text": "Greet them.", "valid_steps": ["next"]},
        {"name": "order", "text": "Take the order.", "valid_steps": []},
        {"name": "pay", "text": "Take the payment."},
    ]
    ai = ai_of(*functions)
    ai["prompt"]["contexts"] = {"default": {"steps": steps}}
    return ai


async def test_change_step_moves_now_to_next_or_to_a_step_navigation_would_refuse() -> None:
    ai = steps_ai(
        dm("advance", FunctionResult("Moved on.").swml_change_step("next")),
        dm("settle", FunctionResult("To payment.").swml_change_step("pay")),
        dm("lost", FunctionResult("Nowhere.").swml_change_step("nowhere")),
    )
    script = [call("advance"), "What would you like?", call("settle"), "Card or cash?", call("lost"), "Still here."]
    s = call_of(ai, script)
    await s.start()
    await say(s, "hello")
    first, follow = system_of(s.llm.requests[0]), system_of(s.llm.requests[1])
    assert f"{STEP_HEADER}\nGreet them." in first
    assert f"{STEP_HEADER}\nTake the order." in follow and "Greet" not in follow  # the same tool loop
    await say(s, "a pizza")  # `order` has valid_steps []: next_step could not leave it; the action does
    assert f"{STEP_HEADER}\nTake the payment." in system_of(s.llm.requests[3])
    await say(s, "hmm")  # an unknown step is logged and skipped: the step stays
    assert f"{STEP_HEADER}\nTake the payment." in system_of(s.llm.requests[5])
    assert [e["name"] for e in s.events("ai_change_step")] == ["order", "pay"]
    await done(s)


# -- context_switch ------------------------------------------------------------------------------

POM = [{"title": "Role", "body": "You handle billing."}]
SWITCH_CASES: dict[str, tuple[dict[str, Any] | FunctionResult, str, list[tuple[str, Any]]]] = {
    # the string form: the new prompt joins the conversation; the base prompt and history stay
    "inject": (
        FunctionResult("ok").switch_context("You handle billing now."),
        BASE,
        [("user", "my card was charged twice"), ("system", "You handle billing now.")],
    ),
    # full_reset: nothing before the switch stays in view, and the prompt replaces the base
    "full_reset": (
        FunctionResult("ok").switch_context("You handle billing.", full_reset=True),
        "You handle billing.",
        [],
    ),
    "consolidate": (
        FunctionResult("ok").switch_context("Billing rules apply.", "I need billing help.", consolidate=True),
        BASE,
        [
            ("system", "Summary of the conversation so far:\nCaller: my card was charged twice"),
            ("system", "Billing rules apply."),
            ("user", "I need billing help."),
        ],
    ),
    "pom": (
        {"response": "ok", "action": [{"context_switch": {"system_pom": POM}}]},
        BASE,
        [("user", "my card was charged twice"), ("system", render_pom(POM))],
    ),
}


@pytest.mark.parametrize("case", sorted(SWITCH_CASES))
async def test_context_switch_rebuilds_what_the_model_sees(case: str) -> None:
    result, base, kept = SWITCH_CASES[case]
    s = call_of(ai_of(dm("billing", result)), [call("billing"), "Let me look.", "Refunded."])
    await s.start()
    await say(s, "my card was charged twice")
    follow = s.llm.requests[1]  # the tool loop's next round already runs under the switch
    assert system_of(follow) == base
    assert dialogue(follow)[: len(kept)] == kept
    assert [m["role"] for m in follow[1 + len(kept) :]] == ["assistant", "tool"]
    await say(s, "thanks")
    later = s.llm.requests[2]
    assert system_of(later) == base and dialogue(later)[: len(kept)] == kept
    assert dialogue(later)[-1] == ("user", "thanks")
    assert any(m.get("content") == "my card was charged twice" for m in s.session.history)  # the call log keeps it
    await done(s)


# -- runtime ASR timing --------------------------------------------------------------------------


async def timed_turns(ai: dict[str, Any], tool: str, speech_ms: int, ticks: int) -> Scenario:
    """A spoken turn, a typed turn whose reply calls `tool`, a spoken turn (typed: no preemptive
    reply whose tool call would land inside the spoken turn it answers)."""
    s = call_of(ai, ["Hello.", call(tool), "Take your time.", "Fine."], phrases={VOICE_HZ: "and so on"})
    await s.start()
    await s.play(tone(VOICE_HZ, speech_ms), ticks=ticks)
    await say(s, "set it up")
    await s.play(tone(VOICE_HZ, speech_ms), ticks=ticks)
    return s


def silences_ms(s: Scenario) -> list[int]:
    """Per turn, the silence after the caller's last voiced sample until the endpoint (16 kHz clock)."""
    ended = [e["caller_sample"] for e in s.events("turn_speech_ended")]
    endpoints = [e["caller_sample"] for e in s.events("turn_endpoint")]
    return [(b - a) // 16 for a, b in zip(ended, endpoints, strict=True)]


async def test_end_of_speech_timeout_action_sets_the_silence_that_ends_the_next_turns() -> None:
    tool = dm("patient", FunctionResult("ok").set_end_of_speech_timeout(2000))
    s = await timed_turns(ai_of(tool, params={"end_of_speech_timeout": 500}), "patient", 1000, 150)
    assert silences_ms(s) == [500, 2000]
    await done(s)


async def test_speech_event_timeout_action_ends_a_turn_whose_transcript_stopped_changing() -> None:
    tool = dm("noisy", {"response": "ok", "action": [{"speech_event_timeout": "1000"}]})  # seed 001: number or text
    s = await timed_turns(ai_of(tool, params={"speech_event_timeout": 0}), "noisy", 4000, 60)  # 0: off
    reasons = [e["reason"] for e in s.events("turn_endpoint")]
    assert reasons[0] == "end_of_speech" and reasons[1] == "speech_event_timeout"
    await done(s)


@pytest.mark.parametrize("value", ["soon", -5, True, "inf"])
async def test_a_bad_timing_value_is_skipped_and_the_turn_timing_stays(value: Any) -> None:
    tool = dm("bad", {"response": "ok", "action": [{"end_of_speech_timeout": value}]})
    s = await timed_turns(ai_of(tool, params={"end_of_speech_timeout": 500}), "bad", 1000, 100)
    assert silences_ms(s) == [500, 500]
    await done(s)


# -- transfer_summary (ai.params) ----------------------------------------------------------------


async def destination() -> tuple[web.AppRunner, str, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    async def agent(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response({"sections": {"main": [{"play": {"url": "say:sales here"}}, "hangup"]}})

    app = web.Application()
    app.router.add_post("/sales", agent)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/sales", seen


@pytest.mark.parametrize(
    ("how", "param"), [("transfer", True), ("swml_transfer", True), ("transfer", False), ("summarize_off", True)]
)
async def test_transfer_summary_param_summarizes_every_transfer(tmp_path: Path, how: str, param: bool) -> None:
    runner, dest, seen = await destination()
    result = {
        "transfer": FunctionResult("Handing off.").add_action("transfer", dest),
        "swml_transfer": FunctionResult("Handing off.").swml_transfer(dest, "unused"),
        "summarize_off": FunctionResult("Handing off.").add_action("transfer", {"dest": dest, "summarize": False}),
    }[how]
    llm = ScriptedLlm(["Hello", call("handoff"), "Bye", "Caller Ann wants sales."])
    h = AiHarness(tmp_path, llm, [], {CALLER_HZ: "a human please"})
    ai = ai_of(dm("handoff", result), params={"wait_for_user": False, "transfer_summary": param})
    try:
        async with aiohttp.ClientSession() as http:
            await run_script(
                h,
                {"main": ["answer", {"ai": ai}, {"play": {"url": "say:not here"}}]},
                http=http,
                on_tick=h.speaker({60: tone(CALLER_HZ, 1000)}),
                ticks=300,
            )
    finally:
        await runner.cleanup()
    (body,) = seen
    summarized = param and how != "summarize_off"  # the action's own summarize: false wins
    assert body["vars"].get("transfer_summary") == ("Caller Ann wants sales." if summarized else None)
    # the transfer action passes it to the destination; a SWML document uses ${transfer_summary} itself
    expect_params = {"transfer_summary": "Caller Ann wants sales."} if summarized and how == "transfer" else None
    assert (body.get("params") or None) == expect_params
    assert len(llm.requests) == (4 if summarized else 3)
    assert h.tts.spoken == ["sales here"]


# -- what the README promises an SDK user -------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_every_action_the_sdk_emits_is_honoured_with_a_test() -> None:
    tree = ast.parse(inspect.getsource(function_result))  # code only: docstring examples are not calls
    emitted = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_action"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }
    assert {"SWML", "stop", "context_switch", "toggle_functions"} <= emitted  # the parse found them
    assert emitted <= set(ACTIONS)
    assert [name for name in sorted(emitted) if ACTION_STATUS[name].status != HONOURED] == []


def test_the_readme_sdk_section_names_only_tests_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## SignalWire SDK agents: what you can rely on", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`((?:tests/)?[\w/]*test_\w+\.py)(?:::(\w+))?`", section)
    assert len(named) >= 10
    for path, name in named:
        file = ROOT / path if path.startswith("tests/") else next(ROOT.glob(f"tests/**/{path}"))
        assert file.is_file(), path
        assert not name or f"def {name}(" in file.read_text(encoding="utf-8"), f"{path}::{name}"
