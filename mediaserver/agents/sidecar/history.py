"""The sidecar's helper history: token estimate and pruning to `max_history_tokens`.

Theory of operation: there is no tokenizer for an arbitrary OpenAI-compatible model, so tokens
are estimated at about 4 characters each (content plus tool-call names and arguments), the same
estimate for `request.messages_token_count`, the `status` counters and the budget. `prune`
drops the oldest non-system entries until the estimate fits: an assistant message that made tool
calls goes together with the tool replies that follow it (a tool message without its call is
refused by OpenAI-style servers), the system prompt stays, and so does the newest message.
"""

from __future__ import annotations

from typing import Any

__all__ = ["estimate_tokens", "prune"]


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    chars = 0
    for m in messages:
        chars += len(str(m.get("content") or "")) + 4
        for call in m.get("tool_calls") or []:
            fn = call.get("function", {})
            chars += len(str(fn.get("name", ""))) + len(str(fn.get("arguments", "")))
    return (chars + 3) // 4


def prune(history: list[dict[str, Any]], budget: int) -> tuple[int, int, int]:
    """Prune in place; returns (tokens before, tokens after, entries dropped)."""
    before = estimate_tokens(history)
    dropped = 0
    while estimate_tokens(history) > budget and len(history) > 2:
        index = next((i for i, m in enumerate(history) if m.get("role") != "system"), None)
        if index is None or index == len(history) - 1:
            break
        del history[index]
        dropped += 1
        while index < len(history) - 1 and history[index].get("role") == "tool":
            del history[index]
            dropped += 1
    return before, estimate_tokens(history) if dropped else before, dropped
