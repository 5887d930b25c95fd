"""Turn-end detection (pure, time passed in) and the event bus (filters, bounded queues)."""

from __future__ import annotations

import asyncio

from mediaserver.agents.sidecar.turns import TurnDetector
from mediaserver.kernel.eventbus import EventBus


def test_customer_final_then_idle_timeout_ends_the_turn() -> None:
    d = TurnDetector("remote-caller", idle_timeout_ms=200)
    assert d.final("remote-caller", "I want a quote.", 1000) is None
    assert d.deadline_ms == 1200
    assert d.poll(1199) is None
    turn = d.poll(1200)
    assert turn is not None and turn.trigger == "idle_timeout"
    assert turn.customer_text == "I want a quote." and turn.agent_text == ""
    assert d.poll(5000) is None  # fired once


def test_customer_speaking_again_holds_the_turn_open() -> None:
    d = TurnDetector("remote-caller", idle_timeout_ms=200)
    d.final("remote-caller", "Well,", 1000)
    d.speech_started("remote-caller", 1100)
    assert d.deadline_ms is None and d.poll(2000) is None
    d.final("remote-caller", "it's the price.", 2100)
    turn = d.poll(2300)
    assert turn is not None and turn.customer_text == "Well, it's the price."


def test_agent_utterance_while_pending_fires_at_once_with_its_words() -> None:
    d = TurnDetector("remote-caller", idle_timeout_ms=5000)
    d.final("remote-caller", "Is there a discount?", 1000)
    turn = d.final("local-caller", "Let me check.", 1050)
    assert turn is not None and turn.trigger == "agent_spoke"
    assert [u.role for u in turn.delta] == ["customer", "agent"] and turn.agent_text == "Let me check."


def test_agent_alone_does_not_fire_and_joins_the_next_delta() -> None:
    d = TurnDetector("local-caller", idle_timeout_ms=100)  # customer is the local caller here
    assert d.final("remote-caller", "Hello, this is support.", 0) is None
    assert d.final("local-caller", "Hi.", 10) is None
    turn = d.poll(110)
    assert turn is not None
    assert [(u.role, u.text) for u in turn.delta] == [("agent", "Hello, this is support."), ("customer", "Hi.")]
    assert d.final("local-caller", "  ", 200) is None and d.pending is False  # empty finals are ignored


async def test_bus_filters_by_call_and_kind() -> None:
    bus = EventBus()
    one = bus.subscribe("a")
    sidecar_only = bus.subscribe(kinds=["sidecar"])
    everything = bus.subscribe()
    bus.publish("a", {"type": "start"})
    bus.publish("b", {"type": "start"})
    bus.publish("a", {"event": "hangup"}, kind="call")
    assert [e.data for e in [one.get_nowait(), one.get_nowait()]] == [{"type": "start"}, {"event": "hangup"}]
    assert one.get_nowait() is None
    assert [e.call_id for e in [sidecar_only.get_nowait(), sidecar_only.get_nowait()]] == ["a", "b"]
    assert sidecar_only.get_nowait() is None
    assert everything.pending() == 3


async def test_a_slow_subscriber_loses_its_oldest_events_and_never_blocks() -> None:
    bus = EventBus()
    sub = bus.subscribe(maxsize=3)
    for i in range(5):
        bus.publish("a", {"n": i})
    assert sub.dropped == 2
    assert [(await sub.get()).data["n"] for _ in range(3)] == [2, 3, 4]  # type: ignore[union-attr]


async def test_get_waits_for_the_next_event_and_close_ends_iteration() -> None:
    bus = EventBus()
    sub = bus.subscribe("a")
    waiter = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    bus.publish("a", {"n": 1})
    assert (await waiter).data == {"n": 1}  # type: ignore[union-attr]
    sub.close()
    assert [e async for e in sub] == [] and bus.subscribers == 0
    assert await bus.subscribe().get(timeout_s=0.01) is None
