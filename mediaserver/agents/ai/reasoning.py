"""Non-spoken model calls that help the agent answer: thinking and the inner dialog.

Theory of operation: both ask the configured OpenAI-compatible endpoint (the session's engine,
not the steered one: SWAIG settings and tool rules are the conversation's, not theirs) for text
that the caller never hears and the conversation's model reads.

* Thinking (`enable_thinking`, `thinking_model`): the platform "uses an additional turn in the
  conversation to think about the query" through its engine tool `get_ideal_strategy` (contract
  §8). The tool is offered beside the verb's functions; when the model calls it, `Thinking.think`
  sends the conversation so far (the agent's instructions and the spoken turns) to
  `thinking_model` (the conversation's model when unset) with a planning instruction, and the
  plan it writes is the tool's result: the model's next round answers with it in view.
* Inner dialog (`enable_inner_dialog`, `inner_dialog_model`, `inner_dialog_prompt`,
  `inner_dialog_synced`): a second model watches the conversation (`Conversation.subscribe`)
  and writes a short note after each caller turn, with `inner_dialog_prompt` as its system
  prompt; the newest note goes into every later request of the conversation's model as a system
  message (`with_note`), replacing the one before. Not synced, the analysis starts as soon as the
  caller's turn is in the history, beside the reply; synced, it waits for the agent's turn to
  complete (its reply in the history) and analyses the whole exchange.

A failing call (HTTP error, timeout, nothing written) is logged on the call (`ai_failure`, kind
`thinking` / `inner_dialog`): thinking then answers the tool with a plain "no plan" so the
model answers on its own; the inner dialog keeps its previous note.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from mediaserver.events import AiFailure, CallEvent, event
from mediaserver.kernel.agent import AgentEvent, Conversation
from mediaserver.kernel.call import Call
from mediaserver.pipeline.llm import LanguageModel, LlmSettings, TextDelta
from mediaserver.swaig.post_prompt import transcript

__all__ = ["THINKING_TOOL", "AiInnerDialogNote", "AiThought", "InnerDialog", "Thinking", "with_note"]

log = logging.getLogger(__name__)

THINKING_TOOL = "get_ideal_strategy"
THINKING_INSTRUCTION = (
    "You plan the next answer of a voice agent on a phone call. Read the agent's instructions and "
    "the conversation, then write, in a few short lines, the ideal strategy for the agent's next "
    "answer: what the caller wants, what to say or ask, which function to use if any. Write only "
    "the strategy; the caller never sees it."
)
NO_PLAN = "No strategy is available; answer the caller directly."
NOTE_HEADER = "Inner dialog (your own analysis of the conversation; never read it out):"
TIMEOUT_FACTOR = 3  # a reasoning call may take this many first-token timeouts


@event
class AiThought(CallEvent):
    """The thinking model planned the next answer (get_ideal_strategy)."""

    EVENT = "ai_thought"
    model: str
    chars: int


@event
class AiInnerDialogNote(CallEvent):
    """The inner dialog model wrote a note the conversation's model will see."""

    EVENT = "ai_inner_dialog_note"
    model: str
    chars: int
    synced: bool


def _conversation_text(messages: list[dict[str, Any]]) -> str:
    instructions = "\n".join(
        str(m["content"]) for m in messages if m.get("role") == "system" and isinstance(m.get("content"), str)
    )
    return f"The agent's instructions:\n{instructions}\n\nThe conversation:\n{transcript(messages)}"


async def _complete(llm: LanguageModel, messages: list[dict[str, Any]], settings: LlmSettings) -> str:
    parts: list[str] = []
    async with asyncio.timeout(settings.first_token_timeout_s * TIMEOUT_FACTOR):
        async for item in llm.stream(messages, settings=settings):
            if isinstance(item, TextDelta):
                parts.append(item.text)
    return "".join(parts).strip()


class Thinking:
    def __init__(self, call: Call, llm: LanguageModel, settings: Callable[[], LlmSettings], model: str) -> None:
        self.call = call
        self.llm = llm
        self.settings = settings
        self.model = model

    def definition(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": THINKING_TOOL,
                "description": (
                    "Think before answering: returns the ideal strategy for your next answer. "
                    "Call it first when the caller's request is not simple."
                ),
                "parameters": {"type": "object", "properties": {}},
            },
        }

    async def think(self, messages: list[dict[str, Any]]) -> str:
        """The plan for the next answer, from the conversation `messages` (the request in flight)."""
        settings = self.settings()
        if self.model:
            settings = replace(settings, model=self.model)
        request = [
            {"role": "system", "content": THINKING_INSTRUCTION},
            {"role": "user", "content": _conversation_text(messages)},
        ]
        try:
            plan = await _complete(self.llm, request, settings)
        except Exception as exc:  # LlmError, a timeout, an engine bug: the model answers on its own
            self.call.events.emit(AiFailure(kind="thinking", error=str(exc) or repr(exc)))
            return NO_PLAN
        if not plan:
            self.call.events.emit(AiFailure(kind="thinking", error="the thinking model wrote nothing"))
            return NO_PLAN
        self.call.events.emit(AiThought(model=settings.model, chars=len(plan)))
        return plan


class InnerDialog:
    def __init__(
        self,
        call: Call,
        llm: LanguageModel,
        settings: Callable[[], LlmSettings],
        *,
        model: str,
        prompt: str,
        synced: bool,
        history: Conversation,
        start: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
    ) -> None:
        self.call = call
        self.llm = llm
        self.settings = settings
        self.model = model
        self.prompt = prompt
        self.synced = synced
        self.history = history
        self._start = start
        self.note = ""  # the newest note: what the conversation's model sees
        self._running: asyncio.Task[Any] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def begin(self) -> None:
        self._unsubscribe = self.history.subscribe(self._on_history)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_history(self, change: AgentEvent) -> None:
        if change.kind != "added":
            return
        role = change.entry.get("role")
        # Not synced: at the caller's turn, beside the reply; synced: once the agent's turn is complete.
        if role == ("assistant" if self.synced else "user"):
            if self._running is not None and not self._running.done():
                self._running.cancel()  # a newer turn: the older analysis is stale
            self._running = self._start(self._analyse(self.history.snapshot()))

    async def _analyse(self, entries: list[dict[str, Any]]) -> None:
        settings = self.settings()
        if self.model:
            settings = replace(settings, model=self.model)
        request = [
            {"role": "system", "content": self.prompt},
            {
                "role": "user",
                "content": "Analyse this phone conversation and write a short note for the agent "
                f"(what the caller wants, what to do next):\n{transcript(entries)}",
            },
        ]
        try:
            note = await _complete(self.llm, request, settings)
        except Exception as exc:  # LlmError, a timeout, an engine bug: the previous note stays
            self.call.events.emit(AiFailure(kind="inner_dialog", error=str(exc) or repr(exc)))
            return
        if note:
            self.note = note
            self.call.events.emit(AiInnerDialogNote(model=settings.model, chars=len(note), synced=self.synced))


def with_note(messages: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """`messages` with the inner dialog's note as a system message after the leading system ones."""
    if not note:
        return messages
    at = 0
    while at < len(messages) and messages[at].get("role") == "system":
        at += 1
    return [*messages[:at], {"role": "system", "content": f"{NOTE_HEADER}\n{note}"}, *messages[at:]]
