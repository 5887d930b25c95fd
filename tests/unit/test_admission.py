"""Admission control (kernel/admission.py): the limits, the AI reservations, the 503 with
Retry-After from the sans-I/O SIP endpoint, the overflow document on a real executor, the
settings, and the /metrics and /health views."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mediaserver.errors import HangupCause
from mediaserver.kernel.admission import (
    Admission,
    AdmissionLimits,
    AdmittedAiRunner,
    RefusalReason,
    load_overflow,
    uses_ai,
)
from mediaserver.kernel.call import Call
from mediaserver.kernel.executor import SwmlExecutor
from mediaserver.kernel.fetch import swml_call
from mediaserver.kernel.inline import ScriptRegistry
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.services import KernelServices
from mediaserver.kernel.speech import SpeechSynthesizer
from mediaserver.kernel.verbs.registry import kernel_builders
from mediaserver.logs import CallEventLog
from mediaserver.metrics import Metrics
from mediaserver.pipeline.tts import TtsChunk
from mediaserver.settings import ConfigError, load_settings
from mediaserver.swml.document import Document, document_from_data
from mediaserver.swml.effects import Ai, AiFinished
from mediaserver.swml.interpreter import Interpreter
from msconfig import CONFIG_DIR
from mssip.endpoint import SipEndpoint
from mssip.events import InviteReceived
from tests.support.fakes import FakeSignal
from tests.unit.sip.sipkit import PEER, Phone, drain, responses

FRAME_NS = 20_000_000
AI_DOC = document_from_data({"sections": {"main": ["answer", {"ai": {"prompt": {"text": "Be brief."}}}]}})
MEDIA_DOC = document_from_data({"sections": {"main": ["answer", {"play": {"url": "say:hello"}}, "hangup"]}})
# An ai verb only in a branch of another section still makes the route an AI route.
NESTED_AI_DOC = document_from_data(
    {
        "sections": {
            "main": ["answer", {"execute": {"dest": "agent"}}],
            "agent": [{"cond": [{"when": "true", "then": [{"ai": {"prompt": {"text": "Hi."}}}]}]}],
        }
    }
)


# ---- the counts and limits ------------------------------------------------------------------


def test_which_documents_are_ai_routes() -> None:
    assert uses_ai(AI_DOC) and uses_ai(NESTED_AI_DOC)
    assert not uses_ai(MEDIA_DOC)


def test_ai_routes_are_refused_at_capacity_while_media_calls_still_get_in() -> None:
    admission = Admission(AdmissionLimits(ai_capacity=2, max_calls=10, retry_after_s=45))
    assert admission.admit("a1", AI_DOC, front_end="sip") is None
    assert admission.admit("a2", NESTED_AI_DOC, front_end="webrtc") is None
    assert (admission.ai_reserved, admission.ai_sessions, admission.ai_headroom()) == (2, 0, 0)
    refusal = admission.admit("a3", AI_DOC, front_end="sip")
    assert refusal is not None
    assert refusal.reason is RefusalReason.AI_CAPACITY and refusal.retry_after_s == 45
    assert refusal.headers == [("Retry-After", "45")]
    assert refusal.detail == "2 of 2 AI sessions in use"
    assert admission.admit("m1", MEDIA_DOC, front_end="sip") is None  # a media-only call is not an AI call
    assert admission.calls == 3 and admission.refused["ai_capacity"] == 1
    admission.release("a1")  # a call's end frees its slot: the next AI call gets in
    assert admission.admit("a4", AI_DOC, front_end="sip") is None


def test_the_call_limit_counts_every_admitted_call() -> None:
    admission = Admission(AdmissionLimits(ai_capacity=0, max_calls=2))
    assert admission.admit("c1", MEDIA_DOC, front_end="sip") is None
    assert admission.admit("c2", AI_DOC, front_end="sip") is None
    refusal = admission.admit("c3", MEDIA_DOC, front_end="sip")
    assert refusal is not None and refusal.reason is RefusalReason.CALL_LIMIT
    assert refusal.detail == "2 of 2 calls live"
    assert admission.ai_headroom() is None  # ai_capacity 0: no AI limit
    assert admission.snapshot()["state"] == "full"
    admission.release("c1")
    assert admission.call_headroom() == 1 and admission.snapshot()["state"] == "open"


def test_a_reservation_becomes_the_session_and_the_slot_is_given_back_when_ai_ends() -> None:
    admission = Admission(AdmissionLimits(ai_capacity=1))
    assert admission.admit("r1", AI_DOC, front_end="sip") is None
    assert admission.start_ai("r1")  # its own reservation, even with no headroom left
    assert (admission.ai_reserved, admission.ai_sessions) == (0, 1)
    assert not admission.start_ai("stranger")  # reached ai some other way: over capacity
    assert admission.refused["ai_capacity"] == 1
    admission.end_ai("r1")  # the agent ended, the call may go on: the slot is free
    assert admission.ai_headroom() == 1 and admission.calls == 1
    assert admission.start_ai("stranger")


def test_health_snapshot_shows_state_headroom_and_refusals() -> None:
    admission = Admission(AdmissionLimits(ai_capacity=1, max_calls=5, retry_after_s=20))
    admission.admit("x", AI_DOC, front_end="sip")
    admission.admit("y", AI_DOC, front_end="sip")
    admission.note_refusal("z", RefusalReason.RTP_PORTS, "no bindable RTP port left", front_end="sip")
    assert admission.snapshot() == {
        "state": "ai_full",
        "ai_sessions": 0,
        "ai_reserved": 1,
        "ai_capacity": 1,
        "ai_headroom": 0,
        "calls": 1,
        "max_calls": 5,
        "call_headroom": 4,
        "retry_after_s": 20,
        "refused": {"ai_capacity": 1, "call_limit": 0, "rtp_ports": 1},
    }
    assert admission.snapshot(draining=True)["state"] == "draining"


def test_refusals_are_logged_with_the_call_id(caplog: pytest.LogCaptureFixture) -> None:
    admission = Admission(AdmissionLimits(ai_capacity=1))
    admission.admit("first", AI_DOC, front_end="sip")
    with caplog.at_level("WARNING", logger="mediaserver.kernel.admission"):
        admission.admit("second", AI_DOC, front_end="webrtc")
    [record] = caplog.records
    assert record.getMessage() == "call refused"
    assert (record.call_id, record.reason, record.front_end) == ("second", "ai_capacity", "webrtc")  # type: ignore[attr-defined]


# ---- SIP: the 503 with Retry-After, sans I/O --------------------------------------------------


def test_sip_reject_carries_retry_after() -> None:
    ep, phone = SipEndpoint("192.0.2.1", 5060, rng=random.Random(7)), Phone()
    ep.receive_datagram(phone.invite(branch=phone.new_branch()), PEER, 0.0, "udp")
    [event] = drain(ep)
    assert isinstance(event, InviteReceived)
    responses(ep)  # the 100 Trying
    refusal = Admission(AdmissionLimits(ai_capacity=1, retry_after_s=40))
    refusal.admit("busy", AI_DOC, front_end="sip")
    refused = refusal.admit(event.call_id, AI_DOC, front_end="sip")
    assert refused is not None
    ep.reject(event.call_id, 503, "Service Unavailable", 0.5, headers=refused.headers)
    [response] = responses(ep)
    assert response.status == 503 and response.reason == "Service Unavailable"
    assert response.headers.get("Retry-After") == "40"
    assert response.to_addr.tag  # a final response of the dialog-forming INVITE


# ---- settings --------------------------------------------------------------------------------


def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    settings = load_settings(environ={})
    assert (settings.admission.ai_capacity, settings.admission.max_calls) == (12, 300)
    assert settings.admission.retry_after_s == 30 and settings.admission.overflow is None
    env = load_settings(environ={"MS_AI_CAPACITY": "3", "MS_MAX_CALLS": "0"})
    assert (env.admission.ai_capacity, env.admission.max_calls) == (3, 0)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[admission]\noverflow = "swml/overflow.yaml"\nretry_after_s = 90\n')
    settings = load_settings(cfg, environ={})
    assert settings.admission.overflow == CONFIG_DIR / "swml" / "overflow.yaml"
    cfg.write_text('[routes.users]\nbusy = "swml/overflow.yaml"\n\n[admission]\noverflow = "busy"\n')
    assert load_settings(cfg, environ={}).admission.overflow == CONFIG_DIR / "swml" / "overflow.yaml"


def test_bad_admission_settings_name_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[admission]\nai_capacity = -1\n")
    with pytest.raises(ConfigError, match="admission.ai_capacity"):
        load_settings(cfg, environ={})
    cfg.write_text('[admission]\noverflow = "nowhere.yaml"\n')
    with pytest.raises(ConfigError, match="admission.overflow"):
        load_settings(cfg, environ={})


def test_the_bundled_overflow_document_loads() -> None:
    data = load_overflow(CONFIG_DIR / "swml" / "overflow.yaml")
    assert [next(iter(v)) if isinstance(v, dict) else v for v in data["sections"]["main"]] == [
        "answer",
        "play",
        "hangup",
    ]
    url = load_overflow("https://example.com/busy")
    assert url == {"sections": {"main": [{"transfer": {"dest": "https://example.com/busy"}}]}}


# ---- metrics ---------------------------------------------------------------------------------


def test_metrics_expose_refusals_by_reason() -> None:
    admission = Admission(AdmissionLimits(ai_capacity=1))
    admission.admit("a", AI_DOC, front_end="sip")
    admission.admit("b", AI_DOC, front_end="sip")
    metrics = Metrics()
    metrics.labelled_counter("mediaserver_calls_refused", "refused", "reason", lambda: admission.refused)
    text = metrics.render()[0].decode()
    assert 'mediaserver_calls_refused_total{reason="ai_capacity"} 1.0' in text
    assert 'mediaserver_calls_refused_total{reason="call_limit"} 0.0' in text


# ---- the ai verb over capacity, on a real executor -------------------------------------------


class FakeTts:
    sample_rate = 16000
    voice_id = "fake-tone"

    def __init__(self) -> None:
        self.spoken: list[str] = []

    def synthesize(self, text: str) -> Any:
        self.spoken.append(text)
        yield TtsChunk(np.full(800, 2000, dtype=np.int16), 16000, text)


class HoldingAgent:
    """An AiRunner that answers and holds the agent until `release` (a live AI conversation)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.calls: list[str] = []

    async def __call__(self, call: Call, effect: Ai, variables: Mapping[str, Any]) -> AiFinished:
        self.calls.append(call.call_id)
        call.answer()
        self.started.set()
        await self.release.wait()
        return AiFinished(result="success")


