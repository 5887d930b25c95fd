"""In-process publish/subscribe of per-call events (sidecar events, call control events).

Theory of operation: producers call `EventBus.publish(call_id, event)` with a JSON-ready dict;
it never blocks and never raises: each subscriber has a bounded queue, and a subscriber that
does not keep up loses its oldest events (counted in `dropped`, and the next event it reads
carries `dropped` so that a consumer can tell it missed something) rather than slowing the
call or growing memory. `subscribe(call_id=None, kinds=None)` returns a `Subscription`, an
async iterator of `BusEvent`s for one call (or all calls) and optionally only some event
kinds ("sidecar", "call"); `close()` (or leaving `async with`) unsubscribes. The HTTP control
API turns a subscription into a server-sent-event or WebSocket stream; tests subscribe directly.

Everything runs on the event loop; there are no locks because nothing here is shared across
threads.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = ["BusEvent", "EventBus", "Subscription"]

DEFAULT_QUEUE = 1000


@dataclass(frozen=True, slots=True)
class BusEvent:
    call_id: str
    kind: str  # "sidecar" | "call"
    data: dict[str, Any]
    seq: int  # increasing per bus: the order events were published in


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
        return (self.call_id is None or event.call_id == self.call_id) and (
            self.kinds is None or event.kind in self.kinds
        )

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


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._seq = 0
        self.published = 0

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
        self._seq += 1
        self.published += 1
        event = BusEvent(call_id, kind, data, self._seq)
        for sub in list(self._subscribers):
            if sub.wants(event):
                sub._offer(event)
        return event
