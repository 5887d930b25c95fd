"""The session's replies: started, spoken, cancelled, recovered, cut at a barge-in.

Theory of operation: `ReplyLifecycle` is a mixin of `AiSession` (session.py) over its
`ControlSurface` (control_surface.py), which is the `AiControl` each `Reply` is given. One reply
at a time is the session's (`_reply`, its task `_reply_task`): `_start_reply` cancels an unheard
one first (a preemptive reply the endpoint did not commit), builds the LLM request of the moment
(`_messages`: the LLM's view of the history, history_ops.py) and runs it; `_say` speaks fixed
text through the phrase cache. Each TTS chunk queued for playout goes to the turn manager as
`ReplyQueued` (in the tick, via `_apply`), and a spoken reply ends with `ReplyDone`. Failures
speak a cached recovery phrase (`_recover`). A barge-in's `FlushReply` stops playout, cancels the
reply and cuts its history entry to the words the caller heard (`_flush`, `_keep_heard`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from mediaserver.agents.ai.control_surface import ControlSurface
from mediaserver.agents.ai.fillers import SPEECH_FILLER_DELAY_S, speech_filler_after
from mediaserver.agents.ai.reply import Reply, ReplyFailed
from mediaserver.agents.ai.session_features import SessionFeatures
from mediaserver.agents.ai.timing import louder
from mediaserver.agents.ai.turn_taking import TurnTaking
from mediaserver.audio.frame import Pcm
from mediaserver.events import AiFailure, BargeFlushed
from mediaserver.pipeline.tts import TtsChunk
from mediaserver.pipeline.turn import FlushReply, ReplyDone, ReplyQueued, TurnCommand, WordMark


class ReplyLifecycle(ControlSurface):
    """The reply steps of `AiSession`; the attributes below are the session's (set in its __init__)."""

    features: SessionFeatures
    turn_taking: TurnTaking
    _reply_task: asyncio.Task[None] | None
    _reply_bargeable: bool
    _fillers: Iterator[str] | None
    _first_frame_mark: int | None
    _outbound: deque[tuple[int, int, Pcm]]
    _entries: weakref.WeakKeyDictionary[Reply, dict[str, Any]]
    _apply: Callable[[list[TurnCommand]], None]

    def _messages(self, extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        # system prompt of the moment (base + conscience + current step, `${…}` expanded), the
        # history the model may see (replace_in_history, step/context history ops applied)
        facts = (self.call, self.global_data_)
        window = self.config.sliding_window
        return self.view.next_request(self.tools, self.config.prompt, self.history, facts, extra, window)

    def _new_reply(self, messages: list[dict[str, Any]], preemptive: bool = False) -> Reply:
        return Reply(
            self.call,
            llm=self.controls.llm,  # the engine's, as SWAIG actions steer it (steering.py)
            llm_settings=self.engines.llm_settings(self.config),
            tts=self.controls.tts,  # with the ai_volume gain; change_voice swaps it
            # pause_conversation, function_wait_for_talking, barge_functions; thinking, hold_on_process
            tools=self.features.tools(self.turn_taking.tools),
            control=self,
            messages=messages,
            on_queued=self._queued,
            on_event=self.call.events.emit,
            on_words=self.history.speaking,
            pronounce=self.config.pronounce,
            quick_stops=self.config.quick_stops,
            fillers=self.turn_taking.tools.reply_fillers,
            preemptive=preemptive,
            first_token_timeout_s=self.engines.first_token_timeout_s,
        )

    def _start_reply(
        self, extra: list[dict[str, Any]] | None = None, preemptive: bool = False, nudge: bool = False
    ) -> None:
        self._cancel_reply()
        reply = self._new_reply(self._messages(extra), preemptive)
        self._reply = reply
        self._reply_bargeable = True
        if not preemptive:
            self._first_frame_mark = self.call.media.playout.end_mark
        self._reply_task = self._start(self._run_reply(reply))
        if self._fillers is not None:  # speech_fillers: a slow LLM turn gets one (fillers.py)
            fillers = self._fillers
            self._start(
                speech_filler_after(reply, lambda: next(fillers), lambda: self._reply is reply, SPEECH_FILLER_DELAY_S)
            )
        self.controls.track(self._reply_task, reply, nudge=nudge)

    def _resume(self, note: str, nudge: bool = False) -> None:
        """The agent takes a turn on its own (after a hold; an attention prompt held back)."""
        self.history.append({"role": "system", "content": note})
        self._start_reply(nudge=nudge)

    def _cancel_reply(self) -> None:
        if self._reply_task is not None and self._reply is not None and not self._reply.committed.is_set():
            self._reply_task.cancel()  # unheard: a preemptive reply that the endpoint did not commit
            self._reply = self._reply_task = None
        self._preemptive_text = None

    async def _run_reply(self, reply: Reply) -> None:
        failure: ReplyFailed | None = None
        try:
            await reply.run()
            self.history.extend(reply.new_messages)
            if reply.text:
                entry = reply.entry
                entry["content"] = reply.text
                self.history.append(entry)
                self._entries[reply] = entry
            if reply.last_mark is not None:
                await self.call.wait_played(reply.last_mark)
        except* ReplyFailed as group:
            first = group.exceptions[0]
            assert isinstance(first, ReplyFailed)
            failure = first
        self.controls.reply_ended(reply)  # post_process actions, after the answer was spoken
        if failure is not None:
            self._recover(failure.kind, failure.detail)
            return
        if self._reply is reply:
            self._reply = self._reply_task = None
            self._apply(self.turn.handle(ReplyDone()))
            if self.tools.turn_done():  # contexts/steps: end, skip_to_next_step; skip_user_turn
                self._start_reply()

    def _queued(self, chunk: TtsChunk, words: tuple[WordMark, ...], start: int, end: int) -> None:
        self._outbound.append((start, end, chunk.pcm))
        self._apply(self.turn.handle(ReplyQueued(chunk.text, words, end, bargeable=self._reply_bargeable)))

    async def _say(self, text: str, *, bargeable: bool = True, history: bool = True) -> None:
        """Speak fixed text (greeting, filler, recovery, SWAIG say) through the phrase cache."""
        text = self.features.written(text)  # tts_number_format
        reply = self._new_reply([])
        self._reply, self._reply_bargeable = reply, bargeable
        self._first_frame_mark = self.call.media.playout.end_mark
        cache, key = self.engines.phrase_cache, self.controls.cache_key(text)  # keyed by voice once changed
        try:
            if key in cache:
                for chunk in cache[key]:
                    reply.enqueue(louder(chunk, self.config.timing.ai_volume_db))
            else:
                chunks = [chunk async for chunk in self.controls.voice_tts.stream(text)]
                cache[key] = chunks  # unscaled: the cache is shared by calls with their own ai_volume
                for chunk in chunks:
                    reply.enqueue(louder(chunk, self.config.timing.ai_volume_db))
        except Exception as exc:
            self.call.events.emit(AiFailure(kind="tts_failure", error=repr(exc)), level=logging.ERROR)
            return
        if history:
            entry = reply.entry
            entry["content"] = text
            self.history.append(entry)
            self._entries[reply] = entry
        if reply.last_mark is not None:
            await self.call.wait_played(reply.last_mark)
        if self._reply is reply:
            self._reply = None
            self._apply(self.turn.handle(ReplyDone()))

    def _recover(self, kind: str, detail: str) -> None:
        self.call.events.emit(AiFailure(kind=kind, error=detail))
        phrase = self.config.recovery.get(kind)
        if phrase and (kind != "tts_failure" or phrase in self.engines.phrase_cache):
            self._start(self._say(phrase, history=False))

    def _flush(self, cmd: FlushReply) -> None:
        self.call.media.stop_playout()
        self.call.events.emit(
            BargeFlushed(
                caller_sample=cmd.at,
                cursor=cmd.cursor,
                heard_text=cmd.heard_text,
                heard_words=cmd.heard_words,
                total_words=cmd.total_words,
            )
        )
        reply, task = self._reply, self._reply_task
        self._reply = self._reply_task = None
        if task is not None:
            task.cancel()
        if reply is not None:
            self._keep_heard(reply, cmd.heard_text)
            self.controls.reply_ended(reply)
        if note := self.config.turn_taking.interruption_note:  # acknowledge_interruptions, interrupt_prompt
            self.history.append({"role": "system", "content": note})

    def _keep_heard(self, reply: Reply, heard: str) -> None:
        """Cut the interrupted assistant turn in the history to the words the caller heard."""
        entry = self._entries.get(reply)
        if entry is not None:
            if heard:
                entry["content"] = heard
                self.history.updated(entry)
            else:
                self.history.remove(entry)
        elif heard:
            self.history.extend(reply.new_messages)
            reply.entry["content"] = heard
            self.history.append(reply.entry)
