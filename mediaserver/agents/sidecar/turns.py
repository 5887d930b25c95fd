"""Customer turn-end detection for the sidecar (pure: time is passed in, in milliseconds).

Theory of operation: the transcribers of both legs report `speech_started(leg, now_ms)` when a
leg starts talking and `final(leg, text, now_ms)` for each finished utterance. A customer final
makes a turn *pending* and arms a deadline `idle_timeout_ms` later; the customer speaking again
disarms it (their turn is not over) until their next final re-arms it. The turn ends when:

- the deadline passes with the customer silent (`poll(now_ms)` returns the `TurnEnded`), or
- an agent final arrives while a customer turn is pending: the agent has answered, so the tick
  fires at once, with no idle wait (the agent's words are part of the delta).

`TurnEnded` carries the transcript delta since the previous tick (every final of both legs, in
order) and the customer's and the agent's text within it. `transcript` keeps the whole call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TurnDetector", "TurnEnded", "Utterance"]


@dataclass(frozen=True, slots=True)
class Utterance:
    role: str  # "customer" | "agent"
    leg: str  # "remote-caller" | "local-caller"
    text: str
    at_ms: int

    def as_dict(self) -> dict[str, object]:
        return {"role": self.role, "leg": self.leg, "text": self.text, "at_ms": self.at_ms}


@dataclass(frozen=True, slots=True)
class TurnEnded:
    delta: tuple[Utterance, ...]
    trigger: str  # "idle_timeout" | "agent_spoke"
    customer_text: str = field(default="")
    agent_text: str = field(default="")


class TurnDetector:
    def __init__(self, customer_leg: str, idle_timeout_ms: int) -> None:
        self.customer_leg = customer_leg
        self.idle_timeout_ms = idle_timeout_ms
        self.transcript: list[Utterance] = []
        self._since = 0  # index into transcript of the first utterance not yet in a tick
        self.pending = False
        self.deadline_ms: int | None = None

    def _role(self, leg: str) -> str:
        return "customer" if leg == self.customer_leg else "agent"

    def speech_started(self, leg: str, now_ms: int) -> None:
        del now_ms
        if leg == self.customer_leg and self.pending:
            self.deadline_ms = None  # still talking: wait for the next final

    def final(self, leg: str, text: str, now_ms: int) -> TurnEnded | None:
        text = text.strip()
        if not text:
            return None
        role = self._role(leg)
        self.transcript.append(Utterance(role, leg, text, now_ms))
        if role == "customer":
            self.pending = True
            self.deadline_ms = now_ms + self.idle_timeout_ms
            return None
        if self.pending:
            return self._fire("agent_spoke")
        return None

    def poll(self, now_ms: int) -> TurnEnded | None:
        if self.pending and self.deadline_ms is not None and now_ms >= self.deadline_ms:
            return self._fire("idle_timeout")
        return None

    def _fire(self, trigger: str) -> TurnEnded:
        delta = tuple(self.transcript[self._since :])
        self._since = len(self.transcript)
        self.pending = False
        self.deadline_ms = None
        return TurnEnded(
            delta,
            trigger,
            customer_text=" ".join(u.text for u in delta if u.role == "customer"),
            agent_text=" ".join(u.text for u in delta if u.role == "agent"),
        )
