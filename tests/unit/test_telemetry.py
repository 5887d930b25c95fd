"""OpenTelemetry turn traces (mediaserver/telemetry.py): span structure from call events on the
kernel's event bus, the OTLP HTTP export, the [telemetry] setting and a missing SDK."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from mediaserver import app
from mediaserver.events import (
    BargePaused,
    CallEnded,
    CallEvent,
    ToolFailed,
    ToolInvoked,
    TurnAsrFinal,
    TurnDiscarded,
    TurnEndpoint,
    TurnFirstAgentFrame,
    TurnLlmFirstToken,
    TurnSpeechEnded,
    TurnSpeechStarted,
    TurnTtsFirstAudio,
    TurnTtsSynthesized,
)
from mediaserver.kernel.eventbus import LOG, EventBus
from mediaserver.settings import ConfigError, load_settings
from mediaserver.telemetry import MISSING, Telemetry, TelemetryUnavailable, otlp_telemetry, traces_url

NS = 1_000_000_000


class Traced:
    """A Telemetry on an in-memory exporter, listening to a bus as the app wires it."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.telemetry = Telemetry(SimpleSpanProcessor(self.exporter))
        self.bus = EventBus()
        self.bus.listen(lambda e: self.telemetry.observe(e.call_id, e.data), kinds=[LOG])

    def emit(self, call_id: str, ts: float, event: CallEvent) -> None:
        self.bus.publish_call_event(call_id, event, event.to_dict(ts))

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> ReadableSpan:
        (span,) = [s for s in self.spans() if s.name == name]
        return span


def at(span: ReadableSpan) -> tuple[float, float]:
    assert span.start_time is not None and span.end_time is not None
    return round(span.start_time / NS, 3), round(span.end_time / NS, 3)


def one_turn(t: Traced, call: str = "call-1", base: float = 100.0) -> None:
    """Speech 1 s..3 s of the caller's clock, a tool call, an answer heard 1.5 s after speech end."""
    t.emit(call, base, TurnSpeechStarted(caller_sample=16000, decided_at=19200))  # onset 0.2 s earlier
    t.emit(call, base + 2.0, TurnSpeechEnded(caller_sample=48000))
    t.emit(call, base + 2.3, TurnAsrFinal(caller_sample=48000, text="book a table"))
    t.emit(call, base + 2.5, TurnEndpoint(caller_sample=56000, speech_end=48000, reason="silence", preemptive=False))
    t.emit(call, base + 3.0, ToolInvoked(name="lookup"))
    t.emit(call, base + 3.8, TurnLlmFirstToken())
    t.emit(call, base + 4.0, TurnTtsSynthesized(held=False))
    t.emit(call, base + 4.01, TurnTtsFirstAudio(start_mark=0))
    t.emit(call, base + 4.2, TurnFirstAgentFrame(cursor=160, caller_sample=72000))


def test_a_turn_is_one_trace_with_asr_endpoint_llm_tool_and_tts_spans() -> None:
    t = Traced()
    one_turn(t)
    turn = t.named("turn")
    assert at(turn) == (99.8, 104.2)
    assert turn.parent is None
    assert turn.attributes is not None
    assert turn.attributes["mediaserver.call_id"] == "call-1"
    assert turn.attributes["mediaserver.turn"] == 1
    assert turn.attributes["mediaserver.turn.outcome"] == "answered"
    assert turn.attributes["mediaserver.voice_to_voice_ms"] == 1500.0  # (72000 - 48000) / 16 kHz
    assert turn.attributes["mediaserver.endpoint.reason"] == "silence"
    assert [e.name for e in turn.events] == ["tts_first_audio"]

    assert at(t.named("asr")) == (102.0, 102.3)
    assert at(t.named("endpoint")) == (102.0, 102.5)  # 8000 samples before the decision
    llm = t.named("llm")
    assert at(llm) == (102.5, 103.8)  # after the endpoint and the transcript, to the first token
    tool = t.named("tool lookup")
    assert at(tool) == (103.0, 103.8)
    assert tool.attributes is not None and tool.attributes["gen_ai.tool.name"] == "lookup"
    assert at(t.named("tts")) == (103.8, 104.0)

    ids = {s.name: s.context.span_id for s in t.spans() if s.context is not None}
    parents = {s.name: s.parent.span_id if s.parent else None for s in t.spans()}
    assert parents == {
        "asr": ids["turn"],
        "endpoint": ids["turn"],
        "llm": ids["turn"],
        "tool lookup": ids["llm"],  # the tool round is inside the LLM's way to its first token
        "tts": ids["turn"],
        "turn": None,
    }
    assert len({s.context.trace_id for s in t.spans() if s.context is not None}) == 1
    for span in t.spans():
        assert span.attributes is not None and span.attributes["mediaserver.call_id"] == "call-1", span.name
    assert t.telemetry.provider.resource.attributes["service.name"] == "voice-mediaserver"


