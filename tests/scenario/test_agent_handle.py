"""The per-call agent handle (kernel/agent.py) and the kernel's services given at construction.

The AI session is reached from outside only through its `AgentHandle` in the kernel's
`AgentRegistry`: say, user_input, hangup, status, a history copy, and conversation events that
the WebRTC page turns into transcript lines as they are appended (no polling).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mediaserver.kernel.agent import AgentEvent, AgentRegistry, Conversation
from mediaserver.kernel.registry import Kernel
from mediaserver.kernel.services import DialerPort, DialResult, KernelServices, NoDialer
from tests.scenario.ai_fakes import Scenario, ScriptedLlm, drain, tone
from tests.scenario.test_swml_executor import Harness
from tests.unit.sidecar.fakes import make_call

GREETING = "one two three four five six seven eight nine ten"


def drained(feed: Any) -> list[AgentEvent]:
    events = []
    while (event := feed.get_nowait()) is not None:
        events.append(event)
    return events


async def test_the_handle_reports_appends_and_the_barge_in_cut_and_acts_on_the_session() -> None:
    s = Scenario(
        {"prompt": {"text": "You are a test."}, "params": {"static_greeting": GREETING}},
        llm=ScriptedLlm(["Sure, here it is.", "Hello there."]),
        phrases={500: "wait a moment please"},
    )
    registry = AgentRegistry()
    feed = registry.watch("ai1")  # the page opens before the ai verb starts
    registry.attach(s.session.handle)
    await s.start()
    await s.play(ticks=30)
    await s.play(tone(500, 1000), ticks=60)  # barge-in: the greeting is cut to "one two three"
    events = drained(feed)
    greeting = [e for e in events if e.entry.get("role") == "assistant" and e.kind != "speaking"][:2]
    assert [(e.kind, e.entry["content"]) for e in greeting] == [("added", GREETING), ("updated", "one two three")]
    assert greeting[0].key == greeting[1].key  # the page replaces its line
    # Its words were reported as they were queued, before the entry was added, under its key.
    spoken = [e for e in events if e.kind == "speaking" and e.key == greeting[0].key]
    assert events.index(spoken[-1]) < events.index(greeting[0])
    assert [w for e in spoken for w, _ in e.entry["words"]] == GREETING.split()
    assert ("added", {"role": "user", "content": "wait a moment please"}) in [(e.kind, e.entry) for e in events]

    handle = registry.get("ai1")
    assert handle is s.session.handle
    snapshot = handle.history()
    snapshot[0]["content"] = "changed by the reader"
    snapshot.append({"role": "user", "content": "not in the session"})
    assert s.session.history[0] == {"role": "assistant", "content": "one two three"}
    assert len(s.session.history) == len(handle.history())

    handle.user_input("typed by the operator")
    await s.play(ticks=5)
    added = [e.entry for e in drained(feed) if e.kind == "added"]
    assert added[0] == {"role": "user", "content": "typed by the operator"}
    status = handle.status()
    assert (status["kind"], status["call_id"], status["finished"]) == ("ai", "ai1", False)
    assert status["user_turns"] == 2 and status["entries"] == len(s.session.history)

    handle.hangup("operator")
    await s.finish()
    assert s.call.is_over and handle.status()["finished"]
    registry.detach(handle)
    assert "ai1" not in registry and registry.get("ai1") is None
    feed.close()


async def test_a_late_watcher_gets_the_conversation_so_far_then_each_append() -> None:
    conversation = Conversation("c1", [{"role": "system", "content": "be brief"}])
    handle = SimpleNamespace(
        call_id="c1",
        history=conversation.snapshot,
        subscribe=conversation.subscribe,
    )
    registry = AgentRegistry()
    registry.attach(handle)  # type: ignore[arg-type]
    conversation.append({"role": "assistant", "content": "Hi."})
    feed = registry.watch("c1")
    assert [(e.kind, e.entry["content"]) for e in drained(feed)] == [("added", "be brief"), ("added", "Hi.")]
    conversation.append({"role": "user", "content": "Bye."})
    conversation.remove(conversation[0])
    assert [(e.kind, e.entry["content"]) for e in drained(feed)] == [("added", "Bye."), ("removed", "be brief")]
    registry.detach(handle)  # type: ignore[arg-type]
    conversation.append({"role": "assistant", "content": "after the agent left"})
    assert drained(feed) == []
    feed.close()
    with pytest.raises(TypeError):
        conversation[0] = {}


async def test_the_webrtc_page_gets_agent_lines_pushed_from_the_feed() -> None:
    from mediaserver.signaling.webrtc import _Session

    class Channel:
        readyState = "open"

        def __init__(self) -> None:
            self.sent: list[dict[str, Any]] = []

        def send(self, text: str) -> None:
            self.sent.append(json.loads(text))

    registry = AgentRegistry()
    conversation = Conversation("w1")
    handle = SimpleNamespace(call_id="w1", history=conversation.snapshot, subscribe=conversation.subscribe)
    session = _Session(SimpleNamespace(), "w1", "default", None)  # type: ignore[arg-type]
    session.channel = channel = Channel()  # type: ignore[assignment]
    session.agent_feed = registry.watch("w1")
    task = asyncio.ensure_future(session.forward_agent(session.agent_feed))
    registry.attach(handle)  # type: ignore[arg-type]
    entry = {"role": "assistant", "content": "one two three four"}
    conversation.append({"role": "user", "content": "hello"})
    conversation.append(entry)
    await drain()
    entry["content"] = "one two"
    conversation.updated(entry)
    conversation.append({"role": "assistant", "content": "last words"})  # queued, not yet forwarded
    session.flush_agent()  # the call ended: what the feed holds still goes out
    lines = [(m["text"], m["update"]) for m in channel.sent if m["type"] == "transcript"]
    assert lines == [("one two three four", False), ("one two", True), ("last words", False)]
    assert channel.sent[0]["key"] == channel.sent[1]["key"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_the_kernel_gets_its_services_once_and_the_dialer_is_bound_once() -> None:
    calls: list[str] = []

    class Dialer(NoDialer):
        async def refer(self, call: Any, to_uri: str) -> int:
            calls.append(to_uri)
            return 202

    def observe(dialer: Any) -> Any:
        calls.append("observed")
        return dialer

    with ThreadPoolExecutor(1) as pool:
        services = KernelServices(None, pool, dialer=DialerPort(observe=observe))  # type: ignore[arg-type]
        kernel = Kernel(None, services, lambda user: Path("x.yaml"))  # type: ignore[arg-type]
        call = make_call()
        # Before the SIP front end binds its dialer the port refuses, as on a server without SIP.
        assert await kernel.dialer.dial(call, "sip:bob@x") == DialResult(False, 0, "unsupported")
        assert await kernel.dialer.refer(call, "sip:bob@x") == 0
        assert [e["verb"] for e in call.events.events if e["event"] == "verb_unsupported"] == ["connect", "sip_refer"]
        kernel.dialer = Dialer()  # what SipFrontEnd does: the one setter
        assert await kernel.dialer.refer(call, "sip:carol@x") == 202
        assert calls == ["observed", "sip:carol@x"]
        with pytest.raises(RuntimeError, match="already bound"):
            kernel.dialer = Dialer()
        assert kernel.agents is services.agents and kernel.events is services.events
        assert kernel.synthesizer is None and kernel.blocking is pool


async def test_ai_verb_without_an_engine_is_logged_and_the_document_goes_on(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    await harness.run({"main": [{"ai": {"prompt": {"text": "x"}}}, {"play": {"url": "say:${ai_result}"}}]})
    assert harness.tts.spoken == ["failed"]
    unsupported = harness.events("verb_unsupported")
    assert [(e["verb"], e["reason"]) for e in unsupported] == [("ai", "no AI engine configured")]
