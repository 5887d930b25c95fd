"""The sidecar's worker: ticks, asks and pokes through the LLM tool loop, and its events.

Theory of operation: one `SidecarEngine` per call. Work arrives as jobs on a FIFO queue and one
worker task runs them in order (seed 002: "asks are FIFO-queued through the worker thread
alongside ticks"): `turn(TurnEnded)` (a customer turn ended: emit `turn`, append the delta to
the persistent helper history, run the tool loop), `poke(text)` (a user message into the
persistent history, then a tick), `ask(question)` (a tool loop over an ephemeral snapshot whose
head system message is the ask framing and whose tools lack `sidecar_skip`: the persistent
history is never touched), `user_input` (a SWAIG action: like poke).

The tool loop (the one the `ai` verb uses too: `mediaserver.pipeline.toolloop`, with
`_LoopHooks` as the sidecar's side of it) runs at most `max_iters_per_tick` LLM calls; every
tool call the model makes gets its tool message, "Not run." for those after a skip, a bail or a
close. Each call emits `request`; the `min_interval_ms` throttle delays it if the previous LLM
call was too recent. A reply with tool calls emits `thought` (text alongside the calls), then
per call `tool_call` / `tool_result` (and `action` / `global_data_change` for the actions its
reply carried); `sidecar_skip` ends the tick silently with `skip`; a plain reply ends it with
`insight` (or `ask_answer`). The anti-loop guards (`mediaserver.swaig.guards.ToolGuards`,
reset per tick and per ask) answer a duplicate or a phantom call without dispatching it, and on
a bail (more than 4 calls, the 3rd identical call in a row, the 3rd phantom) give the model the
canned reply, emit `error` with `error_reason` `tool_loop` (`phantom_tool` for phantoms) and end
the tick.

Every event goes through `emit`: `{type, ts (µs), tick_id, channel_data, ...fields}`; it is kept
in the event log (for `final` and `event_log_bytes`) and handed to the sink (event bus and
webhook, see runner.py). `close(reason)` cancels the job in flight, runs the optional summaries,
emits `stop` then `final` (the full state dump) and ends the worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from mediaserver.agents.ai.tools import ToolRunner
from mediaserver.agents.sidecar.config import SKIP_TOOL, SidecarConfig
from mediaserver.agents.sidecar.control import SidecarControl, action_verdict
from mediaserver.agents.sidecar.history import estimate_tokens, prune
from mediaserver.agents.sidecar.turns import TurnEnded
from mediaserver.pipeline.llm import LanguageModel, LlmError, LlmSettings, ToolCallRequested
from mediaserver.pipeline.toolloop import Completion, ToolAnswer, ToolLoopHooks, complete, run_tool_loop
from mediaserver.swaig.guards import GuardVerdict, ToolGuards, Verdict
from mediaserver.swaig.seam import ToolInvocation, ToolOutcome

__all__ = ["SKIP_DEFINITION", "SidecarEngine", "SidecarStats"]

log = logging.getLogger(__name__)

SKIP_DEFINITION: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": SKIP_TOOL,
        "description": "Call this when the latest customer turn requires no advice for the agent. Ends this tick "
        "immediately.",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "Optional one-line reason for the audit log."}},
        },
    },
}
SUMMARY_PROMPT = (
    "Summarize this sidecar session for the agent's CRM: the customer's needs, the advice given, and open items."
)
CALL_SUMMARY_PROMPT = "Summarize this phone call between a customer and an agent in a few sentences."

Sink = Callable[[dict[str, Any]], None]


@dataclass
class SidecarStats:
    ticks: int = 0
    insights: int = 0
    skips: int = 0
    tools: int = 0
    errors: int = 0
    asks: int = 0
    in_tokens: int = 0
    out_tokens: int = 0


@dataclass
class _Job:
    kind: str  # "tick" | "poke" | "ask" | "user_input"
    text: str = ""
    turn: TurnEnded | None = None


@dataclass
class _Loop:
    """One tick's (or ask's) tool loop state."""

    mode: str  # "tick" | "ask"
    messages: list[dict[str, Any]]
    triggered_by: str | None
    guards: ToolGuards = field(default_factory=ToolGuards)


class SidecarEngine:
    def __init__(
        self,
        config: SidecarConfig,
        llm: LanguageModel,
        tools: ToolRunner,
        control: SidecarControl,
        sink: Sink,
        *,
        system_prompt: str,
        ask_prompt: str,
        channel_data: dict[str, Any],
        now_us: Callable[[], int],
        monotonic_ms: Callable[[], int],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        llm_settings: LlmSettings | None = None,
        global_data: dict[str, Any] | None = None,
        on_global_data: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.llm = llm
        self.tools = tools
        self.control = control
        self.sink = sink
        self.channel_data = channel_data
        self.now_us = now_us
        self.monotonic_ms = monotonic_ms
        self.sleep = sleep
        self.settings = llm_settings or LlmSettings(model=config.model)
        if self.settings.model != config.model:
            self.settings = replace(self.settings, model=config.model)
        self.history: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}]
        self.ask_prompt = ask_prompt
        self.global_data: dict[str, Any] = dict(global_data if global_data is not None else config.global_data)
        self.on_global_data = on_global_data
        self.stats = SidecarStats()
        self.event_log: list[dict[str, Any]] = []
        self.event_log_bytes = 0
        self.tool_calls: list[dict[str, Any]] = []
        self.insights: list[dict[str, Any]] = []
        self.transcript: list[dict[str, Any]] = []
        self.tick_id = 0
        self.started_at_us = now_us()
        self.running = True
        self.stop_reason = ""
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._last_llm_ms: int | None = None
        self._worker: asyncio.Task[None] | None = None
        self._current: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._closing = False
        self._deferred: list[dict[str, Any]] | None = None

    # -- events ----------------------------------------------------------------------------
    def emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        raw = json.dumps(
            {"type": type_, "ts": self.now_us(), "tick_id": self.tick_id, "channel_data": self.channel_data, **fields},
            default=str,
        )
        # A snapshot: later changes (global_data, history) must not rewrite an event already sent.
        event: dict[str, Any] = json.loads(raw)
        if type_ != "final":
            self.event_log.append(event)
            self.event_log_bytes += len(raw)
        if type_ == "error":
            self.stats.errors += 1
        try:
            self.sink(event)
        except Exception:  # a broken consumer must not stop the sidecar
            log.exception("sidecar event sink failed")
        return event

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        tools = [t["function"]["name"] for t in self._tool_definitions("tick")]
        self.emit("start", model=self.config.model, tools=tools, global_data=self.global_data)
        self._worker = asyncio.create_task(self._work(), name="sidecar-worker")

    @property
    def history_size(self) -> int:
        return len(self.history)

    def status_line(self) -> str:
        s = self.stats
        return (
            f"+OK running={int(self.running)} ticks={s.ticks} insights={s.insights} skips={s.skips} "
            f"tools={s.tools} errors={s.errors} in_tokens={s.in_tokens} out_tokens={s.out_tokens} "
            f"history_size={self.history_size} event_log_bytes={self.event_log_bytes}"
        )

    def status(self) -> dict[str, int]:
        s = self.stats
        return {
            "running": int(self.running),
            "ticks": s.ticks,
            "insights": s.insights,
            "skips": s.skips,
            "tools": s.tools,
            "errors": s.errors,
            "in_tokens": s.in_tokens,
            "out_tokens": s.out_tokens,
            "history_size": self.history_size,
            "event_log_bytes": self.event_log_bytes,
        }

    def turn(self, turn: TurnEnded) -> None:
        self._put(_Job("tick", turn=turn))

    def poke(self, text: str) -> None:
        self._put(_Job("poke", text=text))

    def ask(self, question: str) -> None:
        self._put(_Job("ask", text=question))

    def user_input(self, text: str) -> None:
        self._put(_Job("user_input", text=text))

    def add_system_message(self, text: str) -> None:
        """A system message into the persistent history (a SWAIG action's, through the control)."""
        self.history.append({"role": "system", "content": text})

    def record_utterance(self, utterance: dict[str, Any]) -> None:
        self.transcript.append(utterance)

    def _put(self, job: _Job) -> None:
        if self.running and not self._closing:
            self._queue.put_nowait(job)

    async def idle(self) -> None:
        """Wait until every queued job has run (tests and the API's graceful paths)."""
        await self._queue.join()

    async def close(self, reason: str) -> dict[str, Any] | None:
        """Stop: cancel the job in flight, summaries, `stop` then `final`. Idempotent."""
        if self._closing:
            await self._closed.wait()
            return None
        self._closing = True
        self.stop_reason = reason
        current = self._current
        if current is not None and not current.done() and current is not asyncio.current_task():
            current.cancel()
            await asyncio.gather(current, return_exceptions=True)
        if self._worker is not None and self._worker is not asyncio.current_task():
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self.running = False
        summary = await self._summary(self.history, SUMMARY_PROMPT) if self.config.params.final_summary else None
        self.emit("stop", stop_reason=reason)
        ended = self.now_us()
        final: dict[str, Any] = {
            "stop_reason": reason,
            "history": self.history,
            "transcript": self.transcript,
            "event_log": self.event_log,
            "tool_calls": self.tool_calls,
            "insights": self.insights,
            "stats": {**self.status(), "asks": self.stats.asks},
            "global_data": self.global_data,
            "model": self.config.model,
            "started_at": self.started_at_us,
            "ended_at": ended,
            "duration_ms": (ended - self.started_at_us) // 1000,
        }
        if summary is not None:
            final["summary"] = summary
        event = self.emit("final", **final)
        self._closed.set()
        return event

    async def call_summary(self) -> str | None:
        """ai_summary: a close-time summary of the raw call (distinct from final_summary)."""
        lines = "\n".join(f"{u.get('role', '?')}: {u.get('text', '')}" for u in self.transcript)
        prompt = self.config.params.ai_summary_prompt or CALL_SUMMARY_PROMPT
        return await self._summary([{"role": "system", "content": prompt}, {"role": "user", "content": lines}], None)

    async def _summary(self, messages: list[dict[str, Any]], instruction: str | None) -> str | None:
        msgs = [dict(m) for m in messages]
        if instruction:
            msgs.append({"role": "user", "content": instruction})
        try:
            completion = await self._complete(msgs, None)
        except LlmError as exc:
            self.emit("error", error_reason=f"llm_{exc.kind}", detail=f"summary: {exc}")
            return None
        return completion.text.strip()

    # -- the worker ------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                self._current = asyncio.create_task(self._run_job(job), name=f"sidecar-{job.kind}")
                await self._current
            except asyncio.CancelledError:
                if self._closing:
                    raise
            except Exception as exc:
                log.exception("sidecar job failed")
                self.emit("error", error_reason="internal", detail=repr(exc))
            finally:
                self._current = None
                self._queue.task_done()

    async def _run_job(self, job: _Job) -> None:
        if job.kind == "ask":
            await self._ask(job.text)
            return
        self.tick_id += 1
        self.stats.ticks += 1
        triggered_by: str | None = None
        if job.kind == "tick" and job.turn is not None:
            turn = job.turn
            delta = [u.as_dict() for u in turn.delta]
            self.emit(
                "turn",
                transcript_delta=delta,
                customer_text=turn.customer_text,
                agent_text=turn.agent_text,
                trigger=turn.trigger,
            )
            lines = [f"{'Customer' if u.role == 'customer' else 'Agent'}: {u.text}" for u in turn.delta]
            self._append({"role": "user", "content": "\n".join(lines)})
        else:
            triggered_by = job.kind  # "poke" | "user_input"
            self._append({"role": "user", "content": job.text})
        await self._loop(_Loop("tick", self.history, triggered_by))

    async def _ask(self, question: str) -> None:
        self.stats.asks += 1
        self.emit("ask_request", question=question)
        snapshot = [dict(m) for m in self.history]
        snapshot[0] = {"role": "system", "content": self.ask_prompt}
        snapshot.append({"role": "user", "content": f"The agent asks: {question}"})
        await self._loop(_Loop("ask", snapshot, "ask"))

    def _tool_definitions(self, mode: str) -> list[dict[str, Any]]:
        tools = list(self.tools.tool_definitions())
        return tools + [SKIP_DEFINITION] if mode == "tick" else tools

    def _by(self, loop: _Loop) -> dict[str, Any]:
        return {"triggered_by": loop.triggered_by} if loop.triggered_by else {}

    async def _throttle(self) -> None:
        wait_ms = self.config.params.min_interval_ms
        if wait_ms and self._last_llm_ms is not None:
            remaining = self._last_llm_ms + wait_ms - self.monotonic_ms()
            if remaining > 0:
                await self.sleep(remaining / 1000)
        self._last_llm_ms = self.monotonic_ms()

    async def _before_llm(self, messages: list[dict[str, Any]]) -> None:
        await self._throttle()
        self.stats.in_tokens += estimate_tokens(messages)

    def _count_out(self, completion: Completion) -> None:
        calls = completion.calls
        self.stats.out_tokens += (len(completion.text) + sum(len(c.name) + len(c.arguments) for c in calls) + 3) // 4

    async def _complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Completion:
        await self._before_llm(messages)
        completion = await complete(self.llm, messages, tools=tools, settings=self.settings)
        self._count_out(completion)
        return completion

    async def _loop(self, loop: _Loop) -> None:
        tools = self._tool_definitions(loop.mode)
        valid = [t["function"]["name"] for t in tools]
        self.tools.begin_turn()  # the SWAIG runner's own guards count per turn too
        max_iters = self.config.params.max_iters_per_tick
        hooks = _LoopHooks(self, loop, valid)
        result = await run_tool_loop(
            self.llm, loop.messages, hooks, tools=lambda: tools, settings=lambda: self.settings, max_rounds=max_iters
        )
        it = result.rounds - 1
        if result.end == "answer":
            text = result.text
            self._append_to(loop, {"role": "assistant", "content": text})
            if loop.mode == "ask":
                self.emit("ask_answer", raw=text.strip(), iter=it, total_iters=it + 1, triggered_by="ask")
            else:
                self.stats.insights += 1
                event = self.emit("insight", raw=text.strip(), iter=it, total_iters=it + 1)
                self.insights.append({"tick_id": self.tick_id, "raw": event["raw"], "ts": event["ts"]})
        elif result.end == "limit":
            self.emit(
                "error",
                error_reason="max_iters",
                iter=max_iters - 1,
                detail=f"no final answer within max_iters_per_tick={max_iters}",
                **self._by(loop),
            )

    async def _invoke(self, call: ToolCallRequested, it: int, loop: _Loop) -> ToolOutcome:
        self.stats.tools += 1
        record = {"tick_id": self.tick_id, "name": call.name, "arguments": call.arguments, "iter": it}
        log_before = len(self.tools.swaig_log)
        try:
            outcome = await self.tools.invoke(ToolInvocation(call.id, call.name, call.arguments), self.control)
        except Exception as exc:  # a runner that raises: the model hears it failed, the tick goes on
            self.emit("error", error_reason="tool_error", detail=f"{call.name}: {exc}", iter=it, **self._by(loop))
            outcome = ToolOutcome(response=f"The function {call.name} failed: {exc}")
        # The SWAIG runner answers a failed webhook (timeout, HTTP error, not JSON) with text for
        # the model; its log says so, and the operator sees it as an error event.
        for entry in self.tools.swaig_log[log_before:]:
            if isinstance(entry, dict) and isinstance(entry.get("post_response"), str):
                self.emit(
                    "error",
                    error_reason="tool_webhook",
                    detail=f"{call.name}: {entry['post_response']}",
                    iter=it,
                    **self._by(loop),
                )
        record["response"] = outcome.response
        self.tool_calls.append(record)
        return outcome

    def _action_event(self, action: Any, source: str) -> None:
        executed, reason = self.action_verdict(action)
        fields: dict[str, Any] = {"action": action, "source_function": source, "executed": executed}
        if reason:
            fields["reason"] = reason
        self.emit("action", **fields)
        if reason == "swml_not_allowed":
            self.emit(
                "error",
                error_reason="swml_not_allowed",
                detail=f"{source} returned a SWML action but permissions.swaig_allow_swml is false",
            )

    def action_verdict(self, action: Any) -> tuple[bool, str]:
        return action_verdict(
            action,
            self.config.params.act_on_channel,
            self.config.permissions,
            can_run_swml=self.control.can_run_swml,
        )

    # -- history -----------------------------------------------------------------------------
    def _append_to(self, loop: _Loop, message: dict[str, Any]) -> None:
        if loop.messages is self.history:
            self._append(message)
        else:
            loop.messages.append(message)

    def _append(self, message: dict[str, Any]) -> None:
        self.history.append(message)
        self._prune()

    def _prune(self) -> None:
        before, after, dropped = prune(self.history, self.config.params.max_history_tokens)
        if dropped:
            self.emit("history_pruned", tokens_before=before, tokens_after=after, dropped_count=dropped)

    # -- global_data (called by the control when an action changes it) -------------------------
    def change_global_data(self, updates: dict[str, Any], removed: list[str]) -> None:
        changes: list[dict[str, Any]] = []
        for key, value in updates.items():
            changes.append({"key": key, "old_value": self.global_data.get(key), "new_value": value})
            self.global_data[key] = value
        for key in removed:
            if key in self.global_data:
                changes.append({"key": key, "old_value": self.global_data.pop(key), "new_value": None})
        for fields in changes:
            if self._deferred is not None:
                self._deferred.append(fields)
            else:
                self.emit("global_data_change", **fields)
        if self.on_global_data is not None:
            self.on_global_data(self.global_data)


@dataclass(frozen=True)
class _Ran:
    """A tool call the runner answered: its outcome and the global_data changes its actions made."""

    outcome: ToolOutcome
    deferred: list[dict[str, Any]]


_SKIPPED = "skipped"


class _LoopHooks(ToolLoopHooks):
    """The sidecar's side of the shared tool loop: events, throttle, guards, skip, actions."""

    def __init__(self, engine: SidecarEngine, loop: _Loop, valid: list[str]) -> None:
        self.engine = engine
        self.loop = loop
        self.valid = valid

    async def before_request(self, round_: int, messages: list[dict[str, Any]]) -> None:
        engine = self.engine
        engine.emit(
            "request",
            model=engine.settings.model,
            iter=round_,
            messages_count=len(messages),
            messages_token_count=estimate_tokens(messages),
            tool_choice="auto",
            **engine._by(self.loop),
        )
        await engine._before_llm(messages)

    def on_response(self, round_: int, completion: Completion) -> None:
        self.engine._count_out(completion)

    def llm_failed(self, round_: int, exc: Exception) -> bool:
        if not isinstance(exc, LlmError):
            return False
        self.engine.emit(
            "error", error_reason=f"llm_{exc.kind}", detail=str(exc), iter=round_, **self.engine._by(self.loop)
        )
        return True

    async def before_tools(self, round_: int, completion: Completion) -> None:
        if completion.text.strip():
            self.engine.emit("thought", text=completion.text.strip(), iter=round_, **self.engine._by(self.loop))

    def on_message(self, message: dict[str, Any]) -> None:
        if self.loop.messages is self.engine.history:
            self.engine._prune()

    async def run_tool(self, round_: int, call: ToolCallRequested) -> ToolAnswer:
        engine, loop = self.engine, self.loop
        if call.name == SKIP_TOOL and loop.mode == "tick":
            # The skip event is the audit record; no tool_call/tool_result for the built-in.
            return ToolAnswer("Skipped.", stop=True, detail=_SKIPPED)
        engine.emit("tool_call", name=call.name, arguments=call.arguments, iter=round_, **engine._by(loop))
        verdict = loop.guards.check(call.name, call.arguments, self.valid)
        if verdict.verdict is not Verdict.RUN:
            return self._answer(round_, call, verdict.response, stop=verdict.verdict is Verdict.BAIL, detail=verdict)
        engine._deferred = []  # global_data_change events follow the action events that caused them
        try:
            outcome = await engine._invoke(call, round_, loop)
        finally:
            deferred, engine._deferred = engine._deferred, None
        return self._answer(round_, call, outcome.response or "", detail=_Ran(outcome, deferred))

    def _answer(
        self, round_: int, call: ToolCallRequested, response: str, *, detail: Any, stop: bool = False
    ) -> ToolAnswer:
        self.engine.emit("tool_result", name=call.name, response=response, iter=round_, **self.engine._by(self.loop))
        return ToolAnswer(response, stop=stop, detail=detail)

    def after_tool(self, round_: int, call: ToolCallRequested, answer: ToolAnswer) -> None:
        engine, detail = self.engine, answer.detail
        if detail == _SKIPPED:
            engine.stats.skips += 1
            engine.emit("skip", reason=_skip_reason(call.arguments), iter=round_)
        elif isinstance(detail, GuardVerdict) and detail.verdict is Verdict.BAIL:
            engine.emit(
                "error",
                error_reason=detail.reason,
                detail=_guard_detail(detail.reason, self.loop.guards),
                iter=round_,
                **engine._by(self.loop),
            )
        elif isinstance(detail, _Ran):
            for action in detail.outcome.actions:
                engine._action_event(action, call.name)
            for fields in detail.deferred:
                engine.emit("global_data_change", **fields)

    def stopped(self) -> bool:
        return not self.engine.running or self.engine._closing


def _skip_reason(arguments: str) -> str:
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return ""
    return str(parsed.get("reason", "")) if isinstance(parsed, dict) else ""


def _guard_detail(reason: str, guards: ToolGuards) -> str:
    if reason == "phantom_tool":
        return f"{guards.phantoms} calls to tools that do not exist in one tick"
    if guards.calls > guards.max_calls:
        return f"more than {guards.max_calls} tool calls in one tick"
    return f"the same tool with the same arguments {guards.repeats + 1} times in a row"