def test_a_preemptive_reply_starts_its_llm_span_at_the_transcript() -> None:
    t = Traced()
    t.emit("c", 10.0, TurnSpeechStarted(caller_sample=0, decided_at=0))
    t.emit("c", 11.0, TurnSpeechEnded(caller_sample=16000))
    t.emit("c", 11.2, TurnAsrFinal(caller_sample=16000, text="hi"))
    t.emit("c", 11.5, TurnLlmFirstToken())
    t.emit("c", 11.7, TurnTtsSynthesized(held=True))
    t.emit("c", 12.0, TurnEndpoint(caller_sample=32000, speech_end=16000, reason="silence", preemptive=True))
    t.emit("c", 12.02, TurnFirstAgentFrame(cursor=160, caller_sample=32320))
    assert at(t.named("llm")) == (11.2, 11.5)
    tts = t.named("tts")
    assert at(tts) == (11.5, 11.7)
    assert tts.attributes is not None and tts.attributes["mediaserver.tts.held"] is True
    turn = t.named("turn")
    assert turn.attributes is not None and turn.attributes["mediaserver.preemptive"] is True
    assert at(turn) == (10.0, 12.02)


def test_turns_calls_failures_discards_and_barge_ins() -> None:
    t = Traced()
    one_turn(t, "a", 100.0)
    one_turn(t, "b", 100.5)  # another call at the same time: its own trace, its own numbering
    # call a, turn 2: the caller barges in, a tool fails, then the call ends
    t.emit("a", 110.0, TurnSpeechStarted(caller_sample=200000, decided_at=200000))
    t.emit("a", 110.1, BargePaused(caller_sample=201600, cursor=8000))
    t.emit("a", 111.0, TurnSpeechEnded(caller_sample=216000))
    t.emit("a", 111.3, TurnEndpoint(caller_sample=220000, speech_end=216000, reason="silence", preemptive=False))
    t.emit("a", 111.4, ToolInvoked(name="transfer"))
    t.emit("a", 111.9, ToolFailed(name="transfer", error="boom"))
    t.emit("a", 112.0, CallEnded(cause="normal", packets_in=1, packets_out=1))
    # call b, turn 2: noise, discarded before any endpoint
    t.emit("b", 120.0, TurnSpeechStarted(caller_sample=300000, decided_at=300000))
    t.emit("b", 120.2, TurnSpeechEnded(caller_sample=303200))
    t.emit("b", 120.4, TurnDiscarded(caller_sample=300000, reason="too_short"))

    turns = [s for s in t.spans() if s.name == "turn"]
    outcome = {
        (s.attributes["mediaserver.call_id"], s.attributes["mediaserver.turn"]): s.attributes[
            "mediaserver.turn.outcome"
        ]
        for s in turns
        if s.attributes is not None
    }
    assert outcome == {("a", 1): "answered", ("b", 1): "answered", ("a", 2): "call_ended", ("b", 2): "discarded"}
    assert len({s.context.trace_id for s in turns if s.context is not None}) == 4

    (barged,) = [s for s in turns if s.attributes and s.attributes["mediaserver.turn"] == 2 and s.events]
    assert [(e.name, dict(e.attributes or {})) for e in barged.events] == [
        ("barge_paused", {"caller_sample": 201600, "cursor": 8000})
    ]
    failed = t.named("tool transfer")
    assert failed.status.status_code is StatusCode.ERROR and failed.status.description == "boom"
    assert at(failed) == (111.4, 111.9)
    unanswered = [
        s for s in t.spans() if s.name == "llm" and s.attributes and s.attributes["mediaserver.call_id"] == "a"
    ]
    assert [s.attributes["mediaserver.llm.first_token"] for s in unanswered if s.attributes] == [True, False]


