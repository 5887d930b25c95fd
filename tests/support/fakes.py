"""Fakes of the kernel's public Protocols shared by the scenario and unit tests."""

from __future__ import annotations


class FakeSignal:
    """A `CallSignal` that records what the kernel asked of the front end, in order."""

    def __init__(self) -> None:
        self.actions: list[str] = []

    def ring(self) -> None:
        self.actions.append("ring")

    def answer(self) -> None:
        self.actions.append("answer")

    def hangup(self) -> None:
        self.actions.append("hangup")
