"""In-process publish/subscribe of per-call events (sidecar events, call control events).

Theory of operation: producers call `EventBus.publish(call_id, event)` with a JSON-ready dict;
it never blocks and never raises: each subscriber has a bounded queue, and a subscriber that
does not keep up loses its oldest events (counted in `dropped`, and the next event it reads
carries `dropped` so that a consumer can tell it missed something) rather than slowing the
call or growing memory. `subscribe(call_id=None, kinds=None)` returns a `Subscription`, an
async iterator of `BusEvent`s for one call (or all calls) and optionally only some event
kinds ("sidecar", "call"); `close()` (or leaving `async with`) unsubscribes. The HTTP control
API turns a subscription into a server-sent-event or WebSocket stream; tests subscribe directly.

It is the kernel's one bus (DESIGN §8): every call's event log publishes every typed call
event (mediaserver/events.py) here as kind "log" (`publish_call_event`: `data` is the JSON
entry, `event` the typed event), next to the sidecar's, the transcriber's and the control
API's events. Kind "log" is opt-in: a subscription without `kinds` gets every other kind (the
call log is a turn event every few hundred ms per call), so it must name it. Consumers that
must see every event, in order, without a queue (the /metrics histograms, the per-call JSONL
writer) are `listen`ers: synchronous callbacks run inside `publish`, whose exceptions are
logged and never reach the producer; they must not block (the JSONL writer only enqueues).

Everything runs on the event loop; there are no locks because nothing here is shared across
threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mediaserver.events import CallEvent

__all__ = ["LOG", "USER_EVENT", "BusEvent", "EventBus", "Listener", "Subscription"]

log = logging.getLogger(__name__)

DEFAULT_QUEUE = 1000
LOG = "log"  # the kind of every call event-log entry
USER_EVENT = "user_event"  # also the kind of an application's user_event entries
OPT_IN_KINDS = frozenset({LOG})  # kinds a subscription without `kinds` does not get


@dataclass(frozen=True, slots=True)
class BusEvent:
    call_id: str
    kind: str  # "log" | "sidecar" | "transcribe" | "call"
    data: dict[str, Any]
    seq: int  # increasing per bus: the order events were published in
    event: CallEvent | None = None  # the typed event of a "log" entry


def _wants(call_id: str | None, kinds: frozenset[str] | None, event: BusEvent) -> bool:
    return (call_id is None or event.call_id == call_id) and (
        event.kind not in OPT_IN_KINDS if kinds is None else event.kind in kinds
    )


class Subscription:
    def __init__(self, bus: EventBus, call_id: str | None, kinds: frozenset[str] | None, maxsize: int) -> None:
        self._bus = bus
        self.call_id = call_id
        self.kinds = kinds
        self._queue: deque[BusEvent] = deque()
        self._maxsize = maxsize
        self._wakeup = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def wants(self, event: BusEvent) -> bool:
        return _wants(self.call_id, self.kinds, event)

    def _offer(self, event: BusEvent) -> None:
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()  # a slow reader loses the oldest event, never blocks the call
            self.dropped += 1
        self._queue.append(event)
        self._wakeup.set()

    def pending(self) -> int:
        return len(self._queue)

    def get_nowait(self) -> BusEvent | None:
        return self._queue.popleft() if self._queue else None

    async def get(self, timeout_s: float | None = None) -> BusEvent | None:
        """The next event; None when closed or when `timeout_s` passed first."""
        while not self._queue:
            if self.closed:
                return None
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout_s)
            except TimeoutError:
                return None
        return self._queue.popleft()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._subscribers.discard(self)
            self._wakeup.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> BusEvent:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()


class Listener:
    """A synchronous subscriber: `callback(event)` inside `publish`; `close()` unsubscribes."""

    def __init__(
        self, bus: EventBus, callback: Callable[[BusEvent], None], call_id: str | None, kinds: frozenset[str] | None
    ) -> None:
        self._bus = bus
        self.callback = callback
        self.call_id = call_id
        self.kinds = kinds

    def wants(self, event: BusEvent) -> bool:
        return _wants(self.call_id, self.kinds, event)

    def close(self) -> None:
        if self in self._bus._listeners:
            self._bus._listeners.remove(self)


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._listeners: list[Listener] = []  # in the order they listened
        self._seq = 0
        self.published = 0

    def listen(
        self, callback: Callable[[BusEvent], None], call_id: str | None = None, kinds: list[str] | None = None
    ) -> Listener:
        """Call `callback` with every matching event as it is published (see the module doc)."""
        listener = Listener(self, callback, call_id, frozenset(kinds) if kinds else None)
        self._listeners.append(listener)
        return listener

    def subscribe(
        self, call_id: str | None = None, kinds: list[str] | None = None, maxsize: int = DEFAULT_QUEUE
    ) -> Subscription:
        sub = Subscription(self, call_id, frozenset(kinds) if kinds else None, maxsize)
        self._subscribers.add(sub)
        return sub

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, call_id: str, data: dict[str, Any], kind: str = "sidecar") -> BusEvent:
        return self._publish(call_id, kind, data, None)

    def publish_call_event(self, call_id: str, event: CallEvent, entry: dict[str, Any]) -> BusEvent:
        """A call's event-log entry (`CallEventLog.emit`): kind "log", `entry` is `event.to_dict(ts)`.

        A `user_event` (the SWML verb, the SWAIG action) is the application's own message, so it
        also goes out as kind "user_event", which a stream without `kinds` gets."""
        published = self._publish(call_id, LOG, entry, event)
        if entry.get("event") == USER_EVENT:
            self._publish(call_id, USER_EVENT, entry, event)
        return published

    def _publish(self, call_id: str, kind: str, data: dict[str, Any], typed: CallEvent | None) -> BusEvent:
        self._seq += 1
        self.published += 1
        event = BusEvent(call_id, kind, data, self._seq, typed)
        for listener in list(self._listeners):
            if listener.wants(event):
                try:
                    listener.callback(event)
                except Exception:  # a listener's bug must not break the call that published
                    log.exception("event bus listener failed", extra={"call_id": call_id})
        for sub in list(self._subscribers):
            if sub.wants(event):
                sub._offer(event)
        return event
