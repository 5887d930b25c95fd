"""Debug output of an `ai` session: the debug webhook, `debug`/`verbose_logs`, audible readouts.

Theory of operation: the session already records everything it does as call events
(`call.events`). `DebugHooks.pump()` runs in the session's tick (after each agent frame leaves)
and at its end; it reads the events added since the last pump and turns each into what the
params ask for:

- `debug_webhook_url` / `debug_webhook_level`: the platform's debug events, POSTed as the SDK's
  `/debug_events` endpoint reads them: a JSON body with `label` (the event's name), `call_id`,
  `ai_session_id`, `app_name`, `conversation_id` (when set), `epoch_time` and the event's own
  fields. Level 1: `session_start`, `session_end` (reason, duration_ms, token counts),
  `barge` (barge_elapsed_ms), `step_change`, `context_change`, `llm_error`, `voice_error`,
  `hold`, `process_action`, `function_call`, `function_error`, `language_change` and
  `latency` (each answer's, in ms); level 2 adds `llm_request` (input tokens),
  `llm_response` (duration, output tokens) and `conversation_add` (each history entry). The
  POSTs go out in order from one background sender; a failing URL is a log line, the call goes
  on. `close()` handles the last events (`session_end`) and waits for the sender at most
  `CLOSE_WAIT_S` (the next verb must not wait on a slow URL); the rest goes in the background.
- `debug` / `verbose_logs`: the same events at either level also go into the call's own event
  log as `ai_debug` (so the JSONL call log and `GET /api/calls/{id}` show them); with
  `verbose_logs` they carry the text too (the LLM request's messages, the history entry's
  content), without it only sizes and counts.
- `audible_debug`: the agent says which function it is calling ("Calling function weather."),
  `audible_latency`: after each answer's first audio, "Latency 740 milliseconds." (from the
  caller's last voiced sample to the agent's first frame, on the caller's 16 kHz media clock).
  Both are spoken through the running reply (a barge-in cuts them) and never enter the LLM's
  history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from mediaserver.agents.ai.ops import AiOps
from mediaserver.clock import wall_time
from mediaserver.events import CallEvent, event
from mediaserver.kernel.agent import AgentEvent, Conversation
from mediaserver.kernel.call import Call
from mediaserver.swaig.client import post_json

__all__ = ["AiDebug", "DebugHooks"]

log = logging.getLogger(__name__)

CALLER_RATE = 16_000  # turn events count caller samples on the pipeline clock
POST_TIMEOUT_S = 5.0
CLOSE_WAIT_S = 2.0

# call event -> (debug label, level)
LABELS: dict[str, tuple[str, int]] = {
    "ai_started": ("session_start", 1),
    "ai_finished": ("session_end", 1),
    "barge_flushed": ("barge", 1),
    "ai_change_step": ("step_change", 1),
    "ai_change_context": ("context_change", 1),
    "ai_hold": ("hold", 1),
    "ai_hold_ended": ("hold", 1),
    "ai_actions_deferred": ("process_action", 1),
    "tool_invoked": ("function_call", 1),
    "tool_failed": ("function_error", 1),
    "ai_voice_refused": ("voice_error", 1),
    "ai_language_changed": ("language_change", 1),
}
LLM_FAILURES = ("llm_timeout", "llm_error", "llm_unreachable", "post_prompt")


@event
class AiDebug(CallEvent):
    """A debug event of the session (params.debug / verbose_logs), as the debug webhook gets it."""

    EVENT = "ai_debug"
    label: str
    data: dict[str, Any]


class DebugHooks:
    def __init__(
        self,
        call: Call,
        ops: AiOps,
        *,
        identity: dict[str, Any],
        speak: Callable[[str], Coroutine[Any, Any, None]],
        start: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
        totals: Callable[[], dict[str, Any]],
        http: Callable[[], aiohttp.ClientSession] | None = None,
    ) -> None:
        self.call = call
        self.ops = ops
        self.identity = identity  # call_id, ai_session_id, app_name, conversation_id
        self._speak = speak
        self._start = start
        self._totals = totals
        self._http_factory = http
        self._own_http: aiohttp.ClientSession | None = None
        self._seen = len(call.events.events)
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._speech_end: int | None = None
        self._agent_cursor = 0  # the played cursor where the agent's current answer began
        self._started_ts: float | None = None
        self.posted = 0
        self.failed = 0

    @property
    def webhook_level(self) -> int:
        return self.ops.debug_webhook_level if self.ops.debug_webhook_url else 0

    @property
    def wanted(self) -> bool:
        ops = self.ops
        return bool(self.webhook_level or ops.diagnostics or ops.audible_debug or ops.audible_latency)

    # -- sources ---------------------------------------------------------------------------------
    def watch(self, history: Conversation) -> None:
        """Level 2: each entry added to the conversation (conversation_add)."""
        if self.webhook_level >= 2 or self.ops.diagnostics:
            history.subscribe(self._on_history)

    def _on_history(self, change: AgentEvent) -> None:
        if change.kind == "added":
            self.pump()  # the call events before it go first: the webhook sees them in order
            entry = change.entry
            data: dict[str, Any] = {"role": entry.get("role"), "chars": len(str(entry.get("content") or ""))}
            if self.ops.verbose_logs or self.webhook_level >= 2:
                data["content"] = entry.get("content")
            self.emit("conversation_add", 2, data)

    def llm_request(self, messages: list[dict[str, Any]], input_tokens: int) -> None:
        if not self.wanted:
            return
        self.pump()
        data: dict[str, Any] = {"messages": len(messages), "input_tokens": input_tokens}
        if self.ops.verbose_logs:
            data["request"] = [dict(m) for m in messages]  # a copy: the log is written off the loop
        self.emit("llm_request", 2, data)

    def llm_response(self, duration_ms: int, output_tokens: int) -> None:
        if not self.wanted:
            return
        self.pump()
        self.emit("llm_response", 2, {"duration_ms": duration_ms, "output_tokens": output_tokens})

    def pump(self) -> None:
        """Handle the call events added since the last pump (cheap: runs in the tick)."""
        entries = self.call.events.events
        if self._seen >= len(entries) or not self.wanted:
            return
        new, self._seen = entries[self._seen :], len(entries)
        for entry in new:
            self._on_event(entry)

    def _on_event(self, entry: dict[str, Any]) -> None:
        name = str(entry.get("event"))
        fields = {k: v for k, v in entry.items() if k not in ("event", "ts")}
        if name == "ai_started":
            self._started_ts = float(entry.get("ts") or 0.0)
        elif name == "ai_finished":
            fields["reason"] = fields.get("result", "")
            if self._started_ts is not None:
                fields["duration_ms"] = int((float(entry.get("ts") or 0.0) - self._started_ts) * 1000)
            fields.update(self._totals())
        elif name == "barge_flushed":
            rate = self.call.media.sample_rate
            fields["barge_elapsed_ms"] = max(0, int(fields.get("cursor", 0)) - self._agent_cursor) * 1000 // rate
        elif name == "turn_endpoint":
            self._speech_end = int(fields.get("speech_end", 0))
        elif name == "turn_first_agent_frame":
            self._agent_cursor = int(fields.get("cursor", 0))
            self._latency(int(fields.get("caller_sample", 0)))
        elif name == "tool_invoked" and self.ops.audible_debug:
            self._start(self._speak(f"Calling function {fields.get('name')}."))
        if name == "ai_failure" and fields.get("kind") in LLM_FAILURES:
            self.emit("llm_error", 1, fields)
        elif name == "ai_failure" and fields.get("kind") == "tts_failure":
            self.emit("voice_error", 1, fields)
        elif name in LABELS:
            label, level = LABELS[name]
            self.emit(label, level, fields)

    def _latency(self, caller_sample: int) -> None:
        if self._speech_end is None:
            return  # the agent spoke first (greeting, nudge): no caller turn to time
        ms = max(0, caller_sample - self._speech_end) * 1000 // CALLER_RATE
        self._speech_end = None
        self.emit("latency", 1, {"latency_ms": ms})
        if self.ops.audible_latency:
            self._start(self._speak(f"Latency {ms} milliseconds."))

    # -- sinks -----------------------------------------------------------------------------------
    def emit(self, label: str, level: int, data: dict[str, Any]) -> None:
        if self.ops.diagnostics:
            self.call.events.emit(AiDebug(label=label, data=data))
        if self.webhook_level >= level:
            body = {"label": label, **self.identity, "epoch_time": int(wall_time() * 1_000_000), **data}
            self._outbox.put_nowait(body)
            if self._sender is None or self._sender.done():
                self._sender = asyncio.ensure_future(self._send())  # outlives the session's tasks

    async def _send(self) -> None:
        while not self._outbox.empty():
            body = self._outbox.get_nowait()
            try:
                reply = await post_json(
                    self._http(), self.ops.debug_webhook_url, body, timeout_s=POST_TIMEOUT_S, retries=0
                )
                ok, error = reply.ok, reply.error
            except Exception as exc:  # a bad URL (no host…) must not end the call either
                ok, error = False, repr(exc)
            if ok:
                self.posted += 1
            else:
                self.failed += 1
                url = self.ops.debug_webhook_url.split("?")[0].split("@")[-1]
                log.warning("call %s: debug webhook %s: %s", self.call.call_id, url, error)

    def _http(self) -> aiohttp.ClientSession:
        if self._http_factory is not None:
            return self._http_factory()
        if self._own_http is None:
            self._own_http = aiohttp.ClientSession(trust_env=False)
        return self._own_http

    async def close(self) -> None:
        """The session ended: handle the last events (session_end); wait a little for the sender.

        The next verb waits at most `CLOSE_WAIT_S` for a slow debug URL; what is left is sent in
        the background (the platform posts these asynchronously too) and the HTTP session closed
        after it.
        """
        self.pump()
        sender = self._sender
        if sender is not None and not sender.done():
            try:
                await asyncio.wait_for(asyncio.shield(sender), CLOSE_WAIT_S)
            except TimeoutError:
                log.info("call %s: debug webhook still sending after the AI ended", self.call.call_id)
                _lingering.add(sender)
                sender.add_done_callback(self._finished)
                return
        await self._close_http()

    def _finished(self, sender: asyncio.Task[None]) -> None:
        _lingering.discard(sender)
        closing = asyncio.ensure_future(self._close_http())
        _lingering.add(closing)
        closing.add_done_callback(_lingering.discard)

    async def _close_http(self) -> None:
        if self._own_http is not None:
            http, self._own_http = self._own_http, None
            await http.close()


_lingering: set[asyncio.Task[None]] = set()  # senders outliving their session (a slow debug URL)


def debug_identity(call: Call, ops: AiOps) -> dict[str, Any]:
    """Who a debug event is about, as webhook bodies name it (swaig/request.py)."""
    identity = {
        "call_id": call.call_id,
        "ai_session_id": str(call.info.get("ai_session_id") or call.call_id),
        "app_name": ops.app_name,
    }
    if ops.conversation_id:
        identity["conversation_id"] = ops.conversation_id
    return identity
