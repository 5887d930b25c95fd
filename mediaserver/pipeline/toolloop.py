"""The LLM tool loop both agents share: stream, collect tool calls, run them, ask again.

Theory of operation: `run_tool_loop(llm, messages, hooks, ...)` makes at most `max_rounds` LLM
calls. Each round streams the model over `messages` with the tools `tools()` offers and the
settings `settings()` gives now (both asked every round: a tool's action may toggle functions or
swap the model). Text deltas go to `hooks.on_text` as they
arrive (the `ai` verb splits them into clauses and speaks them; the sidecar only keeps the
joined text). A reply without tool calls ends the loop with `end="answer"`; the loop does not
append it (each caller records its final answer its own way). A reply with tool calls gets one
assistant message `{role: assistant, content: text or None, tool_calls: [...]}` and then, per
call in order, one tool message `{role: tool, tool_call_id, content}` with the content that
`hooks.run_tool` answered. Every call an assistant message names gets its tool message: when a
call ends the loop (`ToolAnswer.stop`, or `hooks.stopped()` after it ran) the calls after it
are answered "Not run." (an OpenAI-style server refuses a call without its reply). Both
messages are appended to `messages` by the loop and then shown to `hooks.on_message` (history
pruning, the new-messages list).

What differs between the users is in `ToolLoopHooks` (every method has a no-op default):
`before_request` (events, throttling), `on_text`, `on_response`, `llm_failed` (map or absorb a
failed LLM call: True ends the loop with `end="failed"`, False re-raises), `before_tools` (a
spoken filler, a `thought` event), `run_tool` (the tool runner: guards, invocation, failure
policy), `after_tool` (events that follow the tool message) and `stopped` (cancellation
between tool calls). A hook may raise to abort the loop; cancelling the task that runs the loop
cancels the LLM stream at its await point (closing the HTTP stream, see `pipeline.llm`), and
`complete` closes a generator stream it leaves early.

The loop knows nothing of SWAIG or the kernel: the tool runner is behind `run_tool`, so this
module stays in `pipeline` and both agents (the `ai` verb's `Reply`, the sidecar's engine)
import it from above.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from mediaserver.pipeline.llm import LanguageModel, LlmEvent, LlmFinished, LlmSettings, TextDelta, ToolCallRequested

__all__ = [
    "NOT_RUN",
    "Completion",
    "ToolAnswer",
    "ToolLoopHooks",
    "ToolLoopResult",
    "assistant_message",
    "complete",
    "run_tool_loop",
]

NOT_RUN = "Not run."

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Completion:
    """One LLM call's reply: its joined text, its tool calls in order, its finish reason."""

    text: str
    calls: list[ToolCallRequested] = field(default_factory=list)
    reason: str = "stop"


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    """What a tool call answers the model; `stop` ends the loop after this call."""

    content: str
    stop: bool = False
    detail: Any = None  # whatever the hook wants back in `after_tool` (an outcome, a verdict)


@dataclass(frozen=True, slots=True)
class ToolLoopResult:
    """How the loop ended and the last reply's text.

    end: "answer" (a reply without tool calls), "stopped" (a tool call or `stopped()` ended it),
    "limit" (`max_rounds` LLM calls, each with tool calls), "failed" (`llm_failed` absorbed an
    LLM error). `rounds`: the LLM calls made.
    """

    end: Literal["answer", "stopped", "limit", "failed"]
    text: str
    rounds: int


class ToolLoopHooks:
    """What a user of the loop changes; the defaults do nothing (`run_tool` answers not run)."""

    async def before_request(self, round_: int, messages: list[Message]) -> None:
        """Just before LLM call number `round_` (from 0) over `messages`."""

    def on_text(self, text: str) -> None:
        """A non-empty text delta, as it streams."""

    def on_response(self, round_: int, completion: Completion) -> None:
        """The LLM call finished without an error."""

    def llm_failed(self, round_: int, exc: Exception) -> bool:
        """The LLM call raised `exc` (or `on_text` did): True ends the loop, False re-raises."""
        return False

    async def before_tools(self, round_: int, completion: Completion) -> None:
        """The reply has tool calls; called before its assistant message is appended."""

    def on_message(self, message: Message) -> None:
        """`message` was just appended to the loop's messages."""

    async def run_tool(self, round_: int, call: ToolCallRequested) -> ToolAnswer:
        """Run one tool call; the answer's content becomes its tool message."""
        return ToolAnswer(NOT_RUN)

    def after_tool(self, round_: int, call: ToolCallRequested, answer: ToolAnswer) -> None:
        """After the call's tool message (and, on a stop, the "Not run." ones) was appended."""

    def stopped(self) -> bool:
        """Checked after every tool call: True ends the loop there."""
        return False


