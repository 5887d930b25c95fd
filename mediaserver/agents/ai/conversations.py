"""`params.conversation_id` + `save_conversation`: a conversation kept on disk and resumed by id.

Theory of operation: on the platform, `save_conversation` (with a `conversation_id`) keeps the
conversation after the call and sends its summary to the post-prompt URL without a
`post_prompt` of the verb's own. Here the `ConversationStore` is a folder (`[swml]
conversations_dir`), one JSON file per conversation id (`<id>.json`, the id made safe for a
file name and suffixed with its hash, so two ids never share a file and none escapes the
folder). When an `ai` verb with `save_conversation` and a `conversation_id` ends, the session
saves its spoken conversation (user and assistant turns, tool rounds and system notes left
out) and the summary (`save()`); when the verb's post_prompt is empty, config.py gives it
`SAVE_SUMMARY_PROMPT`, so there is a summary to save and to POST to `post_prompt_url`. A
later `ai` verb with the same `conversation_id` resumes it (`resume()`): the saved turns go
into its history before `params.convo`, or, with `summary_mode: "string"`, one system message
carrying the saved summary instead of the turns. A store that cannot be read or written is a
log line (`ai_failure` kind `conversation_store`), never a failed call. `NoConversations` (no
folder configured) keeps nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Protocol

from mediaserver.agents.ai.ops import AiOps

__all__ = [
    "SAVE_SUMMARY_PROMPT",
    "ConversationStore",
    "Conversations",
    "NoConversations",
    "resume",
    "resumed_messages",
    "save",
]

log = logging.getLogger(__name__)

SAVE_SUMMARY_PROMPT = "Summarize the conversation in a few sentences: who called, what they wanted, what was agreed."
RESUMED_SUMMARY = "Summary of the earlier conversation with this caller: {summary}"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Conversations(Protocol):
    def load(self, conversation_id: str) -> dict[str, Any] | None:
        """The saved conversation (`messages`, `summary`), or None when there is none."""
        ...

    def save(self, conversation_id: str, messages: list[dict[str, Any]], summary: str) -> None: ...


class NoConversations:
    def load(self, conversation_id: str) -> dict[str, Any] | None:
        return None

    def save(self, conversation_id: str, messages: list[dict[str, Any]], summary: str) -> None:
        return None


class ConversationStore:
    """One JSON file per conversation id under `folder` (created on the first save)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path_of(self, conversation_id: str) -> Path:
        digest = hashlib.sha256(conversation_id.encode()).hexdigest()[:16]
        name = _SAFE.sub("_", conversation_id).strip("._")[:64] or "conversation"
        return self.folder / f"{name}-{digest}.json"

    def load(self, conversation_id: str) -> dict[str, Any] | None:
        path = self.path_of(conversation_id)
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and data.get("conversation_id") == conversation_id else None

    def save(self, conversation_id: str, messages: list[dict[str, Any]], summary: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path_of(conversation_id)
        body = {
            "conversation_id": conversation_id,
            "saved_at": int(time.time()),
            "summary": summary,
            "messages": messages,
        }
        partial = path.with_suffix(".json.part")
        partial.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
        partial.replace(path)  # a reader never sees half a file


def spoken(history: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The turns worth keeping: what the caller and the agent said (no tool rounds, no notes)."""
    return [
        {"role": str(m["role"]), "content": m["content"]}
        for m in history
        if m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str) and m["content"].strip()
    ]


def resumed_messages(saved: dict[str, Any] | None, summary_mode: str) -> list[dict[str, str]]:
    """What a resumed conversation puts in the new session's history (see the module doc)."""
    if not saved:
        return []
    summary = saved.get("summary")
    if summary_mode == "string" and isinstance(summary, str) and summary.strip():
        return [{"role": "system", "content": RESUMED_SUMMARY.format(summary=summary.strip())}]
    messages = saved.get("messages")
    return spoken(messages) if isinstance(messages, list) else []


def resume(store: Conversations, ops: AiOps, on_error: Callable[[str], None]) -> list[dict[str, str]]:
    """The turns a session with `conversation_id` starts with (blocking: one small file read)."""
    if not ops.conversation_id:
        return []
    try:
        saved = store.load(ops.conversation_id)
    except (OSError, ValueError) as exc:  # unreadable or not JSON: start afresh, say why
        on_error(f"conversation {ops.conversation_id!r} not resumed: {exc!r}")
        return []
    return resumed_messages(saved, ops.summary_mode)


async def save(
    store: Conversations,
    ops: AiOps,
    history: list[dict[str, Any]],
    summary: str | None,
    blocking: Executor,
    on_error: Callable[[str], None],
) -> bool:
    """At the AI's end, with save_conversation and a conversation_id: keep it (off the loop)."""
    if not (ops.save_conversation and ops.conversation_id):
        return False
    turns = spoken(history)
    try:
        await asyncio.get_running_loop().run_in_executor(
            blocking, store.save, ops.conversation_id, turns, summary or ""
        )
    except (OSError, ValueError, TypeError) as exc:
        on_error(f"conversation {ops.conversation_id!r} not saved: {exc!r}")
        return False
    return True
