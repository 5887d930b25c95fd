"""`params.enable_accounting`: what one `ai` session used of each engine, in the platform's totals.

Theory of operation: the session wraps its LLM and TTS once (`Usage.llm`, `Usage.counted`): `CountingLlm` adds
the tokens of each request (the messages and tool definitions sent) and of each answer (text
and tool-call arguments streamed back), `CountingTts` the characters each synthesis was asked
to speak; the session's transcription tells `heard()` the seconds of caller audio each pass was
given (partials too: the recognizer ran on them).
The OpenAI stream of `pipeline/llm.py` reports no usage, so tokens are estimated as the
tokenizers of GPT-class models average for English (one token per 4 characters, at least one
per message): close enough to budget with, and the same for every engine. Counting is always
on and costs a few additions; `enable_accounting` decides whether the totals are reported: the
post-prompt body's `total_*` fields (the names of the SDK's generated `PostPrompt`), an
`ai_accounting` call event when the AI ends, which `GET /api/calls/{id}` lists and shows as the
call's `accounting`.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from mediaserver.agents.ai.reply import Synthesizer
from mediaserver.events import CallEvent, event
from mediaserver.pipeline.llm import LanguageModel, LlmEvent, LlmFinished, LlmSettings, TextDelta, ToolCallRequested
from mediaserver.pipeline.tts import TtsChunk

__all__ = ["AiAccounting", "CountingLlm", "CountingTts", "Usage", "estimate_tokens"]

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


@event
class AiAccounting(CallEvent):
    """The session's usage totals (params.enable_accounting), when the AI ended."""

    EVENT = "ai_accounting"
    totals: dict[str, Any]


@dataclass
class Usage:
    now_s: Callable[[], float]
    input_tokens: int = 0
    output_tokens: int = 0
    llm_requests: int = 0
    asr_seconds: float = 0.0
    tts_chars: int = 0
    started_s: float = field(default=0.0)
    # Told of each LLM request (messages, input tokens) and answer (ms, output tokens): debug_hooks.py
    on_request: Callable[[list[dict[str, Any]], int], None] = lambda messages, tokens: None
    on_response: Callable[[int, int], None] = lambda ms, tokens: None

    def __post_init__(self) -> None:
        self.started_s = self.now_s()

    def llm(self, llm: LanguageModel) -> LanguageModel:
        """`llm` counted here (the session asks its engines' LLM through this from then on)."""
        return CountingLlm(llm, self)

    def counted(self, tts: Synthesizer) -> Synthesizer:
        """`tts` counted here once (a voice change brings a new synthesizer, counted too)."""
        return tts if isinstance(tts, CountingTts) else CountingTts(tts, self)

    def heard(self, samples: int, sample_rate: int) -> None:
        """A transcription pass was given `samples` of caller audio (finals and partials alike)."""
        self.asr_seconds += samples / sample_rate

    def totals(self) -> dict[str, Any]:
        """The post-prompt body's `total_*` fields (names of the SDK's `PostPrompt`)."""
        minutes = max(self.now_s() - self.started_s, 0.0) / 60

        def per_minute(value: float) -> float:
            return round(value / minutes, 3) if minutes > 0 else 0.0

        return {
            "total_minutes": round(minutes, 4),
            "total_input_tokens": self.input_tokens,
            "total_output_tokens": self.output_tokens,
            "total_wire_input_tokens": self.input_tokens,
            "total_wire_input_tokens_per_minute": per_minute(self.input_tokens),
            "total_wire_output_tokens": self.output_tokens,
            "total_wire_output_tokens_per_minute": per_minute(self.output_tokens),
            "total_llm_requests": self.llm_requests,
            "total_tts_chars": self.tts_chars,
            "total_tts_chars_per_min": per_minute(self.tts_chars),
            "total_asr_seconds": round(self.asr_seconds, 3),
            "total_asr_minutes": round(self.asr_seconds / 60, 4),
            "total_asr_cost_factor": 1.0,  # one local recognizer: no premium engines to weigh
        }


class CountingLlm:
    def __init__(self, inner: LanguageModel, usage: Usage) -> None:
        self.inner = inner
        self.usage = usage

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[LlmEvent]:
        usage = self.usage
        usage.llm_requests += 1
        tokens_in = sum(max(1, estimate_tokens(_text(m))) for m in messages)
        tokens_in += estimate_tokens(json.dumps(tools)) if tools else 0
        usage.input_tokens += tokens_in
        usage.on_request(messages, tokens_in)
        sent, tokens_out = usage.now_s(), 0
        async for item in self.inner.stream(messages, tools=tools, settings=settings):
            tokens = 0
            if isinstance(item, TextDelta):
                tokens = estimate_tokens(item.text)
            elif isinstance(item, ToolCallRequested):
                tokens = estimate_tokens(item.name + item.arguments)
            elif isinstance(item, LlmFinished):
                usage.on_response(int((usage.now_s() - sent) * 1000), tokens_out)
            usage.output_tokens += tokens  # as they stream: a barged answer counts what was made
            tokens_out += tokens
            yield item


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    text = content if isinstance(content, str) else json.dumps(content) if content else ""
    calls = message.get("tool_calls")
    return text + (json.dumps(calls) if calls else "")


class CountingTts:
    def __init__(self, inner: Synthesizer, usage: Usage) -> None:
        self.inner = inner
        self.usage = usage

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    async def stream(self, text: str) -> AsyncIterator[TtsChunk]:
        self.usage.tts_chars += len(text)
        async for chunk in self.inner.stream(text):
            yield chunk