def assistant_message(text: str, calls: list[ToolCallRequested]) -> Message:
    """The OpenAI assistant message that carries a reply's tool calls."""
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
        ],
    }


async def complete(
    llm: LanguageModel,
    messages: list[Message],
    *,
    tools: list[dict[str, Any]] | None,
    settings: LlmSettings,
    on_text: Callable[[str], None] | None = None,
    first_token_timeout_s: float | None = None,
) -> Completion:
    """Stream one LLM call to its end; TimeoutError when the first event is later than the timeout."""
    stream = llm.stream(messages, tools=tools or None, settings=settings)
    text: list[str] = []
    calls: list[ToolCallRequested] = []
    reason = "stop"
    try:
        event = await _first(stream, first_token_timeout_s)
        while event is not None:
            if isinstance(event, TextDelta):
                if event.text:
                    text.append(event.text)
                    if on_text is not None:
                        on_text(event.text)
            elif isinstance(event, ToolCallRequested):
                calls.append(event)
            elif isinstance(event, LlmFinished):
                reason = event.reason
            event = await anext(stream, None)
    finally:
        if isinstance(stream, AsyncGenerator):
            await stream.aclose()  # left early (a hook raised): close the HTTP stream now
    return Completion("".join(text), calls, reason)


async def run_tool_loop(
    llm: LanguageModel,
    messages: list[Message],
    hooks: ToolLoopHooks,
    *,
    tools: Callable[[], list[dict[str, Any]]],
    settings: Callable[[], LlmSettings],
    max_rounds: int,
    first_token_timeout_s: float | None = None,
) -> ToolLoopResult:
    """Run the tool loop over `messages` (appended to in place); see the module docstring."""
    text = ""
    for round_ in range(max_rounds):
        await hooks.before_request(round_, messages)
        definitions = tools()
        try:
            completion = await complete(
                llm,
                messages,
                tools=definitions,
                settings=settings(),
                on_text=hooks.on_text,
                first_token_timeout_s=first_token_timeout_s,
            )
        except Exception as exc:
            if hooks.llm_failed(round_, exc):
                return ToolLoopResult("failed", text, round_ + 1)
            raise
        hooks.on_response(round_, completion)
        text = completion.text
        if not completion.calls:
            return ToolLoopResult("answer", text, round_ + 1)
        await hooks.before_tools(round_, completion)
        _append(messages, hooks, assistant_message(completion.text, completion.calls))
        if await _run_calls(messages, hooks, round_, completion.calls):
            return ToolLoopResult("stopped", text, round_ + 1)
    return ToolLoopResult("limit", text, max_rounds)


async def _run_calls(
    messages: list[Message], hooks: ToolLoopHooks, round_: int, calls: list[ToolCallRequested]
) -> bool:
    """One reply's tool calls, in order; True when one of them ended the loop."""
    for n, call in enumerate(calls):
        answer = await hooks.run_tool(round_, call)
        _append(messages, hooks, {"role": "tool", "tool_call_id": call.id, "content": answer.content})
        if answer.stop:
            _not_run(messages, hooks, calls[n + 1 :])
        hooks.after_tool(round_, call, answer)
        if answer.stop:
            return True
        if hooks.stopped():
            _not_run(messages, hooks, calls[n + 1 :])
            return True
    return False


def _not_run(messages: list[Message], hooks: ToolLoopHooks, rest: list[ToolCallRequested]) -> None:
    for call in rest:
        _append(messages, hooks, {"role": "tool", "tool_call_id": call.id, "content": NOT_RUN})


def _append(messages: list[Message], hooks: ToolLoopHooks, message: Message) -> None:
    messages.append(message)
    hooks.on_message(message)


async def _first(stream: AsyncIterator[LlmEvent], timeout_s: float | None) -> LlmEvent | None:
    """The stream's first event (None: it had none); TimeoutError when it takes longer than timeout_s."""
    if timeout_s is None:
        return await anext(stream, None)
    async with asyncio.timeout(timeout_s):
        return await anext(stream, None)
