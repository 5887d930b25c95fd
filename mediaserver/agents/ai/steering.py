"""The session's language model as SWAIG actions steer it, request by request.

Theory of operation: `SteeredLlm` wraps the engine's `LanguageModel` and is what every reply of
the `ai` verb streams from, so whatever an action sets is true of the very next LLM request,
including the next round of the reply whose tool set it:

- `settings` knobs (temperature, top_p, max_tokens, frequency/presence penalty; the action's
  hyphenated names too) replace the verb's own in `LlmSettings`, clamped to the contract's
  ranges (temperature to 1.5); a bad value is logged and skipped;
- tools offered: the platform lets the model call a function right after another one only
  when `back_to_back_functions` is on, so a request that directly follows a tool result goes
  without `tools` unless the action said `true` (once: the request right after that function's
  result, in the same reply) or `"forever"`;
  a reply to an attention timeout (the caller said nothing) goes without tools unless
  `functions_on_speaker_timeout` is on;
- `extensive_data`: the tool result of the function that asked for it goes in full to the
  reply that called it, and shortened to `EXTENSIVE_KEEP` characters in every later reply's
  requests (the history itself keeps it whole, for the call log);
- `silence(reply)` (wait_for_user, hold): the reply's next round does not reach the model at
  all; it finishes at once with no text, so nothing more is said.

Which reply is asking is the caller's `current()` (the session maps its reply tasks). Closing
or cancelling the consumer closes the engine's stream too (`aclose` in `finally`).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from mediaserver.agents.ai.reply import Reply
from mediaserver.pipeline.llm import LanguageModel, LlmEvent, LlmFinished, LlmSettings

__all__ = ["EXTENSIVE_KEEP", "SteeredLlm", "llm_knobs"]

log = logging.getLogger(__name__)

EXTENSIVE_KEEP = 200  # characters of an extensive result that later turns still see
_SHORTENED = " … [shortened: the full result was given when the function ran]"

# knob -> (low, high, type); the action writes them with hyphens, the prompt with underscores
_KNOBS: dict[str, tuple[float, float, type]] = {
    "temperature": (0.0, 1.5, float),
    "top_p": (0.0, 1.0, float),
    "max_tokens": (1, 16_384, int),
    "frequency_penalty": (-2.0, 2.0, float),
    "presence_penalty": (-2.0, 2.0, float),
}


def llm_knobs(settings: dict[str, Any], call_id: str = "") -> dict[str, float | int]:
    """The LLM knobs among `settings` (any spelling), clamped; bad values logged and left out."""
    knobs: dict[str, float | int] = {}
    for key, value in settings.items():
        name = key.replace("-", "_")
        if name not in _KNOBS:
            continue
        low, high, kind = _KNOBS[name]
        try:
            number = kind(float(value)) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            log.warning("call %s: settings.%s: expected a number, got %r; skipped", call_id, key, value)
            continue
        knobs[name] = min(max(number, kind(low)), kind(high))
    return knobs


class SteeredLlm:
    def __init__(self, llm: LanguageModel, current: Callable[[], Reply | None]) -> None:
        self.llm = llm
        self.current = current
        self.knobs: dict[str, float | int] = {}
        self.back_to_back: bool | str = False
        self._chain_reply: weakref.ref[Reply] | None = None  # back_to_back_functions: true, once
        self.functions_on_timeout = False
        self._nudges: weakref.WeakSet[Reply] = weakref.WeakSet()
        self._silenced: weakref.WeakSet[Reply] = weakref.WeakSet()
        self._extensive: dict[str, weakref.ref[Reply]] = {}  # tool_call_id -> the reply that sees it whole

    # -- what actions set ------------------------------------------------------------------------
    def set_back_to_back(self, value: Any) -> None:
        if isinstance(value, str) and value.strip().lower() == "forever":
            self.back_to_back = "forever"
            return
        on = value.strip().lower() in ("true", "1", "yes", "on") if isinstance(value, str) else bool(value)
        self.back_to_back = on
        reply = self.current()
        self._chain_reply = weakref.ref(reply) if on and reply is not None else None

    def nudge(self, reply: Reply) -> None:
        """`reply` answers an attention timeout (no caller words)."""
        self._nudges.add(reply)

    def silence(self, reply: Reply | None) -> None:
        if reply is not None:
            self._silenced.add(reply)

    def mark_extensive(self) -> str | None:
        """The tool call now running gets extensive treatment; returns its id (None: no tool call)."""
        reply = self.current()
        if reply is None:
            return None
        messages = reply.new_messages
        for index in range(len(messages) - 1, -1, -1):
            calls = messages[index].get("tool_calls") if messages[index].get("role") == "assistant" else None
            if calls:
                answered = sum(1 for m in messages[index + 1 :] if m.get("role") == "tool")
                if answered < len(calls):
                    call_id = str(calls[answered].get("id"))
                    self._extensive[call_id] = weakref.ref(reply)
                    return call_id
                return None
        return None

    # -- LanguageModel ---------------------------------------------------------------------------
    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[LlmEvent]:
        reply = self.current()
        if reply is not None and reply in self._silenced:
            yield LlmFinished("stop")
            return
        if self.knobs:
            settings = replace(settings, **self.knobs)  # type: ignore[arg-type]  # names and types: _KNOBS
        if tools and not self._tools_allowed(reply, messages):
            tools = None
        inner = self.llm.stream(self._shortened(reply, messages), tools=tools, settings=settings)
        try:
            async for event in inner:
                yield event
        finally:
            if isinstance(inner, AsyncGenerator):
                await inner.aclose()

    def _tools_allowed(self, reply: Reply | None, messages: list[dict[str, Any]]) -> bool:
        if messages and messages[-1].get("role") == "tool":  # right after a function ran
            if self.back_to_back == "forever":
                return True
            chain = self._chain_reply() if self._chain_reply is not None else None
            self._chain_reply = None  # used up by this request
            return bool(self.back_to_back) and chain is not None and chain is reply
        if reply is not None and reply in self._nudges:
            return self.functions_on_timeout
        return True

    def _shortened(self, reply: Reply | None, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self._extensive:
            return messages
        out = []
        for message in messages:
            owner = self._extensive.get(str(message.get("tool_call_id"))) if message.get("role") == "tool" else None
            content = message.get("content")
            later = owner is not None and owner() is not reply  # the reply that called it sees it whole
            if later and isinstance(content, str) and len(content) > EXTENSIVE_KEEP:
                message = {**message, "content": content[:EXTENSIVE_KEEP] + _SHORTENED}
            out.append(message)
        return out
