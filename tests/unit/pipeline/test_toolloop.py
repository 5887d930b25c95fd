"""The shared LLM tool loop against a scripted LanguageModel: rounds, pairing, limits, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mediaserver.pipeline.llm import LlmError, LlmEvent, LlmFinished, LlmSettings, TextDelta, ToolCallRequested
from mediaserver.pipeline.toolloop import (
    NOT_RUN,
    Completion,
    ToolAnswer,
    ToolLoopHooks,
    ToolLoopResult,
    complete,
    run_tool_loop,
)

SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "What time is it?"}


def tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}


@dataclass
class Calls:
    calls: list[tuple[str, str]]  # (name, JSON arguments)
    text: str = ""


@dataclass
class Hang:
    """Yield `text`, then wait on `release` (a stream the caller cancels mid-way)."""

    text: str
    waiting: asyncio.Event = field(default_factory=asyncio.Event)  # the consumer took `text`
    release: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Request:
    messages: list[dict[str, Any]]
    tools: list[str]
    model: str


class ScriptedLlm:
    """One script entry per `stream()`: text (streamed word by word), `Calls`, `Hang` or an exception."""

    def __init__(self, script: list[Any], *, first_event_delay_s: float = 0.0) -> None:
        self.script = list(script)
        self.requests: list[Request] = []
        self.closed = 0  # streams whose generator was closed (finished, cancelled or aclose()d)
        self.first_event_delay_s = first_event_delay_s
        self._ids = 0

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[LlmEvent]:
        self.requests.append(
            Request([dict(m) for m in messages], [t["function"]["name"] for t in tools or []], settings.model)
        )
        entry = self.script.pop(0)
        try:
            if self.first_event_delay_s:
                await asyncio.sleep(self.first_event_delay_s)
            if isinstance(entry, Exception):
                raise entry
            if isinstance(entry, Hang):
                yield TextDelta(entry.text)
                entry.waiting.set()
                await entry.release.wait()
                yield LlmFinished("stop")
                return
            if isinstance(entry, Calls):
                if entry.text:
                    yield TextDelta(entry.text)
                for name, args in entry.calls:
                    self._ids += 1
                    yield ToolCallRequested(f"call_{self._ids}", name, args)
                yield LlmFinished("tool_calls")
                return
            words = str(entry).split(" ")
            for n, word in enumerate(words):
                yield TextDelta(word if n == len(words) - 1 else word + " ")
            yield TextDelta("")  # an empty delta is not text
            yield LlmFinished("stop")
        finally:
            self.closed += 1


class Recorder(ToolLoopHooks):
    """Hooks that record every call; tools answer from `answers` (a value or an exception)."""

    def __init__(self, answers: dict[str, Any] | None = None, *, stop_after: int | None = None) -> None:
        self.answers = answers or {}
        self.stop_after = stop_after  # stopped() turns True after this many tool calls
        self.log: list[tuple[Any, ...]] = []
        self.texts: list[str] = []
        self.messages: list[dict[str, Any]] = []
        self.ran: list[str] = []

    async def before_request(self, round_: int, messages: list[dict[str, Any]]) -> None:
        self.log.append(("request", round_, len(messages)))

    def on_text(self, text: str) -> None:
        self.texts.append(text)

    def on_response(self, round_: int, completion: Completion) -> None:
        self.log.append(("response", round_, completion.text, [c.name for c in completion.calls], completion.reason))

    async def before_tools(self, round_: int, completion: Completion) -> None:
        self.log.append(("tools", round_, completion.text))

    def on_message(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    async def run_tool(self, round_: int, call: ToolCallRequested) -> ToolAnswer:
        self.ran.append(call.name)
        answer = self.answers.get(call.name, f"{call.name} done")
        if isinstance(answer, Exception):
            raise answer
        return answer if isinstance(answer, ToolAnswer) else ToolAnswer(str(answer))

    def after_tool(self, round_: int, call: ToolCallRequested, answer: ToolAnswer) -> None:
        self.log.append(("after", round_, call.name, answer.content))

    def stopped(self) -> bool:
        return self.stop_after is not None and len(self.ran) >= self.stop_after


async def run(
    llm: ScriptedLlm,
    hooks: ToolLoopHooks,
    *,
    tools: list[dict[str, Any]] | None = None,
    max_rounds: int = 5,
    messages: list[dict[str, Any]] | None = None,
    first_token_timeout_s: float | None = None,
) -> tuple[ToolLoopResult, list[dict[str, Any]]]:
    msgs = messages if messages is not None else [SYSTEM, USER]
    offered = tools if tools is not None else [tool("clock")]
    result = await run_tool_loop(
        llm,
        msgs,
        hooks,
        tools=lambda: offered,
        settings=lambda: LlmSettings(model="m1"),
        max_rounds=max_rounds,
        first_token_timeout_s=first_token_timeout_s,
    )
    return result, msgs


async def test_text_only_streams_deltas_to_on_text_and_appends_nothing() -> None:
    llm = ScriptedLlm(["It is noon."])
    hooks = Recorder()
    result, messages = await run(llm, hooks)
    assert result == ToolLoopResult("answer", "It is noon.", 1)
    assert hooks.texts == ["It ", "is ", "noon."]
    assert messages == [SYSTEM, USER] and hooks.messages == []
    assert hooks.log == [("request", 0, 2), ("response", 0, "It is noon.", [], "stop")]
    [request] = llm.requests
    assert request.tools == ["clock"] and request.model == "m1"
    assert llm.closed == 1


async def test_no_tools_offered_sends_none() -> None:
    llm = ScriptedLlm(["Hi."])
    await run(llm, Recorder(), tools=[])
    assert llm.requests[0].tools == []


async def test_one_tool_round_pairs_the_call_with_its_result_and_asks_again() -> None:
    llm = ScriptedLlm([Calls([("clock", '{"tz": "UTC"}')], text="Let me check."), "It is noon."])
    hooks = Recorder({"clock": "12:00"})
    result, messages = await run(llm, hooks)
    assert result == ToolLoopResult("answer", "It is noon.", 2)
    assistant = {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "clock", "arguments": '{"tz": "UTC"}'}}
        ],
    }
    result_message = {"role": "tool", "tool_call_id": "call_1", "content": "12:00"}
    assert messages == [SYSTEM, USER, assistant, result_message]
    assert hooks.messages == [assistant, result_message]
    assert llm.requests[1].messages == [SYSTEM, USER, assistant, result_message]
    assert hooks.log == [
        ("request", 0, 2),
        ("response", 0, "Let me check.", ["clock"], "tool_calls"),
        ("tools", 0, "Let me check."),
        ("after", 0, "clock", "12:00"),
        ("request", 1, 4),
        ("response", 1, "It is noon.", [], "stop"),
    ]
    assert hooks.texts == ["Let me check.", "It ", "is ", "noon."]


async def test_two_rounds_run_calls_in_order_and_ask_tools_and_settings_every_round() -> None:
    llm = ScriptedLlm([Calls([("clock", "{}"), ("weather", "{}")]), Calls([("clock", "{}")]), "Noon, sunny."])
    offered = [[tool("clock"), tool("weather")], [tool("clock")], []]
    models = iter(["m1", "m2", "m3"])
    hooks = Recorder({"weather": "sunny"})
    messages = [SYSTEM, USER]
    result = await run_tool_loop(
        llm,
        messages,
        hooks,
        tools=lambda: offered.pop(0),
        settings=lambda: LlmSettings(model=next(models)),
        max_rounds=5,
    )
    assert result == ToolLoopResult("answer", "Noon, sunny.", 3)
    assert hooks.ran == ["clock", "weather", "clock"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool", "assistant", "tool"]
    assert messages[2]["content"] is None  # no text alongside the calls
    assert [m.get("tool_call_id") for m in messages[3:5]] == ["call_1", "call_2"]
    assert [m["content"] for m in messages[3:5]] == ["clock done", "sunny"]
    assert messages[6] == {"role": "tool", "tool_call_id": "call_3", "content": "clock done"}
    assert [r.tools for r in llm.requests] == [["clock", "weather"], ["clock"], []]
    assert [r.model for r in llm.requests] == ["m1", "m2", "m3"]


async def test_the_round_limit_ends_with_limit_and_the_last_text() -> None:
    llm = ScriptedLlm([Calls([("clock", "{}")], text=f"try {n}") for n in range(3)])
    hooks = Recorder()
    result, messages = await run(llm, hooks, max_rounds=3)
    assert result == ToolLoopResult("limit", "try 2", 3)
    assert len(llm.requests) == 3 and not llm.script
    assert [m["role"] for m in messages[2:]] == ["assistant", "tool"] * 3


async def test_a_tool_that_raises_aborts_the_loop_after_its_assistant_message() -> None:
    llm = ScriptedLlm([Calls([("clock", "{}"), ("weather", "{}")]), "never asked"])
    hooks = Recorder({"clock": RuntimeError("clock broke")})
    with pytest.raises(RuntimeError, match="clock broke"):
        await run(llm, hooks)
    assert hooks.ran == ["clock"] and len(llm.requests) == 1
    assert [m["role"] for m in hooks.messages] == ["assistant"]


async def test_a_stopping_answer_ends_the_loop_and_answers_the_rest_not_run() -> None:
    llm = ScriptedLlm([Calls([("skip", "{}"), ("clock", "{}"), ("weather", "{}")]), "never asked"])
    hooks = Recorder({"skip": ToolAnswer("Skipped.", stop=True)})
    result, messages = await run(llm, hooks)
    assert result == ToolLoopResult("stopped", "", 1)
    assert hooks.ran == ["skip"]
    assert [(m["tool_call_id"], m["content"]) for m in messages[3:]] == [
        ("call_1", "Skipped."),
        ("call_2", NOT_RUN),
        ("call_3", NOT_RUN),
    ]
    assert hooks.log[-1] == ("after", 0, "skip", "Skipped.")  # after the "Not run." replies


async def test_stopped_between_calls_ends_the_loop_with_every_call_answered() -> None:
    llm = ScriptedLlm([Calls([("clock", "{}"), ("weather", "{}")]), "never asked"])
    hooks = Recorder(stop_after=1)
    result, messages = await run(llm, hooks)
    assert result.end == "stopped" and hooks.ran == ["clock"]
    assert [m["content"] for m in messages[3:]] == ["clock done", NOT_RUN]


async def test_an_llm_error_is_re_raised_unless_llm_failed_absorbs_it() -> None:
    class Absorb(Recorder):
        def llm_failed(self, round_: int, exc: Exception) -> bool:
            self.log.append(("failed", round_, type(exc).__name__))
            return isinstance(exc, LlmError)

    error = LlmError("http", "502")
    with pytest.raises(LlmError):
        await run(ScriptedLlm([error]), Recorder())
    hooks = Absorb()
    result, messages = await run(ScriptedLlm([Calls([("clock", "{}")], text="one sec"), error]), hooks)
    assert result == ToolLoopResult("failed", "one sec", 2)
    assert hooks.log[-1] == ("failed", 1, "LlmError")
    assert len(messages) == 4  # the first round's pair stays
    with pytest.raises(ValueError):
        await run(ScriptedLlm([ValueError("engine bug")]), Absorb())


async def test_no_first_event_within_the_timeout_is_a_timeout_error() -> None:
    llm = ScriptedLlm(["late"], first_event_delay_s=0.2)
    with pytest.raises(TimeoutError):
        await run(llm, Recorder(), first_token_timeout_s=0.01)
    assert llm.closed == 1  # the timeout cancelled the stream at its await


async def test_cancelling_mid_stream_closes_the_stream_and_appends_nothing() -> None:
    hang = Hang("Let me")
    llm = ScriptedLlm([hang])
    hooks = Recorder()
    messages = [SYSTEM, USER]
    task = asyncio.create_task(run(llm, hooks, messages=messages))
    await hang.waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hooks.texts == ["Let me"]
    assert llm.closed == 1
    assert messages == [SYSTEM, USER] and hooks.messages == []
    assert [entry[0] for entry in hooks.log] == ["request"]


async def test_complete_closes_a_stream_it_leaves_early() -> None:
    llm = ScriptedLlm(["one two three"])

    def explode(text: str) -> None:
        raise RuntimeError("consumer broke")

    with pytest.raises(RuntimeError):
        await complete(llm, [USER], tools=None, settings=LlmSettings(), on_text=explode)
    assert llm.closed == 1


async def test_complete_collects_text_calls_and_reason() -> None:
    llm = ScriptedLlm([Calls([("clock", '{"a": 1}')], text="hm")])
    completion = await complete(llm, [USER], tools=[tool("clock")], settings=LlmSettings())
    assert completion == Completion("hm", [ToolCallRequested("call_1", "clock", '{"a": 1}')], "tool_calls")
