"""A scriptable local agent (aiohttp) for webhook tests: records every request, answers as told.

`FakeAgent.replies[path]` is a list of what to answer, in order (the last one repeats): a dict
(JSON), a str (sent as text), an int (that HTTP status with a JSON error), or a float (sleep
that many seconds first, then answer the next item). Each request is recorded as
`Seen(path, query, headers, body_text, json)`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.unit.swaig.datamap_gen import free_port


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    text: str
    json: Any


class FakeAgent:
    def __init__(self) -> None:
        self.replies: dict[str, list[Any]] = {}
        self.seen: list[Seen] = []
        self.port = 0

    def url(self, path: str, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        text = await request.text()
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            body = None
        self.seen.append(Seen(request.path, dict(request.query), dict(request.headers), text, body))
        queue = self.replies.get(request.path, [{"response": "ok"}])
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, float):
            await asyncio.sleep(item)
            item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, int):
            return web.json_response({"error": "boom"}, status=item)
        if isinstance(item, str):
            return web.Response(text=item, content_type="text/plain")
        return web.json_response(item)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeAgent]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        self.port = free_port()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await runner.cleanup()
