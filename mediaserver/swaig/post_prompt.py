"""Post-prompt summaries (contract §4.4): one LLM pass over the conversation, POSTed to the agent.

Theory of operation: when an `ai` verb with `post_prompt` ends, the session runs one LLM call
with `summary_messages(post_prompt_text, history)` (the post-prompt as the system message, the
conversation as a transcript) and hands the text to `deliver_summary`, which POSTs the §4.4 body
(`post_prompt_data {raw, parsed, substituted}`, call_log, global_data, swaig_log…) to
`post_prompt_url`, keeping its `?__token=` (SDK agents require it, bound to the call_id) and
turning its userinfo into basic auth. The session's record (swaig/session_record.py) gives the
timestamped call_log/raw_call_log, the call and AI dates and the per-response `times`; a
session with `params.enable_accounting` also reports its usage (`usage_totals`: the SDK's
`total_input_tokens`, `total_output_tokens`, `total_tts_chars`, `total_asr_minutes`…,
agents/ai/accounting.py), added to the body as they are. A failed delivery is logged, never
raised.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

import aiohttp

from mediaserver.swaig.client import WebhookReply, post_json
from mediaserver.swaig.request import post_prompt_body
from mediaserver.swaig.seam import CallInfo

__all__ = ["UsageReport", "deliver_summary", "summary_messages", "transcript", "usage_totals"]

log = logging.getLogger(__name__)


@runtime_checkable
class UsageReport(Protocol):
    def usage_totals(self) -> dict[str, Any] | None:
        """The post-prompt body's `total_*` fields, or None when accounting is off."""
        ...


def usage_totals(record: object) -> dict[str, Any] | None:
    """The usage of a session that reports it (params.enable_accounting), else None."""
    return record.usage_totals() if isinstance(record, UsageReport) else None


def transcript(history: list[dict[str, Any]]) -> str:
    """The spoken conversation as `role: text` lines (system and tool messages left out)."""
    lines = []
    for message in history:
        role, content = message.get("role"), message.get("content")
        if role in ("user", "assistant") and isinstance(content, str) and content.strip():
            lines.append(f"{role}: {content.strip()}")
    return "\n".join(lines)


def summary_messages(post_prompt: str, history: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": post_prompt},
        {"role": "user", "content": f"Here is the conversation:\n{transcript(history)}"},
    ]


async def deliver_summary(
    http: aiohttp.ClientSession,
    url: str,
    summary: str,
    *,
    call: CallInfo,
    params: dict[str, Any],
    global_data: dict[str, Any],
    call_log: list[dict[str, Any]],
    swaig_log: list[dict[str, Any]] | None = None,
    times_us: dict[str, int] | None = None,
    signing_key: str = "",
    timeout_s: float = 30.0,
    raw_call_log: list[dict[str, Any]] | None = None,
    times: list[dict[str, Any]] | None = None,
    totals: dict[str, Any] | None = None,
) -> WebhookReply:
    body = post_prompt_body(
        summary,
        call=call,
        params=params,
        global_data=global_data,
        call_log=call_log,
        swaig_log=swaig_log,
        times_us=times_us,
        raw_call_log=raw_call_log,
        times=times,
    )
    body.update(totals or {})  # enable_accounting: total_input_tokens, total_tts_chars…
    reply = await post_json(http, url, body, timeout_s=timeout_s, signing_key=signing_key)
    if not reply.ok:
        log.warning("post_prompt delivery to %s failed: %s", url.split("?")[0].split("@")[-1], reply.error)
    return reply
