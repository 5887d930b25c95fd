"""The AI session's side of SWAIG `SWML` and `transfer` actions: SWML run on the live call.

Theory of operation: the session's `swml(document, transfer)` (its `AiControl`) lands here, and
the kernel's `SwmlRunner` (kernel/inline.py, the call's running script) does the SWML:

- transfer: the document is handed to the script (`SwmlRunner.transfer`, which validates it)
  and the session finishes once the reply that asked has been spoken; the `ai` verb returns,
  its post-prompt summary and hangup hook run as on any end, and the script continues in the
  new document. A document the kernel refuses is logged (`ai_failure` kind `swml`) and the
  conversation goes on. `transfer_summary`: when the document asks for `${transfer_summary}`
  (the SWAIG `transfer` action with `summarize` passes it to the destination as
  `params.transfer_summary`), or the session was told to summarize every transfer
  (`ai.params.transfer_summary: true`, which the actions pass on as the setting
  `transfer_summary`), one more LLM call summarizes the conversation for whoever takes the call
  over, and the `ai` verb leaves it in that variable.
- inline (transfer false): the reply that asked (the tool call's round, which may still be a
  preemptive reply waiting for the caller's turn to end) finishes speaking; then, while the
  document's verbs run on the call (`connect` bridges, `play` plays, `record_call` starts
  recording), the caller's audio and digits stop reaching the conversation (`paused`: no turn
  starts, no barge-in pauses the playout, no attention timer runs), and afterwards the
  conversation resumes with its history. When the document set `ai_response` (the SDK's
  `swml_transfer()`, `pay()`), it goes to the model as a system message and the agent replies.

Several inline actions queue in order (the kernel runs one at a time); the gate stays closed
until the last one has returned. Agent input never ends the call: a refused or failing
document is logged on the call and the conversation goes on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection, Coroutine
from typing import Any

from mediaserver.events import AiFailure, AiSummary
from mediaserver.kernel.call import Call
from mediaserver.kernel.services import SwmlRunner
from mediaserver.pipeline.llm import LanguageModel, LlmError, LlmSettings, TextDelta
from mediaserver.swaig.post_prompt import summary_messages

__all__ = ["SessionSwml"]

TRANSFER_SUMMARY_PROMPT = (
    "Summarize this conversation for the agent who takes the call over: who the caller is, what "
    "they want, and what has been done so far. Two or three sentences."
)
SUMMARY_TIMEOUT_S = 30.0


class SessionSwml:
    def __init__(
        self,
        call: Call,
        runner: SwmlRunner,
        *,
        start: Callable[[Coroutine[Any, Any, None]], asyncio.Task[Any]],
        finish: Callable[[], None],
        tasks: Collection[asyncio.Task[Any]],
        system: Callable[[str], None],
        reply: Callable[[], None],
        llm: LanguageModel,
        llm_settings: Callable[[], LlmSettings],
        history: Callable[[], list[dict[str, Any]]],
    ) -> None:
        """`start` runs a task the session owns (cancelled when it ends); `tasks` are those
        tasks (a reply among them); `system(text)` adds a system message, `reply()` answers."""
        self.call = call
        self.runner = runner
        self._start = start
        self._finish = finish
        self._tasks = tasks
        self._system = system
        self._reply = reply
        self._llm = llm
        self._llm_settings = llm_settings
        self._history = history
        self._summary_wanted = False
        self.summarize_transfers = False  # ai.params.transfer_summary (or a summarize) was asked for
        self.running = 0  # inline documents running (or queued in the kernel) now
        self._response: str | None = None  # the last run's ai_response, said once all have run

    @property
    def paused(self) -> bool:
        return self.running > 0

    def settings(self, settings: dict[str, Any]) -> None:
        """The session's update_settings: `transfer_summary` true summarizes the transfer to come."""
        value = settings.get("transfer_summary")
        if value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes")):
            self.summarize_transfers = True

    def swml(self, document: dict[str, Any], transfer: bool) -> None:
        origin = asyncio.current_task()
        # The reply whose tool call asked finishes speaking first (its words, and the caller's
        # turn it answers, are then in the history); a request from the session's own loop (a
        # startup hook) has nothing to wait for (waiting on it would never end).
        wait_for = origin if origin is not None and origin in self._tasks else None
        if not transfer:
            self._start(self._inline(document, wait_for))
            return
        error = self.runner.transfer(self.call, document, source="ai")
        if error:
            self.call.events.emit(AiFailure(kind="swml", error=f"transfer refused: {error}"))
            return
        self._summary_wanted = self.summarize_transfers or "${transfer_summary}" in json.dumps(document)
        if wait_for is None:
            self._finish()
        else:
            self._start(self._finish_after(wait_for))

    async def _finish_after(self, reply: asyncio.Task[Any]) -> None:
        await asyncio.wait({reply})
        self._finish()

    async def _inline(self, document: dict[str, Any], wait_for: asyncio.Task[Any] | None) -> None:
        if wait_for is not None:
            await asyncio.wait({wait_for})
        self.running += 1
        try:
            result = await self.runner.run_inline(self.call, document, source="ai")
        finally:
            self.running -= 1
        if not result.ran:
            self.call.events.emit(AiFailure(kind="swml", error=result.error))
        elif result.ai_response:
            self._response = result.ai_response
        if self._response and not self.running and not self.call.is_over:
            text, self._response = self._response, None
            self._system(text)
            self._reply()

    async def variables(self) -> dict[str, Any]:
        """What the `ai` verb leaves for the script besides ai_result: `transfer_summary` if asked."""
        if not self._summary_wanted:
            return {}
        parts: list[str] = []
        try:
            async with asyncio.timeout(SUMMARY_TIMEOUT_S):
                messages = summary_messages(TRANSFER_SUMMARY_PROMPT, self._history())
                async for event in self._llm.stream(messages, settings=self._llm_settings()):
                    if isinstance(event, TextDelta):
                        parts.append(event.text)
        except (LlmError, TimeoutError) as exc:
            self.call.events.emit(AiFailure(kind="transfer_summary", error=str(exc)))
            return {"transfer_summary": ""}
        summary = "".join(parts).strip()
        self.call.events.emit(AiSummary(chars=len(summary)))
        return {"transfer_summary": summary}
