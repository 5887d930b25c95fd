"""The OpenAI-compatible LLM client against the scripted server, over real HTTP."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest

from mediaserver.pipeline.engines.openai_llm import OpenAiLanguageModel
from mediaserver.pipeline.llm import LlmError, LlmEvent, LlmFinished, LlmSettings, TextDelta, ToolCallRequested
from tests.support.llm_server import ScriptedLlmServer, ToolCall, Turn

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


async def collect(model: OpenAiLanguageModel, settings: LlmSettings | None = None, **kw: object) -> list[LlmEvent]:
    return [e async for e in model.stream(MESSAGES, settings=settings or LlmSettings(), **kw)]  # type: ignore[arg-type]


async def test_text_streams_in_the_scripted_chunks_and_records_the_request() -> None:
    turn = Turn(chunks=["Hello", " there", ", caller."], ttft_s=0.02, token_delay_s=0.01)
    async with ScriptedLlmServer([turn]) as server:
        model = OpenAiLanguageModel(server.base_url, api_key="k1", default_headers={"X-Test": "yes"})
        settings = LlmSettings(model="m1", temperature=0.3, top_p=0.9, max_tokens=50, frequency_penalty=0.1)
        events = await collect(model, settings, tools=TOOLS)
        await model.aclose()
    assert events == [TextDelta("Hello"), TextDelta(" there"), TextDelta(", caller."), LlmFinished("stop")]
    [request] = server.requests
    assert request.messages == MESSAGES
    assert request.tools == TOOLS
    assert request.body["model"] == "m1" and request.body["stream"] is True
    assert request.knobs == {"temperature": 0.3, "top_p": 0.9, "max_tokens": 50, "frequency_penalty": 0.1}
    assert request.headers["authorization"] == "Bearer k1" and request.headers["x-test"] == "yes"
    assert request.completed and not request.disconnected


async def test_tool_calls_are_assembled_from_fragments() -> None:
    args = json.dumps({"city": "Paris", "units": "metric", "days": [1, 2, 3]})
    turn = Turn(
        text="Let me check.",
        tool_calls=[ToolCall("weather", args, id="call_a"), ToolCall("time", "{}")],
        fragment_chars=5,
    )
    async with ScriptedLlmServer([turn]) as server:
        events = await collect(OpenAiLanguageModel(server.base_url), tools=TOOLS)
    assert events[:2] == [TextDelta("Let"), TextDelta(" me")]
    assert events[-3:] == [
        ToolCallRequested("call_a", "weather", args),
        ToolCallRequested(events[-2].id, "time", "{}"),  # type: ignore[union-attr]
        LlmFinished("tool_calls"),
    ]
    assert json.loads(events[-3].arguments) == {"city": "Paris", "units": "metric", "days": [1, 2, 3]}  # type: ignore[union-attr]


async def test_consecutive_turns_follow_the_script_and_finish_reasons_pass_through() -> None:
    async with ScriptedLlmServer([Turn(text="One."), Turn(text="Two", finish_reason="length")]) as server:
        model = OpenAiLanguageModel(server.base_url)
        first, second = await collect(model), await collect(model)
        exhausted = None
        try:
            await collect(model)
        except LlmError as error:
            exhausted = error
    assert first == [TextDelta("One."), LlmFinished("stop")]
    assert second == [TextDelta("Two"), LlmFinished("length")]
    assert exhausted is not None and exhausted.kind == "http" and exhausted.status == 500
    assert len(server.requests) == 3


async def test_a_request_that_only_extends_the_callers_last_words_takes_the_dropped_guesss_turn() -> None:
    """The scripted server's rule for preemptive guesses: same history, a changed last user
    message -> the turn again; a reply in the history or an identical retry -> the next turn."""
    system = {"role": "system", "content": "s"}
    guess = [system, {"role": "user", "content": "What time"}]
    whole = [system, {"role": "user", "content": "What time is it"}]
    answered = [*whole, {"role": "assistant", "content": "One."}, {"role": "user", "content": "Thanks"}]
    async with ScriptedLlmServer([Turn(text="One."), Turn(text="Two."), Turn(text="Three.")]) as server:
        model = OpenAiLanguageModel(server.base_url)

        async def text(messages: list[dict[str, object]]) -> str:
            events = [e async for e in model.stream(messages, settings=LlmSettings())]  # type: ignore[arg-type]
            return "".join(e.text for e in events if isinstance(e, TextDelta))

        said = [await text(guess), await text(whole), await text(answered), await text(answered)]
    assert said == ["One.", "One.", "Two.", "Three."]
    assert [r.superseded for r in server.requests] == [True, False, False, False]


@pytest.mark.parametrize(
    ("turn", "kind"),
    [
        (Turn(fail="http_500"), "http"),
        (Turn(fail="hang"), "timeout"),
        (Turn(text="never comes", ttft_s=5.0), "timeout"),
        (Turn(text="a b c d", fail="hang", fail_after_tokens=2), "timeout"),
        (Turn(text="a b c", fail="malformed", fail_after_tokens=1), "bad_response"),
        (Turn(text="a b c", fail="drop", fail_after_tokens=2), "connection"),
    ],
    ids=["http500", "hang", "slow-first-token", "stall", "malformed", "drop"],
)
async def test_failures_map_to_error_kinds(turn: Turn, kind: str) -> None:
    settings = LlmSettings(first_token_timeout_s=1.0, timeout_s=2.0)  # generous: CI machines are noisy
    async with ScriptedLlmServer([turn]) as server:
        events: list[LlmEvent] = []
        with pytest.raises(LlmError) as caught:
            async for event in OpenAiLanguageModel(server.base_url).stream(MESSAGES, settings=settings):
                events.append(event)
    assert caught.value.kind == kind, caught.value
    assert LlmFinished not in {type(e) for e in events}
    if turn.fail_after_tokens:
        assert events == [TextDelta(t) for t in turn.tokens()[: turn.fail_after_tokens]]


async def test_connection_refused_is_a_connection_error() -> None:
    server = ScriptedLlmServer([])
    await server.start()
    url = server.base_url
    await server.stop()  # nothing listens on that port any more
    with pytest.raises(LlmError) as caught:
        await collect(OpenAiLanguageModel(url), LlmSettings(first_token_timeout_s=2.0))
    assert caught.value.kind == "connection"


async def test_cancelling_the_consumer_closes_the_http_stream() -> None:
    turn = Turn(text=" ".join(["word"] * 200), token_delay_s=0.02)
    async with ScriptedLlmServer([turn]) as server:
        model = OpenAiLanguageModel(server.base_url)
        got: list[LlmEvent] = []
        three = asyncio.Event()

        async def consume() -> None:
            async for event in model.stream(MESSAGES, settings=LlmSettings()):
                got.append(event)
                if len(got) == 3:
                    three.set()

        task = asyncio.create_task(consume())
        await three.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [request] = server.requests
        for _ in range(200):  # the server notices within its 10 ms poll
            if request.disconnected:
                break
            await asyncio.sleep(0.01)
    assert request.disconnected and not request.completed
    assert len(got) < 50


async def test_closing_the_iterator_early_closes_the_stream() -> None:
    async with ScriptedLlmServer([Turn(text="one two three four five six", token_delay_s=0.05)]) as server:
        stream = OpenAiLanguageModel(server.base_url).stream(MESSAGES, settings=LlmSettings())
        assert await anext(stream) == TextDelta("one")  # type: ignore[call-overload]
        await stream.aclose()  # type: ignore[attr-defined]
        for _ in range(200):
            if server.requests[0].disconnected:
                break
            await asyncio.sleep(0.01)
    assert server.requests[0].disconnected


def test_sync_use_from_a_thread_and_non_streaming_wire_format() -> None:
    with ScriptedLlmServer([Turn(text="Plain answer.", tool_calls=[ToolCall("f", '{"a": 1}')])]).running() as server:
        models = httpx2.get(f"{server.base_url}/models").json()
        reply = httpx2.post(f"{server.base_url}/chat/completions", json={"model": "x", "messages": MESSAGES}).json()
    assert models["data"][0]["id"] == "scripted"
    message = reply["choices"][0]["message"]
    assert message["content"] == "Plain answer."
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert reply["choices"][0]["finish_reason"] == "tool_calls"
    assert server.requests[0].body.get("stream") is None


def test_script_files_reject_unknown_fields() -> None:
    assert Turn.from_dict({"text": "hi", "tool_calls": [{"name": "f"}]}).tool_calls == [ToolCall("f")]
    with pytest.raises(ValueError, match="ttfb"):
        Turn.from_dict({"text": "hi", "ttfb": 1})
    with pytest.raises(ValueError, match="fail"):
        Turn(fail="explode")


def test_bad_base_url_is_rejected() -> None:
    with pytest.raises(ValueError, match="base_url"):
        OpenAiLanguageModel("localhost:8000")
