"""The per-call agent handle: how the control API, the WebRTC page and the sidecar reach a
call's AI agent without touching its insides.

Theory of operation: an agent (the `ai` verb's session) exposes an `AgentHandle`: `say`,
`user_input`, `hangup`, `status`, a copy of its conversation (`history`) and `subscribe` to its
conversation as it grows. While it runs, the agent is attached to the kernel's
`AgentRegistry` under its call id (`kernel.agents`); the registry is where the others find it.

The conversation is a `Conversation`: the OpenAI-style `{"role", "content"}` list the agent
gives its LLM, which tells its listeners of each entry appended (`added`), changed in place
(`updated`, e.g. an interrupted reply cut to the words the caller heard) or removed. Events
carry a copy of the entry and a `key` that stays the same for one entry, so a page can replace
a line it already shows. Besides the changes, the agent reports the words of a reply as they are
queued for playout (`speaking`, each word with the playout mark of its end, keyed by the entry
that will hold the reply: a reply enters the conversation only once it is complete), so that a
page can show them as the caller hears them. Listeners are called synchronously, possibly inside the media tick:
they must only queue (an `AgentFeed` does).

`AgentRegistry.watch(call_id)` gives an `AgentFeed` (an asyncio queue) of the events of
whichever agent runs on that call, now or later: an `ai` verb that starts after the page
opened is picked up, and one already running first replays its conversation so far.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, SupportsIndex

__all__ = ["AgentEvent", "AgentFeed", "AgentHandle", "AgentRegistry", "Conversation"]

Entry = dict[str, Any]


@dataclass(frozen=True)
class AgentEvent:
    call_id: str
    kind: Literal["added", "updated", "removed", "speaking"]
    key: int  # the same for one entry across speaking / added / updated / removed
    entry: Entry  # a copy: changing it changes nothing in the agent (speaking: {"role", "words"})


Listener = Callable[[AgentEvent], None]
Unsubscribe = Callable[[], None]


class AgentHandle(Protocol):
    """What may be asked of a call's AI agent from outside (control API, page, sidecar)."""

    @property
    def call_id(self) -> str: ...
    def say(self, text: str) -> None:
        """Speak `text` to the caller (and keep it in the conversation)."""
        ...

    def user_input(self, text: str) -> None:
        """Take `text` as if the caller had said it: a user turn, answered by the agent."""
        ...

    def hangup(self, reason: str = "") -> None: ...
    def status(self) -> dict[str, Any]:
        """A JSON-ready summary (kind, model, turns, whether it has finished)."""
        ...

    def history(self) -> list[Entry]:
        """A copy of the conversation so far."""
        ...

    def subscribe(self, listener: Listener, *, replay: bool = False) -> Unsubscribe:
        """Call `listener` with each conversation event from now on (`replay`: first an `added`
        for each entry so far); returns the unsubscribe."""
        ...


class Conversation(list[Entry]):
    """An agent's LLM history that reports its changes (`append`, `extend`, `remove`, `updated`).

    Other list mutators are not reported; the agent uses only these.
    """

    def __init__(self, call_id: str, entries: Iterable[Entry] = ()) -> None:
        super().__init__(entries)
        self.call_id = call_id
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener, *, replay: bool = False) -> Unsubscribe:
        if replay:
            for entry in self:
                listener(AgentEvent(self.call_id, "added", id(entry), dict(entry)))
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def snapshot(self) -> list[Entry]:
        return [dict(entry) for entry in self]

    def _tell(self, kind: Literal["added", "updated", "removed", "speaking"], entry: Entry) -> None:
        if self._listeners:
            event = AgentEvent(self.call_id, kind, id(entry), dict(entry))
            for listener in list(self._listeners):
                listener(event)

    def append(self, entry: Entry) -> None:
        super().append(entry)
        self._tell("added", entry)

    def extend(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            self.append(entry)

    def remove(self, entry: Entry) -> None:
        super().remove(entry)
        self._tell("removed", entry)

    def updated(self, entry: Entry) -> None:
        """Report an entry the agent changed in place."""
        self._tell("updated", entry)

    def speaking(self, entry: Entry, words: Iterable[tuple[str, int]]) -> None:
        """Report words queued for playout for `entry` (maybe not in the conversation yet): each
        word with the playout mark (played-sample position) of its end."""
        if self._listeners:
            spoken = {"role": entry.get("role"), "words": [[text, mark] for text, mark in words]}
            event = AgentEvent(self.call_id, "speaking", id(entry), spoken)
            for listener in list(self._listeners):
                listener(event)

    def __setitem__(self, index: SupportsIndex | slice, value: Any) -> None:
        raise TypeError("a Conversation is changed by append / extend / remove / updated only")


class AgentFeed:
    """An asyncio queue of `AgentEvent`s for one call (see `AgentRegistry.watch`)."""

    def __init__(self, registry: AgentRegistry, call_id: str) -> None:
        self._registry = registry
        self.call_id = call_id
        self._queue: asyncio.Queue[AgentEvent] = asyncio.Queue()

    def put(self, event: AgentEvent) -> None:
        self._queue.put_nowait(event)

    async def get(self) -> AgentEvent:
        return await self._queue.get()

    def get_nowait(self) -> AgentEvent | None:
        return None if self._queue.empty() else self._queue.get_nowait()

    def __aiter__(self) -> AgentFeed:
        return self

    async def __anext__(self) -> AgentEvent:
        return await self._queue.get()

    def close(self) -> None:
        self._registry._unwatch(self)


class AgentRegistry:
    """The agents running now, by call id (at most one per call), and feeds watching calls."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentHandle] = {}
        self._feeds: dict[str, dict[AgentFeed, Unsubscribe | None]] = {}

    def attach(self, agent: AgentHandle) -> None:
        call_id = agent.call_id
        if call_id in self._agents:
            raise RuntimeError(f"call {call_id} already has an agent")
        self._agents[call_id] = agent
        feeds = self._feeds.get(call_id, {})
        for feed in feeds:
            feeds[feed] = agent.subscribe(feed.put, replay=True)

    def detach(self, agent: AgentHandle) -> None:
        if self._agents.get(agent.call_id) is not agent:
            return
        del self._agents[agent.call_id]
        feeds = self._feeds.get(agent.call_id, {})
        for feed, unsubscribe in feeds.items():
            if unsubscribe is not None:
                unsubscribe()
            feeds[feed] = None

    def get(self, call_id: str) -> AgentHandle | None:
        return self._agents.get(call_id)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._agents

    def __len__(self) -> int:
        return len(self._agents)

    def watch(self, call_id: str) -> AgentFeed:
        """The events of the agent on `call_id`, now and later; `close()` the feed when done.

        An agent already running first replays its conversation so far as `added` events.
        """
        feed = AgentFeed(self, call_id)
        agent = self._agents.get(call_id)
        self._feeds.setdefault(call_id, {})[feed] = (
            agent.subscribe(feed.put, replay=True) if agent is not None else None
        )
        return feed

    def _unwatch(self, feed: AgentFeed) -> None:
        feeds = self._feeds.get(feed.call_id, {})
        unsubscribe = feeds.pop(feed, None)
        if unsubscribe is not None:
            unsubscribe()
        if not feeds:
            self._feeds.pop(feed.call_id, None)
