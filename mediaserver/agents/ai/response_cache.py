"""`cache_mode`: a request the model has already answered is answered again from memory.

Theory of operation: `CachingLlm` wraps the engine's `LanguageModel` (inside the SWAIG steering,
so the cached request is the one really sent: its knobs and tool set included). Each request is
keyed by a hash of its model, sampling knobs, messages and tools. A stream that ended normally
(`LlmFinished` "stop" or "tool_calls") is kept as its events; the next identical request replays
them at once, without a round trip: the same opening of every call to an agent, the same answer
to the same question at the same point of a scripted flow. A stream that failed, was cut short
("length", a content filter) or was abandoned by its consumer (a barge-in) is not kept.

The store is the process's (`AiEngines.response_cache`), shared by the calls that set
`cache_mode`, bounded to `MAX_ENTRIES` (the oldest entry goes first). Each replay is logged on
the call as `ai_response_cached`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from mediaserver.events import CallEvent, event
from mediaserver.pipeline.llm import LanguageModel, LlmEvent, LlmFinished, LlmSettings

__all__ = ["MAX_ENTRIES", "AiResponseCached", "CachingLlm", "request_key"]

MAX_ENTRIES = 256
_KEPT_REASONS = ("stop", "tool_calls")


@event
class AiResponseCached(CallEvent):
    """A request answered from the response cache (cache_mode), without calling the model."""

    EVENT = "ai_response_cached"
    events: int


def request_key(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, settings: LlmSettings) -> str:
    body = {"model": settings.model, "knobs": settings.knobs(), "messages": messages, "tools": tools or []}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


class CachingLlm:
    def __init__(
        self,
        llm: LanguageModel,
        store: dict[str, tuple[LlmEvent, ...]],
        emit: Callable[[CallEvent], None],
    ) -> None:
        self.llm = llm
        self.store = store
        self.emit = emit

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[LlmEvent]:
        key = request_key(messages, tools, settings)
        kept = self.store.get(key)
        if kept is not None:
            self.emit(AiResponseCached(events=len(kept)))
            for item in kept:
                yield item
            return
        seen: list[LlmEvent] = []
        inner = self.llm.stream(messages, tools=tools, settings=settings)
        try:
            async for item in inner:
                seen.append(item)
                yield item
        finally:
            if isinstance(inner, AsyncGenerator):
                await inner.aclose()
        last = seen[-1] if seen else None
        if isinstance(last, LlmFinished) and last.reason in _KEPT_REASONS:
            self.store[key] = tuple(seen)
            while len(self.store) > MAX_ENTRIES:
                del self.store[next(iter(self.store))]
