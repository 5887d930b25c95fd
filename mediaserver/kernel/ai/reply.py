"""One agent reply: LLM tokens -> clauses -> TTS -> playout, with word marks for heard text.

Theory of operation: `Reply.run()` streams the LLM (`LanguageModel.stream`) and feeds its text
deltas to a `ClauseSplitter`; each finished clause goes on a queue that the speaker task turns
into audio (`SpeechSynthesizer.stream`, off the loop) and enqueues on the call. Tool calls are
collected, run through the `ToolRunner` (a function filler is spoken first) and the LLM is asked
again with the results, up to `MAX_TOOL_ROUNDS`.

A preemptive reply (started on a stable transcript before the endpoint) does everything up to
the playout: the first clause is synthesized and waits on `committed`; `commit()` at the endpoint
releases it, so the first agent frame leaves on the next tick. `cancel()` drops it unheard.

Every chunk enqueued is reported to `on_queued(chunk, words, start_mark, end_mark)` with each word's end as a
playout mark (played-sample position at the codec rate): `start_mark + end * codec_rate /
chunk_rate`. Chunks without word timings get them spread over the chunk by character count.
Failures raise `ReplyFailed(kind)` with kind one of llm_timeout, llm_error, tool_failure,
tts_failure; the session speaks the matching recovery phrase.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mediaserver.kernel.ai.tools import AiControl, ToolInvocation, ToolRunner
from mediaserver.kernel.call import Call
from mediaserver.pipeline.llm import LanguageModel, LlmError, TextDelta, ToolCallRequested
from mediaserver.pipeline.text import ClauseSplitter
from mediaserver.pipeline.tts import TtsChunk
from mediaserver.pipeline.turn import WordMark

log = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 5


class Synthesizer(Protocol):
    @property
    def sample_rate(self) -> int: ...
    def stream(self, text: str) -> AsyncIterator[TtsChunk]: ...


class ReplyFailed(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass
class ReplyTiming:
    llm_first_token: bool = False
    tts_first_audio: bool = False


def spread_words(chunk: TtsChunk) -> list[tuple[str, int]]:
    """(word, end offset) for a chunk: its own timings, or spread by character count."""
    if chunk.words:
        return [(w.text, w.end) for w in chunk.words]
    words = chunk.text.split()
    total = sum(len(w) + 1 for w in words) or 1
    out, pos = [], 0
    for w in words:
        pos += len(w) + 1
        out.append((w, len(chunk.pcm) * pos // total))
    return out


class Reply:
    def __init__(
        self,
        call: Call,
        *,
        llm: LanguageModel,
        llm_settings: Any,
        tts: Synthesizer,
        tools: ToolRunner,
        control: AiControl,
        messages: list[dict[str, Any]],
        on_queued: Callable[[TtsChunk, tuple[WordMark, ...], int, int], None],
        on_event: Callable[[str, dict[str, Any]], None],
        pronounce: list[dict[str, Any]] | None = None,
        fillers: list[str] | None = None,
        preemptive: bool = False,
        first_token_timeout_s: float = 10.0,
    ) -> None:
        self.call = call
        self.llm = llm
        self.llm_settings = llm_settings
        self.tts = tts
        self.tools = tools
        self.control = control
        self.messages = messages
        self.on_queued = on_queued
        self.on_event = on_event
        self.pronounce = pronounce or []
        self._fillers = itertools.cycle(fillers) if fillers else None
        self.committed = asyncio.Event()
        if not preemptive:
            self.committed.set()
        self.first_token_timeout_s = first_token_timeout_s
        self.text = ""  # everything the LLM said in this reply (final round)
        self.spoken = ""  # everything handed to TTS
        self.new_messages: list[dict[str, Any]] = []  # assistant tool_calls + tool results
        self.last_mark: int | None = None
        self.timing = ReplyTiming()
        self._clauses: asyncio.Queue[str | None] = asyncio.Queue()

    def commit(self) -> None:
        self.committed.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            speaker = group.create_task(self._speak_all())
            try:
                await self._generate()
            finally:
                self._clauses.put_nowait(None)
            await speaker

    # -- LLM -------------------------------------------------------------------------------------
    async def _generate(self) -> None:
        messages = list(self.messages)
        for _ in range(MAX_TOOL_ROUNDS):
            splitter = ClauseSplitter(pronounce=self.pronounce)
            calls: list[ToolCallRequested] = []
            text = ""
            definitions = self.tools.tool_definitions()
            stream = self.llm.stream(messages, tools=definitions or None, settings=self.llm_settings)
            try:
                async for event in _first_within(stream, self.first_token_timeout_s):
                    if isinstance(event, TextDelta) and event.text:
                        if not self.timing.llm_first_token:
                            self.timing.llm_first_token = True
                            self.on_event("turn_llm_first_token", {})
                        text += event.text
                        for clause in splitter.feed(event.text):
                            self._clauses.put_nowait(clause)
                    elif isinstance(event, ToolCallRequested):
                        calls.append(event)
            except TimeoutError as exc:
                raise ReplyFailed("llm_timeout", "no first token in time") from exc
            except ReplyFailed:
                raise
            except LlmError as exc:
                raise ReplyFailed("llm_timeout" if exc.kind == "timeout" else "llm_error", str(exc)) from exc
            except Exception as exc:  # an engine bug must still end in a spoken recovery
                raise ReplyFailed("llm_error", repr(exc)) from exc
            tail = splitter.flush()
            if tail:
                self._clauses.put_nowait(tail)
            self.text = text.strip()
            if not calls:
                return
            await self._run_tools(calls, text, messages)
        log.warning("tool rounds exhausted")

    async def _run_tools(self, calls: list[ToolCallRequested], text: str, messages: list[dict[str, Any]]) -> None:
        assistant = {
            "role": "assistant",
            "content": text or None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
            ],
        }
        messages.append(assistant)
        self.new_messages.append(assistant)
        if self._fillers is not None:
            self._clauses.put_nowait(next(self._fillers))
        for c in calls:
            self.on_event("tool_invoked", {"name": c.name})
            try:
                outcome = await self.tools.invoke(ToolInvocation(c.id, c.name, c.arguments or "{}"), self.control)
            except Exception as exc:
                self.on_event("tool_failed", {"name": c.name, "error": repr(exc), "level": logging.WARNING})
                raise ReplyFailed("tool_failure", f"{c.name}: {exc!r}") from exc
            result = {
                "role": "tool",
                "tool_call_id": c.id,
                "content": outcome.response if outcome.response is not None else json.dumps({}),
            }
            messages.append(result)
            self.new_messages.append(result)

    # -- TTS -------------------------------------------------------------------------------------
    async def _speak_all(self) -> None:
        while (clause := await self._clauses.get()) is not None:
            await self.speak(clause)

    async def speak(self, clause: str) -> None:
        try:
            async for chunk in self.tts.stream(clause):
                await self.committed.wait()  # a preemptive reply holds its first audio here
                self.enqueue(chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise ReplyFailed("tts_failure", repr(exc)) from exc
        self.spoken = f"{self.spoken} {clause}".strip()

    def enqueue(self, chunk: TtsChunk) -> None:
        if not len(chunk.pcm):
            return
        start = self.call.media.playout.end_mark
        end = self.call.enqueue_audio(chunk.pcm, chunk.sample_rate, final=True)
        if not self.timing.tts_first_audio:
            self.timing.tts_first_audio = True
            self.on_event("turn_tts_first_audio", {"start_mark": start})
        # The resampler's flush can make the chunk a few samples longer or shorter: scale to it.
        scale = (end - start) / len(chunk.pcm)
        words = tuple(WordMark(text, start + round(offset * scale)) for text, offset in spread_words(chunk))
        self.last_mark = end
        self.on_queued(chunk, words, start, end)


async def _first_within(stream: AsyncIterator[Any], timeout_s: float) -> AsyncIterator[Any]:
    """The stream's events; TimeoutError when the first one takes longer than timeout_s."""
    iterator = aiter(stream)
    try:
        first = await asyncio.wait_for(anext(iterator), timeout_s)
    except StopAsyncIteration:
        return
    yield first
    async for event in iterator:
        yield event
