"""Language model: the streaming Protocol the turn manager drives, its events, settings, errors.

Theory of operation: `LanguageModel.stream(messages, tools=..., settings=...)` is an async
iterator of events in the order the model produced them: `TextDelta`s as tokens arrive, one
`ToolCallRequested` per tool call once its name and arguments are complete (arguments are the
JSON text as the model wrote it; parsing and validating them is the caller's job), and exactly
one `LlmFinished` last. Failures raise `LlmError` with a `kind` the kernel maps to a spoken
recovery phrase: "timeout" (no first token within `first_token_timeout_s`, or the whole reply
past `timeout_s`), "http" (a 4xx/5xx answer), "connection" (refused, reset, dropped mid-stream),
"bad_response" (not the OpenAI wire format). Cancelling the consuming task, or closing the
iterator, closes the HTTP stream at once, so a barge-in stops the server's generation too.
`messages` and `tools` are the OpenAI chat format, passed through unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = [
    "LanguageModel",
    "LlmError",
    "LlmEvent",
    "LlmFinished",
    "LlmSettings",
    "TextDelta",
    "ToolCallRequested",
]


@dataclass(frozen=True, slots=True)
class LlmSettings:
    model: str = "gpt-4o-mini"
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    timeout_s: float = 20.0  # the whole reply
    first_token_timeout_s: float = 8.0  # request sent -> first event

    def knobs(self) -> dict[str, Any]:
        """The sampling knobs that are set, as OpenAI request fields."""
        fields = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
        }
        return {key: value for key, value in fields.items() if value is not None}


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequested:
    id: str
    name: str
    arguments: str  # JSON text, assembled from the stream's fragments


@dataclass(frozen=True, slots=True)
class LlmFinished:
    reason: str  # "stop" | "tool_calls" | "length" | "content_filter" | ...


LlmEvent = TextDelta | ToolCallRequested | LlmFinished

LlmErrorKind = Literal["timeout", "http", "connection", "bad_response"]


class LlmError(Exception):
    def __init__(self, kind: LlmErrorKind, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind: LlmErrorKind = kind
        self.status = status  # the HTTP status for kind "http"


class LanguageModel(Protocol):
    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[LlmEvent]: ...
