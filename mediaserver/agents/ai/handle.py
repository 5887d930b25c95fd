"""The `AgentHandle` of an `ai` verb's session: all that the control API and the page see of it."""

from __future__ import annotations

from typing import Any, Protocol

from mediaserver.kernel.agent import Conversation, Unsubscribe
from mediaserver.kernel.agent import Listener as AgentListener
from mediaserver.kernel.call import Call


class _Session(Protocol):
    """What the handle reads of `AiSession` (a protocol, so session.py can import this module)."""

    call: Call
    history: Conversation
    result: str

    @property
    def model(self) -> str: ...
    @property
    def finished(self) -> bool: ...
    def say(self, text: str) -> None: ...
    def add_user_input(self, text: str) -> None: ...
    def hangup(self, reason: str = "") -> None: ...
    def user_turns(self) -> int: ...


class AiAgentHandle:
    kind = "ai"

    def __init__(self, session: _Session) -> None:
        self._session = session

    @property
    def call_id(self) -> str:
        return self._session.call.call_id

    def say(self, text: str) -> None:
        self._session.say(text)

    def user_input(self, text: str) -> None:
        self._session.add_user_input(text)

    def hangup(self, reason: str = "") -> None:
        self._session.hangup(reason or "agent handle hangup")

    def status(self) -> dict[str, Any]:
        session = self._session
        return {
            "kind": self.kind,
            "call_id": self.call_id,
            "model": session.model,
            "entries": len(session.history),
            "user_turns": session.user_turns(),
            "finished": session.finished,
            "result": session.result,
        }

    def history(self) -> list[dict[str, Any]]:
        return self._session.history.snapshot()

    def subscribe(self, listener: AgentListener, *, replay: bool = False) -> Unsubscribe:
        return self._session.history.subscribe(listener, replay=replay)
