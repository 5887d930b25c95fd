"""`LanguageModel` over any OpenAI-compatible chat completions endpoint (OpenAI, Ollama, vLLM,
llama.cpp server), streaming, through `openai.AsyncOpenAI` (its HTTP client, auth and errors; the chunks parsed here).

Theory of operation: one client (one HTTP connection pool) per base URL, shared by all calls.
`stream()` sends one streaming request and turns the server-sent chunks into `LlmEvent`s: text
deltas at once, tool calls accumulated by their `index` (id and name come in the first fragment,
arguments in many) and emitted complete when the finish reason arrives, then `LlmFinished`.

Timeouts are enforced here, per chunk, rather than by the HTTP client's read timeout, because
the two that matter are end-to-end: no meaningful chunk (text, tool call or finish) within
`first_token_timeout_s` of sending, or the whole reply past `timeout_s`. Each wait for the next
chunk runs under `asyncio.timeout_at`, never around a `yield`, so the consumer's own time between
events is not charged to the model. The client does no retries (`max_retries=0`): on a call, a
retry after a timeout only adds dead air; the kernel speaks a recovery phrase instead.

Every way out (end of stream, error, `aclose()`, cancellation of the consuming task) goes
through `finally: await stream.close()`, which closes the HTTP response, so the server sees the
disconnect and can stop generating.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai

from mediaserver.pipeline.engines import LlmOptions
from mediaserver.pipeline.llm import LlmError, LlmEvent, LlmFinished, LlmSettings, TextDelta, ToolCallRequested

__all__ = ["OpenAiLanguageModel", "build"]


@dataclass
class _PartialToolCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class OpenAiLanguageModel:
    def __init__(self, base_url: str, api_key: str = "none", default_headers: dict[str, str] | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"LLM base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "none", default_headers=default_headers, max_retries=0
        )
        # The SDK imports its chat resources on first use (~35 ms): here, on the thread that
        # loads the engines, not on the event loop in the middle of the first call's reply.
        self._completions = self._client.chat.completions
        with contextlib.suppress(ImportError):  # and the HTTP client's anyio backend (~11 ms), likewise
            importlib.import_module("anyio._backends._asyncio")

    async def aclose(self) -> None:
        await self._client.close()

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[LlmEvent]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        hard_deadline = started + settings.timeout_s
        first_deadline = min(started + settings.first_token_timeout_s, hard_deadline)
        # The conversation and the tools go as `extra_body`, sent as they are: the SDK's request
        # transform walks every nested message on the event loop (milliseconds for a long
        # history, each one a late media frame), and these are plain JSON already.
        body: dict[str, Any] = {"messages": messages}
        if tools:
            body["tools"] = tools
        response: Any = None
        got_first = False
        calls: dict[int, _PartialToolCall] = {}
        try:
            try:
                async with asyncio.timeout_at(first_deadline):
                    response = await self._completions.with_streaming_response.create(
                        model=settings.model,
                        messages=[],
                        stream=True,
                        extra_body=body,
                        timeout=settings.timeout_s,
                        **settings.knobs(),
                    ).__aenter__()
                chunks = _sse_chunks(response.iter_lines())
                while True:
                    async with asyncio.timeout_at(hard_deadline if got_first else first_deadline):
                        try:
                            chunk = await chunks.__anext__()
                        except StopAsyncIteration:
                            break
                    events = _events(chunk, calls)
                    got_first = got_first or bool(events)
                    for event in events:
                        yield event  # outside the timeout: the consumer's time is its own
                        if isinstance(event, LlmFinished):
                            return
            except TimeoutError:
                what = "the reply" if got_first else "the first token"
                limit = settings.timeout_s if got_first else settings.first_token_timeout_s
                raise LlmError("timeout", f"no {what} within {limit:g} s from {self.base_url}") from None
            except openai.APITimeoutError:
                raise LlmError("timeout", f"HTTP timeout after {settings.timeout_s:g} s from {self.base_url}") from None
            except openai.APIStatusError as error:
                raise LlmError(
                    "http", f"{error.status_code} from {self.base_url}: {error.message}", status=error.status_code
                ) from None
            except openai.APIConnectionError as error:
                raise LlmError("connection", f"{self.base_url}: {error.__cause__ or error}") from None
            except httpx2.TimeoutException as error:
                raise LlmError("timeout", f"{self.base_url}: {error!r}") from None
            except httpx2.TransportError as error:  # raised mid-stream, e.g. the peer closed the connection
                raise LlmError("connection", f"{self.base_url}: stream broken: {error}") from None
            except (json.JSONDecodeError, openai.APIError) as error:
                raise LlmError("bad_response", f"{self.base_url}: {error}") from None
            raise LlmError("connection", f"{self.base_url}: stream ended without a finish reason")
        finally:
            if response is not None:
                await response.close()


async def _sse_chunks(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Server-sent events -> each `data:` payload as a dict, until `[DONE]` (parsed with `json`:
    the SDK's typed chunk objects cost a fraction of a millisecond each, on the event loop)."""
    event = ""
    async for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
            continue
        if not line.startswith("data:"):
            continue  # blank separators, comments (":"), ids, retry hints
        data = line[5:].strip()
        if data == "[DONE]":
            return
        payload = json.loads(data)
        if not isinstance(payload, dict):
            raise LlmError("bad_response", f"a chunk that is not an object: {data:.200}")
        if event == "error" or "error" in payload:
            raise LlmError("bad_response", f"an error in the stream: {data:.200}")
        event = ""
        yield payload


def _events(chunk: dict[str, Any], calls: dict[int, _PartialToolCall]) -> list[LlmEvent]:
    """One streamed chunk -> events; tool calls accumulate in `calls` until the finish reason."""
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        raise LlmError("bad_response", f"chunk without a choices list: {chunk!r:.200}")
    events: list[LlmEvent] = []
    for choice in choices[:1]:  # n=1: only the first choice is ever requested
        if not isinstance(choice, dict):
            raise LlmError("bad_response", f"a choice that is not an object: {choice!r:.200}")
        delta = choice.get("delta") or {}
        if delta.get("content"):
            events.append(TextDelta(str(delta["content"])))
        for fragment in delta.get("tool_calls") or []:
            index = fragment.get("index")
            partial = calls.setdefault(index if isinstance(index, int) else len(calls), _PartialToolCall())
            if fragment.get("id"):
                partial.id = str(fragment["id"])
            function = fragment.get("function") or {}
            if function.get("name"):
                partial.name += str(function["name"])
            if function.get("arguments"):
                partial.arguments.append(str(function["arguments"]))
        if choice.get("finish_reason"):
            for index in sorted(calls):
                call = calls[index]
                if not call.name:
                    raise LlmError("bad_response", f"tool call #{index} has no function name")
                events.append(
                    ToolCallRequested(
                        id=call.id or f"call_{index}", name=call.name, arguments="".join(call.arguments) or "{}"
                    )
                )
            calls.clear()
            events.append(LlmFinished(str(choice["finish_reason"])))
    # A role-only or usage-only chunk yields nothing and does not count as the first token.
    return events


def build(options: LlmOptions) -> OpenAiLanguageModel:
    """The `ENGINES["llm"]["openai"]` factory (no I/O until the first request)."""
    return OpenAiLanguageModel(options.base_url, options.api_key or "none")