def make_call(call_id: str) -> tuple[Call, FakeSignal]:
    signal = FakeSignal()
    media = MediaStream(MediaParams("PCMU", 0, 8000, 101), "t", rng=random.Random(1))
    call = Call(
        call_id,
        from_uri="sip:a@x",
        to_uri="sip:b@y",
        media=media,
        signal=signal,
        send_media=lambda _: None,
        event_log=CallEventLog(call_id),
    )
    return call, signal


async def run_call(call: Call, signal: FakeSignal, document: Document, services: KernelServices) -> None:
    """The call's script with a virtual 20 ms tick, until it hangs up (or 3000 ticks)."""
    executor = SwmlExecutor(Interpreter(document, call=swml_call(call), builders=kernel_builders()), services)

    async def tick() -> None:
        now = 0
        for _ in range(3000):
            if call.ended.is_set():
                return
            now += FRAME_NS
            call.on_tick(now, 0.0)
            if signal.actions[-1:] == ["hangup"]:
                call.signaling_ended("BYE answered")
            await asyncio.sleep(0.001)
        call.hangup(reason="test ran out of ticks")
        call.signaling_ended("test")

    ticker = asyncio.ensure_future(tick())
    try:
        await asyncio.wait_for(call.run(executor.run), 30)
    finally:
        ticker.cancel()


