"""Webhook delivery of sidecar events: POST `{call_info, sidecar_event}` to the verb's `url`.

Theory of operation: `WebhookPoster.send(event)` never blocks the sidecar: it queues the event,
and one task per sidecar posts them one after another, so the operator's application receives
them in the order they were emitted. The body is the spec's shape: `call_info` (project/space
ids, the call id, content type and disposition, conversation type) and the event itself under
`sidecar_event` (or under another key for transcribe events, e.g. `conversation_log`). A failed
POST is logged on the call and counted (`failed`), never retried forever: the event bus still
has every event. `drain()` waits for what is queued (the final event at teardown).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from mediaserver.swaig.client import post_json

__all__ = ["WebhookPoster", "call_info"]

log = logging.getLogger(__name__)

POST_TIMEOUT_S = 10.0


def call_info(call_id: str, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "project_id": str(info.get("project_id") or ""),
        "space_id": str(info.get("space_id") or ""),
        "call_id": call_id,
        "content_type": "text/json",
        "content_disposition": "post_data",
        "conversation_type": "voice",
    }


class WebhookPoster:
    def __init__(
        self,
        url: str,
        info: dict[str, Any],
        http: Callable[[], aiohttp.ClientSession],
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self.info = info
        self.http = http
        self.on_failure = on_failure
        self.sent = 0
        self.failed = 0
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def send(self, event: dict[str, Any], key: str = "sidecar_event") -> None:
        self._queue.put_nowait({"call_info": self.info, key: event})
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sidecar-webhook")

    async def _run(self) -> None:
        while not self._queue.empty():
            body = self._queue.get_nowait()
            try:
                reply = await post_json(self.http(), self.url, body, timeout_s=POST_TIMEOUT_S, retries=0)
                # An event sink may answer nothing at all (the SDK's handler returns None): only a
                # transport failure or an HTTP error counts as failed.
                if not reply.ok and (reply.status >= 400 or reply.status == 0):
                    self.failed += 1
                    if self.on_failure is not None:
                        self.on_failure(reply.error)
                else:
                    self.sent += 1
            except Exception:
                self.failed += 1
                log.exception("sidecar webhook failed")
            finally:
                self._queue.task_done()

    async def drain(self, timeout_s: float = POST_TIMEOUT_S) -> None:
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(self._queue.join(), timeout_s)
            except TimeoutError:
                log.warning("sidecar webhook: %d events undelivered", self._queue.qsize())
