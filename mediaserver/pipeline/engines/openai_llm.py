"""`LanguageModel` over any OpenAI-compatible chat completions endpoint (OpenAI, Ollama, vLLM,
llama.cpp server), streaming, over aiohttp (the server's HTTP client elsewhere too).

Theory of operation: one HTTP session (one connection pool) per base URL, shared by all calls,
opened on the first request on the loop that makes it. `stream()` sends one streaming request
(`POST {base_url}/chat/completions`, bearer key, `stream: true`) and turns the server-sent chunks
into `LlmEvent`s: text deltas at once, tool calls accumulated by their `index` (id and name come
in the first fragment, arguments in many) and emitted complete when the finish reason arrives,
then `LlmFinished`.

Why not the `openai` SDK (it still serves `openai_asr`): every reply's request is built on the
media loop, and the SDK's first step of one (request options, its HTTP client's models, an
anyio task group) took about six times the CPU of this engine's at the median (0.6-1.0 ms
against 0.1-0.16 ms in runs of `python -m benchmarks.llm_request_cost`, 30 requests each);
benchmarks.capacity ai found those steps behind most of the ticker's last late frames at 12 AI
calls. The SDK's request transform
and its typed chunks were already bypassed (plain JSON both ways), so the wire is the same.

Timeouts are enforced here, per chunk, rather than by the HTTP client, because the two that
matter are end-to-end: no meaningful chunk (text, tool call or finish) within
`first_token_timeout_s` of sending, or the whole reply past `timeout_s`. Each wait for the next
chunk runs under `asyncio.timeout_at`, never around a `yield`, so the consumer's own time between
events is not charged to the model. Nothing is retried: on a call, a retry after a timeout only
adds dead air; the kernel speaks a recovery phrase instead.

Every way out before the finish (error, `aclose()`, cancellation of the consuming task) closes
the HTTP connection (`finally: response.close()`), so the server sees the disconnect and can
stop generating.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

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
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {
            **(default_headers or {}),
            "Authorization": f"Bearer {api_key or 'none'}",
            "Accept": "text/event-stream",
        }
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # trust_env: an HTTP(S)_PROXY in the environment reaches a hosted LLM, as with the SDK.
            self._session = aiohttp.ClientSession(headers=self._headers, trust_env=True)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[LlmEvent]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        hard_deadline = started + settings.timeout_s
        first_deadline = min(started + settings.first_token_timeout_s, hard_deadline)
        body: dict[str, Any] = {"model": settings.model, "messages": messages, "stream": True, **settings.knobs()}
        if tools:
            body["tools"] = tools
        response: aiohttp.ClientResponse | None = None
        got_first = False
        calls: dict[int, _PartialToolCall] = {}
        try:
            try:
                async with asyncio.timeout_at(first_deadline):
                    response = await self._http().post(self._url, json=body)
                    if response.status >= 400:
                        raise LlmError(
                            "http",
                            f"{response.status} from {self.base_url}: {_error_message(await response.text())}",
                            status=response.status,
                        )
                chunks = _sse_chunks(response.content)
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
            except aiohttp.ClientConnectorError as error:
                raise LlmError("connection", f"{self.base_url}: {error}") from None
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as error:
                # raised mid-stream, e.g. the peer closed the connection
                raise LlmError("connection", f"{self.base_url}: stream broken: {error!r}") from None
            except (aiohttp.ClientError, ValueError) as error:  # ValueError: bad JSON, bad UTF-8, a line too long
                raise LlmError("bad_response", f"{self.base_url}: {error}") from None
            raise LlmError("connection", f"{self.base_url}: stream ended without a finish reason")
        finally:
            if response is not None:
                response.close()  # a no-op after a complete body; else the server sees the disconnect


def _error_message(text: str) -> str:
    """An error body's `error.message` (the OpenAI shape), else the body itself, shortened."""
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:200] or "no body"
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return text[:200]


async def _sse_chunks(content: aiohttp.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """Server-sent events -> each `data:` payload as a dict, until `[DONE]` (parsed with `json`)."""
    event = ""
    async for raw in content:
        line = raw.decode("utf-8").rstrip("\r\n")
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
