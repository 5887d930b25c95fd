"""One agent reply: LLM tokens -> clauses -> TTS -> playout, with word marks for heard text.

Theory of operation: `Reply.run()` streams the LLM (`LanguageModel.stream`) and feeds its text
deltas to a `ClauseSplitter`; each finished clause goes on a queue that the speaker task turns
into audio (`SpeechSynthesizer.stream`, off the loop) and enqueues on the call. Tool calls are
collected, run through the `ToolRunner` (a function filler is spoken first) and the LLM is asked
again with the results, up to `MAX_TOOL_ROUNDS`: the tool loop shared with the sidecar
(`mediaserver.pipeline.toolloop`), with `_ReplyHooks` as this verb's side of it.

A preemptive reply (started on a stable transcript before the endpoint) does everything up to
the playout and the tools: the first clause is synthesized and waits on `committed`, and so does
a tool call; `commit()` at the endpoint releases them, so the first agent frame leaves on the next
tick. `cancel()` drops it unheard, with no tool run.

Every chunk enqueued is reported to `on_queued(chunk, words, start_mark, end_mark)` with each word's end as a
playout mark (played-sample position at the codec rate): `start_mark + end * codec_rate /
chunk_rate`. Chunks without word timings get them spread over the chunk by character count.
Failures raise `ReplyFailed(kind)` with kind one of llm_timeout, llm_error, llm_unreachable (no
server at `[llm] base_url`, llm_guidance.py), tool_failure, tts_failure; the session speaks the
matching recovery phrase.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mediaserver.agents.ai.llm_guidance import failure_kind
from mediaserver.agents.ai.tools import AiControl, ToolInvocation, ToolRunner
from mediaserver.events import (
    CallEvent,
    ToolFailed,
    ToolInvoked,
    TurnLlmFirstToken,
    TurnTtsFirstAudio,
    TurnTtsSynthesized,
)
from mediaserver.kernel.call import Call
from mediaserver.pipeline.llm import LanguageModel, LlmError, ToolCallRequested
from mediaserver.pipeline.text import ClauseSplitter
from mediaserver.pipeline.toolloop import Completion, ToolAnswer, ToolLoopHooks, run_tool_loop
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
    tts_synthesized: bool = False


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
        on_event: Callable[[CallEvent], None],
        on_words: Callable[[dict[str, Any], list[tuple[str, int]]], None] | None = None,
        pronounce: list[dict[str, Any]] | None = None,
        quick_stops: int = 1,
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
        self.on_words = on_words  # each chunk's words and end marks, for `entry` (a page's transcript)
        # The history entry this reply is kept in, made now so that its words can name it before
        # the reply is complete and added (replies.py fills in its content).
        self.entry: dict[str, Any] = {"role": "assistant", "content": ""}
        self.pronounce = pronounce or []
        self.quick_stops = quick_stops  # clauses cut early at , ; : (speech_gen_quick_stops)
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
        result = await run_tool_loop(
            self.llm,
            self.messages,  # the session's live request: a step change mid-loop rebuilds its front
            _ReplyHooks(self),
            tools=self.tools.tool_definitions,
            settings=lambda: self.llm_settings,
            max_rounds=MAX_TOOL_ROUNDS,
            first_token_timeout_s=self.first_token_timeout_s,
        )
        if result.end == "limit":
            log.warning("tool rounds exhausted")

    # -- TTS -------------------------------------------------------------------------------------
    async def _speak_all(self) -> None:
        while (clause := await self._clauses.get()) is not None:
            await self.speak(clause)

    async def speak(self, clause: str) -> None:
        try:
            async for chunk in self.tts.stream(clause):
                if not self.timing.tts_synthesized:
                    self.timing.tts_synthesized = True
                    self.on_event(TurnTtsSynthesized(held=not self.committed.is_set()))
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
            self.on_event(TurnTtsFirstAudio(start_mark=start))
        # The resampler's flush can make the chunk a few samples longer or shorter: scale to it.
        scale = (end - start) / len(chunk.pcm)
        words = tuple(WordMark(text, start + round(offset * scale)) for text, offset in spread_words(chunk))
        self.last_mark = end
        self.on_queued(chunk, words, start, end)
        if self.on_words is not None:
            self.on_words(self.entry, [(w.text, w.end_mark) for w in words])


class _ReplyHooks(ToolLoopHooks):
    """The `ai` verb's side of the tool loop: text is spoken clause by clause, a failure is fatal."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.splitter = ClauseSplitter(pronounce=reply.pronounce, quick_stops=reply.quick_stops)

    async def before_request(self, round_: int, messages: list[dict[str, Any]]) -> None:
        self.splitter = ClauseSplitter(pronounce=self.reply.pronounce, quick_stops=self.reply.quick_stops)

    def on_text(self, text: str) -> None:
        reply = self.reply
        if not reply.timing.llm_first_token:
            reply.timing.llm_first_token = True
            reply.on_event(TurnLlmFirstToken())
        for clause in self.splitter.feed(text):
            reply._clauses.put_nowait(clause)

    def on_response(self, round_: int, completion: Completion) -> None:
        tail = self.splitter.flush()
        if tail:
            self.reply._clauses.put_nowait(tail)
        self.reply.text = completion.text.strip()

    def llm_failed(self, round_: int, exc: Exception) -> bool:
        if isinstance(exc, ReplyFailed):
            return False
        if isinstance(exc, TimeoutError):
            raise ReplyFailed("llm_timeout", "no first token in time") from exc
        if isinstance(exc, LlmError):
            raise ReplyFailed(failure_kind(exc, self.reply.llm_settings), str(exc)) from exc  # llm_guidance.py
        raise ReplyFailed("llm_error", repr(exc)) from exc  # an engine bug must still end in a spoken recovery

    async def before_tools(self, round_: int, completion: Completion) -> None:
        if self.reply._fillers is not None:
            self.reply._clauses.put_nowait(next(self.reply._fillers))

    def on_message(self, message: dict[str, Any]) -> None:
        self.reply.new_messages.append(message)

    async def run_tool(self, round_: int, call: ToolCallRequested) -> ToolAnswer:
        reply = self.reply
        # A tool has effects outside the call (a webhook stores data, a transfer dials): a
        # preemptive reply runs none before the caller's turn is confirmed, so a caller who goes
        # on ("transfer me to... no, wait") never triggers one.
        await reply.committed.wait()
        reply.on_event(ToolInvoked(name=call.name))
        try:
            outcome = await reply.tools.invoke(
                ToolInvocation(call.id, call.name, call.arguments or "{}"), reply.control
            )
        except Exception as exc:
            reply.on_event(ToolFailed(name=call.name, error=repr(exc)))
            raise ReplyFailed("tool_failure", f"{call.name}: {exc!r}") from exc
        return ToolAnswer(outcome.response if outcome.response is not None else json.dumps({}))
