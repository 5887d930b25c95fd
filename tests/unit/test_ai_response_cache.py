"""`cache_mode`: only a stream that ended normally is kept; the store stays bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from mediaserver.agents.ai import response_cache
from mediaserver.agents.ai.response_cache import CachingLlm
from mediaserver.events import CallEvent
from mediaserver.pipeline.llm import LlmError, LlmEvent, LlmFinished, LlmSettings, TextDelta


class Model:
    def __init__(self, finish: str = "stop", fail: bool = False) -> None:
        self.finish = finish
        self.fail = fail
        self.calls = 0

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[LlmEvent]:
        self.calls += 1
        yield TextDelta("Hello ")
        if self.fail:
            raise LlmError("connection", "dropped")
        yield TextDelta("there.")
        yield LlmFinished(self.finish)


async def ask(llm: CachingLlm, text: str = "hi", model: str = "m") -> list[LlmEvent]:
    return [e async for e in llm.stream([{"role": "user", "content": text}], settings=LlmSettings(model=model))]


async def test_a_finished_answer_is_replayed_and_another_request_is_not() -> None:
    model, seen = Model(), list[CallEvent]()
    llm = CachingLlm(model, {}, seen.append)
    first = await ask(llm)
    assert await ask(llm) == first and model.calls == 1 and len(seen) == 1
    await ask(llm, model="other")  # another model: another request
    await ask(llm, text="bye")
    assert model.calls == 3


@pytest.mark.parametrize("model", [Model(finish="length"), Model(fail=True)])
async def test_a_cut_or_failed_answer_is_not_kept(model: Model) -> None:
    llm = CachingLlm(model, {}, lambda event: None)
    for _ in range(2):
        try:
            await ask(llm)
        except LlmError:
            pass
    assert model.calls == 2


async def test_an_abandoned_answer_is_not_kept() -> None:
    model = Model()
    store: dict[str, Any] = {}
    llm = CachingLlm(model, store, lambda event: None)
    stream = llm.stream([{"role": "user", "content": "hi"}], settings=LlmSettings())
    await stream.__anext__()
    await stream.aclose()  # a barge-in
    assert not store


async def test_the_store_keeps_the_newest_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(response_cache, "MAX_ENTRIES", 2)
    store: dict[str, Any] = {}
    llm = CachingLlm(Model(), store, lambda event: None)
    for text in ("a", "b", "c"):
        await ask(llm, text=text)
    assert len(store) == 2
