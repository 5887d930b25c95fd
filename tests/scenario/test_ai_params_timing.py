"""The conversation-timing `ai.params` (agents/ai/turn_taking.py), each on a real session.

Pause mode (start_paused, enable_pause, ai_name, wake_prefix), functions_on_no_response,
function_wait_for_talking, barge_functions, transparent_barge(_max_time) and
acknowledge_interruptions / interrupt_prompt. The calls run on the manual clock of
`ai_fakes.Scenario` (one 20 ms tick per step, each agent word 200 ms = 10 ticks); each test
compares the key set against the key unset (or set otherwise).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.tools import AiControl, StaticTool, StaticToolRunner
from mediaserver.agents.ai.turn_taking import DEFAULT_INTERRUPT_PROMPT, PAUSE_FUNCTION
from mediaserver.pipeline.llm import LlmFinished, LlmSettings, TextDelta
from tests.scenario.ai_fakes import Scenario, ScriptedLlm, ToolCallRequested, drain, tone

GREETING = "one two three four five six seven eight nine ten"  # 10 words x 200 ms: ticks 1..100


def ai(languages: list[dict[str, Any]] | None = None, **params: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"prompt": {"text": "You are a test."}, "params": params}
    if languages is not None:
        doc["languages"] = languages
    return doc


def call(name: str) -> ToolCallRequested:
    return ToolCallRequested(f"call_{name}", name, "{}")


class RecordingLlm(ScriptedLlm):
    """ScriptedLlm that also keeps the tools each request offered."""

    def __init__(self, script: list[Any]) -> None:
        super().__init__(script)
        self.tools: list[list[dict[str, Any]] | None] = []

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[Any]:
        self.tools.append(tools)
        return super().stream(messages, tools=tools, settings=settings)


def names(tools: list[dict[str, Any]] | None) -> list[str]:
    return sorted(d["function"]["name"] for d in tools or [])


def users(requests: list[list[dict[str, Any]]]) -> list[str]:
    """The last user message of each request."""
    return [next(m["content"] for m in reversed(r) if m["role"] == "user") for r in requests]


# -- pause mode ---------------------------------------------------------------------------------


async def test_start_paused_answers_only_a_turn_with_the_wake_prefix_and_name() -> None:
    phrases = {500: "what time is it", 700: "hey Max what time is it", 900: "max what time is it"}
    plain = Scenario(ai(wait_for_user=True), llm=ScriptedLlm(["It is noon."]), phrases=phrases)
    await plain.start()
    await plain.play(tone(500, 800), ticks=60)
    assert plain.tts.spoken == ["It is noon."]  # not paused: the turn is answered
    await plain.finish()

    s = Scenario(
        ai(start_paused=True, ai_name="max", wake_prefix="hey", attention_timeout=2000),
        llm=ScriptedLlm(["It is noon."]),
        phrases=phrases,
    )
    await s.start()
    await s.play(ticks=150)  # no opening, and no attention prompt while paused
    assert [e["reason"] for e in s.events("ai_paused")] == ["start_paused"]
    assert not s.llm.requests and not s.tts.spoken and not s.agent_ticks()
    await s.play(tone(500, 800), ticks=60)
    await s.play(tone(900, 800), ticks=60)  # the name without the prefix does not wake it
    assert not s.llm.requests and not s.tts.spoken
    assert [e["text"] for e in s.events("ai_pause_ignored")] == ["what time is it", "max what time is it"]
    assert not any(m["role"] == "user" for m in s.session.history)  # turns not answered stay out
    await s.play(tone(700, 800), ticks=60)
    assert users(s.llm.requests) == ["hey Max what time is it"]
    assert s.tts.spoken == ["It is noon."] and [e["text"] for e in s.events("ai_woken")] == ["hey Max what time is it"]
    await s.finish()


async def test_enable_pause_offers_pause_conversation_and_the_ai_name_resumes() -> None:
    phrases = {500: "hold on a second", 700: "what time is it", 900: "okay computer what time is it"}
    off = Scenario(ai(wait_for_user=True), llm=RecordingLlm(["Sure."]), phrases=phrases)
    await off.start()
    await off.play(tone(500, 800), ticks=60)
    assert isinstance(off.llm, RecordingLlm) and PAUSE_FUNCTION not in names(off.llm.tools[0])
    await off.finish()

    llm = RecordingLlm([call(PAUSE_FUNCTION), "It is noon."])
    s = Scenario(ai(wait_for_user=True, enable_pause=True), llm=llm, phrases=phrases)
    await s.start()
    await s.play(tone(500, 800), ticks=60)
    assert names(llm.tools[0]) == [PAUSE_FUNCTION]
    assert len(llm.requests) == 1 and not s.tts.spoken  # paused: the reply says nothing after the function
    assert [e["reason"] for e in s.events("ai_paused")] == ["function"]
    await s.play(tone(700, 800), ticks=60)
    assert len(llm.requests) == 1 and not s.tts.spoken  # not addressed: not answered
    await s.play(tone(900, 800), ticks=60)  # ai_name's default, "computer", any case
    assert users(llm.requests[1:]) == ["okay computer what time is it"]
    assert s.tts.spoken == ["It is noon."]
    await s.finish()


# -- functions_on_no_response ----------------------------------------------------------------------


async def test_functions_on_no_response_offers_tools_to_the_attention_prompt() -> None:
    tools = StaticToolRunner([StaticTool("lookup", "Look it up.", lambda a, c: "ok")])
    offered = []
    for on in (False, True):
        llm = RecordingLlm(["Are you there?"])
        s = Scenario(ai(wait_for_user=True, attention_timeout=2000, functions_on_no_response=on), llm=llm, tools=tools)
        await s.start()
        await s.play(ticks=110)
        assert len(llm.requests) == 1 and llm.requests[0][-1]["role"] == "system"  # the nudge
        offered.append(names(llm.tools[0]))
        await s.finish()
    assert offered == [[], ["lookup"]]


# -- function_wait_for_talking -----------------------------------------------------------------------


async def filler_then_lookup(wait: bool) -> tuple[Scenario, list[int]]:
    """The caller asks; the LLM calls `lookup`, whose language filler is three words (30 ticks)."""
    ran_at: list[int] = []
    scenario: list[Scenario] = []

    def lookup(args: dict[str, Any], control: AiControl) -> str:
        ran_at.append(scenario[0].tick)
        return "shipped"

    s = Scenario(
        ai([{"function_fillers": ["one moment please"]}], wait_for_user=True, function_wait_for_talking=wait),
        llm=ScriptedLlm([call("lookup"), "It shipped."]),
        phrases={500: "where is my order"},
        tools=StaticToolRunner([StaticTool("lookup", "Look it up.", lookup)]),
    )
    scenario.append(s)
    await s.start()
    await s.play(tone(500, 800), ticks=120)
    assert s.tts.spoken == ["one moment please", "It shipped."]
    return s, ran_at


async def test_function_wait_for_talking_runs_the_function_after_the_filler_played() -> None:
    for wait in (False, True):
        s, [ran_at] = await filler_then_lookup(wait)
        filler = s.agent_ticks()[:30]
        assert filler == list(range(filler[0], filler[0] + 30))
        if wait:
            assert ran_at >= filler[-1]  # the filler had played when the function ran
        else:
            assert ran_at < filler[0]  # the function ran while the filler was still to play
        await s.finish()


# -- barge_functions -------------------------------------------------------------------------------


class HeldToolLlm(ScriptedLlm):
    """Says `text`, then calls `tool` once `release` is set; then answers "Done."."""

    def __init__(self, text: str, tool: str) -> None:
        super().__init__([])
        self.text, self.tool = text, tool
        self.release = asyncio.Event()

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[Any]:
        self.requests.append([dict(m) for m in messages])
        if len(self.requests) > 1:
            yield TextDelta("Done.")
            yield LlmFinished("stop")
            return
        yield TextDelta(self.text)
        await self.release.wait()
        yield call(self.tool)
        yield LlmFinished("tool_calls")


async def barge_then_call(barge_functions: bool, caller_words: str) -> tuple[Scenario, list[str]]:
    """The agent talks, the caller speaks over it, and only then the LLM calls `lookup`."""
    ran: list[str] = []
    tools = StaticToolRunner([StaticTool("lookup", "Look it up.", lambda a, c: ran.append("lookup") or "ok")])
    llm = HeldToolLlm(GREETING + ". ", "lookup")
    s = Scenario(ai(barge_functions=barge_functions), llm=llm, phrases={500: caller_words}, tools=tools)
    await s.start()
    await s.play(ticks=20)
    await s.play(tone(500, 100))  # the barge-in pauses the agent at once; the words come later
    assert s.events("barge_paused") and not s.events("barge_flushed") and not s.events("barge_resumed")
    llm.release.set()
    await drain()
    return s, ran


async def test_barge_functions_runs_a_function_while_the_caller_interrupts_only_when_on() -> None:
    s, ran = await barge_then_call(True, "stop please")
    assert ran == ["lookup"]  # on (the default): it runs although the agent is being interrupted
    await s.finish()

    for words, runs in (("uh-huh", True), ("stop please", False)):
        s, ran = await barge_then_call(False, words)
        assert ran == []  # off: it waits for the barge-in to be settled
        await s.play(tone(500, 600), ticks=120)
        settled = "barge_resumed" if runs else "barge_flushed"
        assert s.events(settled)
        assert ran == (["lookup"] if runs else [])  # resumed: it runs; cut: never
        await s.finish()


# -- transparent_barge -----------------------------------------------------------------------------


async def transparent(second: bool, over: str = "two people", **params: Any) -> Scenario:
    """Words over the greeting (barge_min_words 3: no cut), then maybe more after it ended."""
    s = Scenario(
        ai(static_greeting=GREETING, barge_min_words=3, **params),
        llm=ScriptedLlm(["Booked.", "Anything else?"]),
        phrases={500: over, 700: "at eight"},
    )
    await s.start()
    await s.play(ticks=20)
    await s.play(tone(500, 600), ticks=60)
    assert s.events("barge_resumed") and not s.events("barge_flushed")
    await s.play(ticks=60)  # the greeting has ended
    if second:
        await s.play(tone(700, 800), ticks=60)
    return s


async def test_transparent_barge_keeps_words_over_the_agent_for_the_next_turn() -> None:
    s = await transparent(True)
    assert users(s.llm.requests) == ["two people at eight"]  # answered together, once the caller finished
    assert [e["outcome"] for e in s.events("ai_transparent_barge")] == ["held"]
    await s.finish()

    s = await transparent(True, transparent_barge=False)
    assert users(s.llm.requests) == ["at eight"]  # off: the words over the agent are dropped
    assert not s.events("ai_transparent_barge")
    await s.finish()

    s = await transparent(True, over="uh-huh")
    assert users(s.llm.requests) == ["at eight"]  # a backchannel is not a word to answer
    assert not s.events("ai_transparent_barge")
    await s.finish()


async def test_transparent_barge_max_time_answers_held_words_alone() -> None:
    s = await transparent(False, transparent_barge_max_time=1000)
    end = max(s.agent_ticks())
    assert not s.llm.requests  # the agent fell quiet less than 1 s ago
    await s.play(ticks=20)
    [request] = s.llm.requests
    assert users([request]) == ["two people"]
    [answered] = [t for t, e in s.event_ticks if e.get("outcome") == "answered"]
    assert end + 50 <= answered <= end + 55  # 1000 ms after the agent fell quiet
    await s.finish()


# -- acknowledge_interruptions / interrupt_prompt ---------------------------------------------------


async def test_acknowledge_interruptions_tells_the_llm_it_was_interrupted() -> None:
    notes = []
    for params in ({}, {"acknowledge_interruptions": True}, {"interrupt_prompt": "Apologise for talking over them."}):
        s = Scenario(ai(static_greeting=GREETING, **params), llm=ScriptedLlm(["Sure."]), phrases={500: "stop please"})
        await s.start()
        await s.play(ticks=30)
        await s.play(tone(500, 800), ticks=60)
        assert s.events("barge_flushed")
        [request] = s.llm.requests
        assert request[-1] == {"role": "user", "content": "stop please"}
        notes.append(request[-2]["content"] if request[-2]["role"] == "system" else None)
        await s.finish()
    assert notes == [None, DEFAULT_INTERRUPT_PROMPT, "Apologise for talking over them."]


# -- bad values ------------------------------------------------------------------------------------


def test_bad_values_are_named_and_the_defaults_used() -> None:
    config = AiSessionConfig.from_params(
        ai(start_paused="maybe", transparent_barge_max_time=99_999, ai_name="  ", barge_functions="often")
    )
    joined = "\n".join(config.warnings)
    for key in ("params.start_paused", "params.transparent_barge_max_time", "params.ai_name", "params.barge_functions"):
        assert key in joined
    t = config.turn_taking
    assert (t.start_paused, t.transparent_barge_max_ms, t.ai_name, t.barge_functions) == (
        False,
        60_000,
        "computer",
        True,
    )
