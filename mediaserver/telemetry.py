"""OpenTelemetry traces of the AI agent's caller turns, built from the calls' event logs.

Theory of operation: like `mediaserver.metrics`, this module adds no timer to the media path or
the AI session. `TurnTracer.observe(call_id, entry)` listens to every call's events on the
kernel's event bus (the app wires it, kind "log", only when `[telemetry] otlp_endpoint` is set)
and turns each caller turn into one trace: a `turn` span with child spans, all with the call id
(`mediaserver.call_id`) and the turn number (`mediaserver.turn`). Spans are created after the
fact with the events' own log times (`ts`), so their start and end are what the log says:

* `turn`: the caller's speech onset (`turn_speech_started`, moved back to its first voiced
  sample) to the agent's first frame of the answer (`turn_first_agent_frame`); it ends early as
  `discarded` (the utterance was noise), `superseded` (the caller spoke again after the endpoint
  before any answer was heard), or with the AI session or the call;
* `endpoint`: the caller's last voiced sample to the endpoint decision (media clock);
* `asr`: the caller's speech end to the final transcript (one per final the session computed);
* `llm`: the request (after the transcript and, unless the reply was preemptive, the endpoint)
  to the first text token; a tool round before any text is part of it;
* `tool <name>`: `tool_invoked` to the next tool call, the reply's first token, or the end of
  the turn: the event log has no "tool returned" event, so a tool's span also holds the next LLM
  round up to its first token (`tool_failed` ends it with an error status);
* `tts`: the first token to the reply's first synthesized chunk.

Barge-ins (`barge_paused/resumed/flushed`) are span events on the open turn. Replies that answer
no caller turn (the greeting, attention prompts) are not traced.

The OpenTelemetry SDK and its OTLP HTTP exporter are an optional extra
(`pip install 'voice-mediaserver[telemetry]'`), imported only by `otlp_telemetry`, so the server
runs without them when the endpoint is empty; with an endpoint and no SDK, `TelemetryUnavailable`
says so. Spans are exported by the SDK's batch processor, on its own thread, never on the loop.
This module imports only the standard library and `mediaserver.rates` (the layer of metrics).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mediaserver.rates import PIPELINE_RATE

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = ["MISSING", "SERVICE_NAME", "Telemetry", "TelemetryUnavailable", "TurnTracer", "otlp_telemetry", "traces_url"]

CALLER_RATE = PIPELINE_RATE  # Hz: the media clock that `caller_sample` counts
SERVICE_NAME = "voice-mediaserver"
MAX_TRACKED_CALLS = 2000  # calls whose end we never saw are dropped oldest first (their spans ended)
MISSING = (
    "otlp_endpoint set but opentelemetry is not installed: "
    "pip install 'voice-mediaserver[telemetry]', or leave [telemetry] otlp_endpoint empty"
)


class TelemetryUnavailable(RuntimeError):
    """`[telemetry] otlp_endpoint` is set but the OpenTelemetry SDK or exporter is missing."""


def traces_url(endpoint: str) -> str:
    """The OTLP HTTP traces URL: a bare collector address gets the standard `/v1/traces` path."""
    endpoint = endpoint.strip()
    if urlsplit(endpoint).path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def _ns(ts: float) -> int:
    return int(round(ts * 1e9))


@dataclass
class _Turn:
    span: Span
    number: int
    start_ts: float
    speech_end_ts: float | None = None  # the last `turn_speech_ended`
    speech_ends: dict[int, float] = field(default_factory=dict)  # caller_sample -> its log time
    asr_ts: float | None = None  # the last final transcript
    endpoint: dict[str, Any] | None = None  # the `turn_endpoint` entry
    llm: Span | None = None
    llm_done: bool = False
    first_token_ts: float | None = None
    tool: Span | None = None
    tool_name: str = ""
    tool_ts: float | None = None  # the last `tool_invoked`
    tts_done: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)  # the call id and turn number, on every span


@dataclass
class _CallTurns:
    turns: int = 0
    open: _Turn | None = None


class TurnTracer:
    """Folds call events into spans (see the module doc). `observe` is an event-bus listener."""

    def __init__(self, tracer: Tracer, max_calls: int = MAX_TRACKED_CALLS) -> None:
        from opentelemetry import trace  # the API (a dependency of the SDK), imported when tracing

        self._trace = trace
        self.tracer = tracer
        self.max_calls = max_calls
        self._calls: OrderedDict[str, _CallTurns] = OrderedDict()

    def observe(self, call_id: str, entry: dict[str, Any]) -> None:
        name = entry.get("event", "")
        ts = entry.get("ts")
        if not isinstance(ts, float | int):
            return
        ts = float(ts)
        if name in ("call_ended", "ai_finished"):
            state = self._calls.pop(call_id, None) if name == "call_ended" else self._calls.get(call_id)
            if state is not None and state.open is not None:
                self._end_turn(state, ts, name)
            return
        if not name.startswith(("turn_", "barge_", "tool_")):
            return
        state = self._calls.get(call_id)
        if state is None:
            if name not in ("turn_speech_started", "turn_speech_ended", "turn_endpoint"):
                return  # a reply that answers no caller turn (greeting, nudge)
            state = self._calls[call_id] = _CallTurns()
            while len(self._calls) > self.max_calls:
                _, dropped = self._calls.popitem(last=False)
                if dropped.open is not None:
                    self._end_turn(dropped, ts, "untracked")
        handler = getattr(self, "_" + name, None)
        if handler is not None:
            handler(call_id, state, entry, ts)

    def close(self, ts: float | None = None) -> None:
        """End every open span (the server stops)."""
        now = time.time() if ts is None else ts
        for state in self._calls.values():
            if state.open is not None:
                self._end_turn(state, now, "stopped")
        self._calls.clear()

    # -- spans -----------------------------------------------------------------------------------
    def _child(self, turn: _Turn, name: str, start: float, parent: Span | None = None, **attrs: Any) -> Span:
        context = self._trace.set_span_in_context(parent if parent is not None else turn.span)
        attributes = {**turn.attrs, **{k: v for k, v in attrs.items() if v is not None}}
        return self.tracer.start_span(name, context=context, start_time=_ns(start), attributes=attributes)

    def _open_turn(self, call_id: str, state: _CallTurns, start: float) -> _Turn:
        state.turns += 1
        attrs: dict[str, Any] = {"mediaserver.call_id": call_id, "mediaserver.turn": state.turns}
        span = self.tracer.start_span("turn", start_time=_ns(start), attributes=attrs)
        turn = _Turn(span=span, number=state.turns, start_ts=start, attrs=attrs)
        state.open = turn
        return turn

    def _end_turn(self, state: _CallTurns, ts: float, outcome: str) -> None:
        turn, state.open = state.open, None
        if turn is None:
            return
        self._end_tool(turn, ts)
        if turn.llm is not None:
            turn.llm.set_attribute("mediaserver.llm.first_token", False)
            turn.llm.end(_ns(max(ts, turn.start_ts)))
            turn.llm = None
        turn.span.set_attribute("mediaserver.turn.outcome", outcome)
        turn.span.end(_ns(max(ts, turn.start_ts)))

    def _end_tool(self, turn: _Turn, ts: float) -> None:
        if turn.tool is not None:
            turn.tool.end(_ns(max(ts, turn.tool_ts or ts)))
            turn.tool = None

    def _span(self, turn: _Turn, name: str, start: float, end: float, **attrs: Any) -> None:
        span = self._child(turn, name, min(start, end), **attrs)
        span.end(_ns(end))

    def _llm_start(self, turn: _Turn, ts: float) -> float:
        endpoint = turn.endpoint
        at = [turn.asr_ts]
        if endpoint is not None and not endpoint.get("preemptive"):
            at.append(float(endpoint["ts"]))
        known = [t for t in at if t is not None]
        return min(max(known) if known else turn.start_ts, ts)

    def _ensure_llm(self, turn: _Turn, ts: float) -> None:
        if turn.llm is None and not turn.llm_done:
            turn.llm = self._child(turn, "llm", self._llm_start(turn, ts))

    # -- events ----------------------------------------------------------------------------------
    def _turn_speech_started(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        turn = state.open
        if turn is not None and turn.endpoint is None:
            return  # the caller went on after a pause: the same turn
        if turn is not None:
            self._end_turn(state, ts, "superseded")
        onset, decided = entry.get("caller_sample"), entry.get("decided_at")
        lead = (decided - onset) / CALLER_RATE if isinstance(onset, int) and isinstance(decided, int) else 0.0
        self._open_turn(call_id, state, ts - max(0.0, lead))

    def _turn_speech_ended(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        turn = state.open or self._open_turn(call_id, state, ts)
        turn.speech_end_ts = ts
        sample = entry.get("caller_sample")
        if isinstance(sample, int):
            turn.speech_ends[sample] = ts

    def _turn_asr_final(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        turn = state.open
        if turn is None:
            return
        start = turn.speech_ends.get(entry.get("caller_sample", -1), turn.speech_end_ts or ts)
        text = str(entry.get("text", ""))
        self._span(
            turn, "asr", start, ts, **{"mediaserver.asr.chars": len(text), "mediaserver.asr.words": len(text.split())}
        )
        turn.asr_ts = ts

    def _turn_endpoint(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        sample, end = entry.get("caller_sample"), entry.get("speech_end")
        waited = (sample - end) / CALLER_RATE if isinstance(sample, int) and isinstance(end, int) else 0.0
        turn = state.open
        if turn is None or turn.endpoint is not None:
            if turn is not None:
                self._end_turn(state, ts, "superseded")
            turn = self._open_turn(call_id, state, ts - max(0.0, waited))
        turn.endpoint = entry
        attrs = {"mediaserver.endpoint.reason": entry.get("reason"), "mediaserver.preemptive": entry.get("preemptive")}
        self._span(turn, "endpoint", ts - max(0.0, waited), ts, **attrs)
        for key, value in attrs.items():
            if value is not None:
                turn.span.set_attribute(key, value)

    def _turn_discarded(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        turn = state.open
        if turn is not None and turn.endpoint is None:
            turn.span.set_attribute("mediaserver.turn.discard_reason", str(entry.get("reason", "")))
            self._end_turn(state, ts, "discarded")

    def _tool_invoked(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        turn = state.open
        if turn is None:
            return
        self._end_tool(turn, ts)
        self._ensure_llm(turn, ts)
        name = str(entry.get("name", ""))
        turn.tool = self._child(turn, f"tool {name}", ts, parent=turn.llm, **{"gen_ai.tool.name": name})
        turn.tool_name, turn.tool_ts = name, ts

    def _tool_failed(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        turn = state.open
        if turn is None or turn.tool is None:
            return
        error = str(entry.get("error", ""))
        turn.tool.set_status(self._trace.Status(self._trace.StatusCode.ERROR, error))
        turn.tool.set_attribute("error.type", error[:200])
        self._end_tool(turn, ts)

    def _turn_llm_first_token(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        turn = state.open
        if turn is None or turn.llm_done:
            return
        self._end_tool(turn, ts)
        self._ensure_llm(turn, ts)
        assert turn.llm is not None
        turn.llm.set_attribute("mediaserver.llm.first_token", True)
        turn.llm.end(_ns(ts))
        turn.llm, turn.llm_done, turn.first_token_ts = None, True, ts

    def _turn_tts_synthesized(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        turn = state.open
        if turn is None or turn.tts_done:
            return
        turn.tts_done = True
        start = turn.first_token_ts or turn.tool_ts or self._llm_start(turn, ts)
        self._span(turn, "tts", start, ts, **{"mediaserver.tts.held": entry.get("held")})

    def _turn_tts_first_audio(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        if state.open is not None:
            state.open.span.add_event("tts_first_audio", timestamp=_ns(ts))

    def _turn_first_agent_frame(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        turn = state.open
        if turn is None or turn.endpoint is None:
            return
        sample, end = entry.get("caller_sample"), turn.endpoint.get("speech_end")
        if isinstance(sample, int) and isinstance(end, int):
            turn.span.set_attribute("mediaserver.voice_to_voice_ms", round((sample - end) * 1000 / CALLER_RATE, 1))
        self._end_turn(state, ts, "answered")

    def _barge(self, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        if state.open is not None:
            attrs = {k: v for k, v in entry.items() if k in ("caller_sample", "cursor", "heard_words", "total_words")}
            state.open.span.add_event(entry["event"], attributes=attrs, timestamp=_ns(ts))

    def _barge_paused(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        self._barge(state, entry, ts)

    def _barge_resumed(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        self._barge(state, entry, ts)

    def _barge_flushed(self, call_id: str, state: _CallTurns, entry: dict[str, Any], ts: float) -> None:
        self._barge(state, entry, ts)


class Telemetry:
    """A tracer provider with one span processor, and the turn tracer on it."""

    def __init__(self, processor: SpanProcessor, service_name: str = SERVICE_NAME) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        self.provider: TracerProvider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(processor)
        self.turns = TurnTracer(self.provider.get_tracer("mediaserver.telemetry"))

    def observe(self, call_id: str, entry: dict[str, Any]) -> None:
        self.turns.observe(call_id, entry)

    def shutdown(self) -> None:
        """End open turns, flush and stop the exporter (blocking: run it off the event loop)."""
        self.turns.close()
        self.provider.shutdown()


def otlp_telemetry(endpoint: str, service_name: str = SERVICE_NAME) -> Telemetry:
    """Turn traces exported to an OTLP HTTP collector (`http://host:4318` or a full traces URL)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise TelemetryUnavailable(MISSING) from exc
    return Telemetry(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))), service_name)
