"""The session's start and end on the AI's own clock: the opening, the hard stop, the wrap-up.

Theory of operation: `SessionLifecycle` is a mixin of `AiSession` (session.py). The AI's tick
clock (`Clockwork`, timing.py) advances with each agent frame sent; `_timing_tick` then starts the
opening once initial_sleep_ms has passed (the static greeting, or a first reply unless
speak_when_spoken_to) and the hard stop at hard_stop_time (`_hard_stop`: the agent cut, the
hard_stop_prompt said, the AI ended). The ToolRunner's lifecycle hooks (SWAIG includes and
startup_hook at the start; hangup_hook at the end) run through `_lifecycle`, a failing hook only
logged. At the end, `_wrap_up` closes the call log, asks the LLM for the post-prompt summary
(`_summarize`), saves the conversation (conversation_id) and closes the debug hooks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from mediaserver.agents.ai import conversations
from mediaserver.agents.ai.call_log import CallRecorder
from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.control_surface import SayText
from mediaserver.agents.ai.debug_hooks import DebugHooks
from mediaserver.agents.ai.engines import AiEngines
from mediaserver.agents.ai.history_ops import LlmView
from mediaserver.agents.ai.reply import Reply
from mediaserver.agents.ai.timing import AiHardStop, Clockwork
from mediaserver.agents.ai.tools import ToolRunner
from mediaserver.events import AiFailure, AiSummary
from mediaserver.kernel.agent import Conversation
from mediaserver.kernel.call import Call
from mediaserver.pipeline.llm import LanguageModel, LlmError, TextDelta
from mediaserver.pipeline.turn import TurnManager
from mediaserver.swaig.post_prompt import summary_messages


class SessionLifecycle:
    """The opening, hard stop and wrap-up of `AiSession`; the attributes below are the session's."""

    call: Call
    config: AiSessionConfig
    engines: AiEngines
    tools: ToolRunner
    llm: LanguageModel
    turn: TurnManager
    history: Conversation
    global_data_: dict[str, Any]
    record: CallRecorder
    view: LlmView
    debug: DebugHooks
    clockwork: Clockwork
    _reply: Reply | None
    _reply_task: asyncio.Task[None] | None
    # The session's own steps (session.py, replies.py, control_surface.py)
    _start: Callable[[Any], asyncio.Task[Any]]
    _finish: Callable[[str], None]
    _say: SayText
    _start_reply: Callable[[], None]
    user_turns: Callable[[], int]

    def _timing_tick(self) -> None:
        """The opening after initial_sleep_ms, the hard stop at hard_stop_time (the AI's tick clock)."""
        if self.clockwork.opening_due():
            seeded = sum(1 for m in self.config.convo if m["role"] == "user")
            if self.user_turns() > seeded:
                pass  # the caller spoke during the initial sleep and is being answered: no opening
            elif self.config.static_greeting:
                self._start(self._say(self.config.static_greeting, bargeable=not self.config.static_greeting_no_barge))
            elif not self.config.wait_for_user:
                self._start_reply()
        if self.clockwork.hard_stop_due():
            self._start(self._hard_stop())

    async def _hard_stop(self) -> None:
        """Cut the agent, say hard_stop_prompt (not interruptible), end the AI; caller turns go unanswered."""
        prompt = self.config.timing.hard_stop_prompt
        self.call.events.emit(AiHardStop(elapsed_ms=self.clockwork.elapsed_ms, prompt=prompt))
        task, self._reply, self._reply_task = self._reply_task, None, None
        if task is not None:
            task.cancel()
        self.call.media.stop_playout()
        self.turn.set_params(enable_barge=False)
        if prompt:
            await self._say(prompt, bargeable=False)
        self._finish("success")

    async def _lifecycle(self, name: str, *args: Any) -> None:
        """Call a ToolRunner lifecycle hook (SWAIG's start/finish); a failing hook is logged only."""
        hooks: dict[str, Callable[..., Awaitable[None]]] = {"start": self.tools.start, "finish": self.tools.finish}
        try:
            await hooks[name](*args)
        except Exception as exc:
            self.call.events.emit(AiFailure(kind=f"swaig_{name}", error=repr(exc)))

    async def _wrap_up(self) -> None:
        self.record.ended(self.call.is_over)
        summary = await self._summarize() if self.config.post_prompt else None
        ops, store = self.config.ops, self.engines.conversations
        await conversations.save(store, ops, self.history, summary, self.engines.blocking, self._store_failed)
        await self._lifecycle("finish", self.global_data_, summary, self.history)
        await self.debug.close()  # session_end, and what the debug webhook has not sent yet

    def _store_failed(self, error: str) -> None:
        self.call.events.emit(AiFailure(kind="conversation_store", error=error))

    async def _summarize(self) -> str | None:
        """One non-spoken LLM call over the conversation with the post_prompt (SWML `post_prompt`)."""
        messages: list[dict[str, Any]] = summary_messages(
            self.view.expand(self.config.post_prompt, (self.call, self.global_data_)), self.history
        )
        parts: list[str] = []
        try:
            async with asyncio.timeout(self.engines.first_token_timeout_s * 3):
                async for event in self.llm.stream(messages, settings=self.engines.llm_settings(self.config)):
                    if isinstance(event, TextDelta):
                        parts.append(event.text)
        except (LlmError, TimeoutError) as exc:
            self.call.events.emit(AiFailure(kind="post_prompt", error=str(exc)))
            return None
        summary = "".join(parts).strip()
        self.call.events.emit(AiSummary(chars=len(summary)))
        return summary