def test_replies_outside_a_caller_turn_are_not_traced() -> None:
    t = Traced()
    t.emit("g", 1.0, TurnLlmFirstToken())  # the greeting
    t.emit("g", 1.1, ToolInvoked(name="x"))
    t.emit("g", 1.2, TurnTtsSynthesized(held=False))
    t.emit("g", 1.4, TurnFirstAgentFrame(cursor=160, caller_sample=100))
    assert t.spans() == []


def test_shutdown_ends_the_open_turn() -> None:
    t = Traced()
    t.emit("s", 5.0, TurnSpeechStarted(caller_sample=0, decided_at=0))
    assert t.spans() == []
    t.telemetry.shutdown()
    (turn,) = t.spans()
    assert turn.attributes is not None and turn.attributes["mediaserver.turn.outcome"] == "stopped"


def test_traces_url() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("https://x.example/otlp/v1/traces") == "https://x.example/otlp/v1/traces"


async def test_otlp_endpoint_receives_the_turn_as_protobuf(monkeypatch: pytest.MonkeyPatch) -> None:
    for proxy in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(proxy, "127.0.0.1")  # the exporter's HTTP client honours proxy settings
    received: list[tuple[str, str, bytes]] = []

    async def traces(request: web.Request) -> web.Response:
        received.append((request.path, request.content_type, await request.read()))
        return web.Response(status=200)

    server = web.Application()
    server.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        telemetry = otlp_telemetry(f"http://127.0.0.1:{port}")
        t = Traced()
        t.bus.listen(lambda e: telemetry.observe(e.call_id, e.data), kinds=[LOG])
        one_turn(t, "call-otlp")
        await asyncio.to_thread(telemetry.shutdown)  # flushes the batch: one POST
    finally:
        await runner.cleanup()

    assert received, "the collector got no POST"
    path, content_type, body = received[0]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: dict[str, dict[str, Any]] = {}
    for resource_spans in request.resource_spans:
        resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
        assert resource["service.name"] == "voice-mediaserver"
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                attrs = {kv.key: kv.value for kv in span.attributes}
                spans[span.name] = {"call": attrs["mediaserver.call_id"].string_value, "parent": span.parent_span_id}
    assert set(spans) == {"turn", "asr", "endpoint", "llm", "tool lookup", "tts"}
    assert {s["call"] for s in spans.values()} == {"call-otlp"}
    assert spans["turn"]["parent"] == b""


def test_the_setting_and_its_environment_variable() -> None:
    assert load_settings(environ={}).telemetry.otlp_endpoint == ""
    assert load_settings(environ={"MS_OTLP_ENDPOINT": "http://c:4318"}).telemetry.otlp_endpoint == "http://c:4318"
    with pytest.raises(ConfigError, match="telemetry.otlp_endpoint"):
        load_settings(environ={}, overrides={"telemetry.otlp_endpoint": "collector:4318"})


def test_without_the_sdk_an_empty_endpoint_starts_and_a_set_one_names_the_missing_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [m for m in sys.modules if m.startswith("opentelemetry")] + ["opentelemetry"]:
        monkeypatch.setitem(sys.modules, name, None)  # every `import opentelemetry...` now fails
    assert app.start_telemetry(load_settings(environ={})) is None
    with pytest.raises(TelemetryUnavailable, match="opentelemetry is not installed"):
        otlp_telemetry("http://127.0.0.1:4318")
    settings = load_settings(environ={"MS_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    with pytest.raises(app.StartupError) as error:
        app.start_telemetry(settings)
    assert str(error.value) == MISSING
    assert str(error.value).startswith("otlp_endpoint set but opentelemetry is not installed")
