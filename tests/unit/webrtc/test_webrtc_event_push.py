"""The call page is pushed the call's events by a bus subscription, not a poll of the event log."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from typing import Any

from mediaserver.events import AudioStarted, StateChanged
from mediaserver.kernel.eventbus import LOG, EventBus
from mediaserver.logs import CallEventLog
from mediaserver.signaling.webrtc import _Session


class FakeChannel:
    readyState = "open"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    def send(self, text: str) -> None:
        self.sent.append(json.loads(text))
        self.arrived.set()


async def test_events_reach_the_page_as_they_are_logged_in_order_with_catch_up() -> None:
    bus = EventBus()
    log = CallEventLog("webrtc-1", bus=bus)
    log.emit(StateChanged(old="new", new="ringing", trigger="ring"))  # before the page listens
    session = _Session(SimpleNamespace(), "webrtc-1", "demo", pc=None)  # type: ignore[arg-type]
    session.call = SimpleNamespace(events=log)  # type: ignore[assignment]
    channel = session.channel = FakeChannel()  # type: ignore[assignment]
    task = asyncio.create_task(session.forward_events(bus.subscribe("webrtc-1", kinds=[LOG])))
    await asyncio.sleep(0)
    other = CallEventLog("webrtc-2", bus=bus)  # another call's events are not this page's
    other.emit(AudioStarted(played_samples=0))
    started = time.perf_counter()
    log.emit(AudioStarted(played_samples=0))
    await asyncio.wait_for(channel.arrived.wait(), 1)
    waited = time.perf_counter() - started
    assert [(m["type"], m["event"]) for m in channel.sent] == [("event", "state_changed"), ("event", "audio_started")]
    assert channel.sent[1] == {"type": "event", **log.events[1]}
    assert waited < 0.05, f"the page waited {waited * 1000:.0f} ms: pushed events go out on the next loop turn"
    for n in range(50):  # a burst: every event, once, in order
        log.emit(AudioStarted(played_samples=n))
    for _ in range(5):
        await asyncio.sleep(0)
    assert [m.get("played_samples") for m in channel.sent[2:]] == list(range(50))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert bus._subscribers == set()  # the subscription closed with the forwarding task
