"""A scripted OpenAI-compatible LLM server for tests and benchmarks (real HTTP, aiohttp).

Serves POST /v1/chat/completions (streaming SSE and plain JSON) and GET /v1/models in the OpenAI
wire format. What it answers is a script: a list of `Turn`s consumed one per completion request,
in order. A turn is text (streamed in the chunks given, or word by word) or tool calls (streamed
as OpenAI `tool_calls` deltas, arguments in fragments), with its own time to first token and
delay between tokens, or a failure: HTTP 500, a hang (no answer at all, or a stall after some
tokens), malformed JSON in the stream, or a dropped connection mid-stream.

Every request is recorded (`server.requests`: body, messages, tools, knobs) with whether the
client went away before the reply ended (`disconnected`), for assertions on what the kernel sent
and on prompt cancellation.

Use::

    async with ScriptedLlmServer([Turn(text="Hello there.", ttft_s=0.05)]) as server:
        model = OpenAiLanguageModel(server.base_url)           # async tests

    with ScriptedLlmServer(script).running() as server:        # sync tests: its own loop in a thread
        ...

    python -m tests.support.llm_server --script turns.json --port 8001 [--loop]   # standalone

A script file is a JSON list of turn objects with the field names of `Turn`.

A request that differs from the one before only in a longer or changed last user message takes
that request's turn again: the one before was a preemptive guess made in the caller's pause and
dropped when they went on, so a script says what the agent answers to each turn the caller takes,
however many guesses the timing of the voice caused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from aiohttp import web

__all__ = ["RecordedRequest", "ScriptedLlmServer", "ToolCall", "Turn"]

FAILURES = ("http_500", "hang", "malformed", "drop")


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str = "{}"  # JSON text, sent in `fragment_chars` pieces
    id: str = ""


@dataclass(frozen=True)
class Turn:
    text: str = ""
    chunks: list[str] | None = None  # explicit token chunks; default: the text word by word
    tool_calls: list[ToolCall] = field(default_factory=list)
    ttft_s: float = 0.0  # request -> first token
    token_delay_s: float = 0.0  # between tokens
    finish_reason: str | None = None  # default: "tool_calls" if there are any, else "stop"
    fail: str | None = None  # one of FAILURES
    fail_after_tokens: int = 0  # for "hang" (stall), "malformed" and "drop": tokens sent first
    fragment_chars: int = 8

    def __post_init__(self) -> None:
        if self.fail is not None and self.fail not in FAILURES:
            raise ValueError(f"Turn.fail must be one of {FAILURES}, got {self.fail!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown turn fields {sorted(unknown)}; known: {sorted(known)}")
        calls = [ToolCall(**c) for c in data.get("tool_calls", [])]
        return cls(**{**data, "tool_calls": calls})

    def tokens(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return re.findall(r"\s*\S+", self.text)


@dataclass
class RecordedRequest:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]  # names in lower case
    disconnected: bool = False  # the client closed the connection before the reply was complete
    completed: bool = False
    superseded: bool = False  # a preemptive guess the next request replaced (its turn served again)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def tools(self) -> list[dict[str, Any]] | None:
        return self.body.get("tools")

    @property
    def knobs(self) -> dict[str, Any]:
        names = ("temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty")
        return {k: self.body[k] for k in names if k in self.body}


def _supersedes(messages: list[dict[str, Any]], previous: list[dict[str, Any]]) -> bool:
    """The same conversation with a different last caller message: the previous request was a
    preemptive guess at a turn the caller then went on with (the client drops such a request
    unheard), so the turn it took is served again instead of being lost to the guess."""
    if not messages or not previous:
        return False
    last, before = messages[-1], previous[-1]
    return (
        last.get("role") == before.get("role") == "user"
        and last.get("content") != before.get("content")
        and messages[:-1] == previous[:-1]
    )


class ScriptedLlmServer:
    def __init__(
        self, script: list[Turn], *, host: str = "127.0.0.1", port: int = 0, loop_script: bool = False
    ) -> None:
        self.script = list(script)
        self.loop_script = loop_script
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._next = 0
        self._last_index: int | None = None
        self._last_messages: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # the bound port when port=0
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ScriptedLlmServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[ScriptedLlmServer]:
        """For sync tests: serve from an event loop in a daemon thread."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="scripted-llm", daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(self.start(), loop).result(10)
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    # ---- handlers -------------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "tests"}]}
        )

    @property
    def kept_requests(self) -> list[RecordedRequest]:
        """The requests whose turn the client kept: one per script turn taken, in order."""
        return [r for r in self.requests if not r.superseded]

    def _take_turn(self, messages: list[dict[str, Any]]) -> Turn | None:
        if _supersedes(messages, self._last_messages) and self._last_index is not None:
            self._next = self._last_index  # the last request was a guess the client dropped
            self.requests[-2].superseded = True
        self._last_messages = messages
        if self._next >= len(self.script):
            if not self.loop_script or not self.script:
                return None
            self._next = 0
        turn = self.script[self._next]
        self._last_index = self._next
        self._next += 1
        return turn

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ConnectionResetError:  # the client dropped the request while sending it (a cancelled guess)
            return web.Response(status=499)
        except json.JSONDecodeError:
            return web.json_response(
                {"error": {"message": "body is not JSON", "type": "invalid_request_error"}}, status=400
            )
        record = RecordedRequest(request.path, body, {k.lower(): v for k, v in request.headers.items()})
        self.requests.append(record)
        turn = self._take_turn(record.messages)
        if turn is None:
            return web.json_response({"error": {"message": "script exhausted", "type": "server_error"}}, status=500)
        if turn.fail == "http_500":
            await asyncio.sleep(turn.ttft_s)
            return web.json_response({"error": {"message": "scripted failure", "type": "server_error"}}, status=500)
        if turn.fail == "hang" and turn.fail_after_tokens == 0:
            await self._wait_for_disconnect(request, record)
            return web.Response(status=204)
        if not body.get("stream"):
            await asyncio.sleep(turn.ttft_s)
            record.completed = True
            return web.json_response(_completion(turn, body.get("model", "scripted")))
        return await self._stream(request, record, turn, body.get("model", "scripted"))

    async def _stream(
        self, request: web.Request, record: RecordedRequest, turn: Turn, model: str
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        ident = f"chatcmpl-{len(self.requests)}"

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        try:
            await send({"role": "assistant", "content": ""})
            await self._sleep(request, record, turn.ttft_s)
            pieces: list[dict[str, Any]] = [{"content": t} for t in turn.tokens()]
            for index, call in enumerate(turn.tool_calls):
                call_id = call.id or f"call_{len(self.requests)}_{index}"
                pieces.append(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call_id,
                                "type": "function",
                                "function": {"name": call.name, "arguments": ""},
                            }
                        ]
                    }
                )
                args = call.arguments
                for at in range(0, len(args), max(1, turn.fragment_chars)):
                    fragment = args[at : at + turn.fragment_chars]
                    pieces.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
            for sent, delta in enumerate(pieces):
                if turn.fail and sent == turn.fail_after_tokens:
                    return await self._fail(request, response, record, turn)
                if sent:
                    await self._sleep(request, record, turn.token_delay_s)
                await send(delta)
            if turn.fail:
                return await self._fail(request, response, record, turn)
            await send({}, turn.finish_reason or ("tool_calls" if turn.tool_calls else "stop"))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            record.completed = True
        except (ConnectionResetError, _Disconnected):
            record.disconnected = True
        return response

    async def _fail(
        self, request: web.Request, response: web.StreamResponse, record: RecordedRequest, turn: Turn
    ) -> web.StreamResponse:
        if turn.fail == "malformed":
            await response.write(b'data: {"id": "x", "choices": [{"delta": {"content": "oops"\n\n')
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        elif turn.fail == "drop":
            assert request.transport is not None
            request.transport.abort()  # RST-like: no chunked terminator, the client sees a broken stream
            record.disconnected = True
        elif turn.fail == "hang":
            await self._wait_for_disconnect(request, record)
        return response

    async def _sleep(self, request: web.Request, record: RecordedRequest, seconds: float) -> None:
        """Sleep, but notice a client that went away (aiohttp does not cancel the handler)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.01))
            if request.transport is None or request.transport.is_closing():
                record.disconnected = True
                raise _Disconnected

    async def _wait_for_disconnect(self, request: web.Request, record: RecordedRequest) -> None:
        with contextlib.suppress(_Disconnected):
            await self._sleep(request, record, 3600.0)


class _Disconnected(Exception):
    pass


def _completion(turn: Turn, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(turn.tokens()) or None}
    if turn.tool_calls:
        message["tool_calls"] = [
            {"id": c.id or f"call_{i}", "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for i, c in enumerate(turn.tool_calls)
        ]
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": turn.finish_reason or ("tool_calls" if turn.tool_calls else "stop"),
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": len(turn.tokens()), "total_tokens": len(turn.tokens())},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible chat completions server")
    parser.add_argument("--script", required=True, help="JSON file: a list of turn objects")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--loop", action="store_true", help="start the script over when it runs out")
    args = parser.parse_args(argv)
    with open(args.script, encoding="utf-8") as file:
        script = [Turn.from_dict(t) for t in json.load(file)]

    async def serve() -> None:
        server = ScriptedLlmServer(script, host=args.host, port=args.port, loop_script=args.loop)
        await server.start()
        print(f"scripted LLM at {server.base_url} ({len(script)} turns)", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