def events_named(call: Call, name: str) -> list[dict[str, Any]]:
    return [e for e in call.events.events if e["event"] == name]


@pytest.mark.parametrize("with_overflow", [True, False])
async def test_ai_over_capacity_gets_the_overflow_document_or_a_busy_hangup(with_overflow: bool) -> None:
    admission = Admission(AdmissionLimits(ai_capacity=1))
    agent, scripts, tts = HoldingAgent(), ScriptRegistry(), FakeTts()
    overflow = load_overflow(CONFIG_DIR / "swml" / "overflow.yaml") if with_overflow else None
    pool = ThreadPoolExecutor(1)
    services = KernelServices(
        SpeechSynthesizer(tts, pool),
        pool,
        ai_runner=AdmittedAiRunner(agent, admission, scripts, overflow),
        scripts=scripts,
    )
    first, first_signal = make_call("first")
    live = asyncio.ensure_future(run_call(first, first_signal, AI_DOC, services))
    await asyncio.wait_for(agent.started.wait(), 5)
    assert admission.ai_sessions == 1

    # A call whose document did not reserve a slot (a fetched or transferred document) reaches ai.
    second, second_signal = make_call("second")
    await run_call(second, second_signal, AI_DOC, services)
    assert agent.calls == ["first"]  # no agent was started for it
    [over] = events_named(second, "ai_over_capacity")
    assert (over["ai_sessions"], over["ai_capacity"], over["overflow"]) == (1, 1, with_overflow)
    if with_overflow:
        assert tts.spoken == ["Sorry, all our agents are busy right now. Please call again in a few minutes. Goodbye."]
        assert second.cause is HangupCause.USER_BUSY  # the overflow document's `hangup: busy`
        assert "answer" in second_signal.actions
    else:
        assert tts.spoken == []
        assert second.cause is HangupCause.USER_BUSY
    assert admission.refused["ai_capacity"] == 1

    agent.release.set()  # the live conversation ends: its slot is given back
    await asyncio.wait_for(live, 10)
    assert admission.ai_sessions == 0 and admission.ai_headroom() == 1
    pool.shutdown(wait=False)
