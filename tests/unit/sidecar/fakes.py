"""Fakes for sidecar tests: a scripted LLM behind the `LanguageModel` Protocol, a call, a harness.

`ScriptedLlm` plays one script entry per `stream()` call: a string (a text reply), a `Calls`
(tool calls, with optional text alongside), or an `LlmError` (raised). It records the messages
and tool names of every request. `Harness` builds a `SidecarManager` on a fake clock with a
static tool runner, subscribes to the event bus, and feeds final transcripts as the leg
transcribers would.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from mediaserver.agents.ai.tools import StaticTool, StaticToolRunner, ToolOutcome, ToolRunner
from mediaserver.agents.sidecar.config import SidecarConfig
from mediaserver.agents.sidecar.runner import SidecarManager, SidecarServices
from mediaserver.kernel.call import Call
from mediaserver.kernel.eventbus import EventBus, Subscription
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.logs import CallEventLog
from mediaserver.pipeline.llm import LanguageModel, LlmError, LlmFinished, LlmSettings, TextDelta, ToolCallRequested
from tests.support.fakes import FakeSignal


@dataclass
class Calls:
    calls: list[tuple[str, str]]  # (name, JSON arguments)
    text: str = ""


@dataclass
class Request:
    messages: list[dict[str, Any]]
    tools: list[str]
    model: str


class ScriptedLlm:
    def __init__(self, script: list[Any], *, default: Any = "Nothing to add.") -> None:
        self.script = list(script)
        self.default = default
        self.requests: list[Request] = []
        self._ids = 0

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[Any]:
        self.requests.append(
            Request([dict(m) for m in messages], [t["function"]["name"] for t in tools or []], settings.model)
        )
        entry = self.script.pop(0) if self.script else self.default
        if isinstance(entry, LlmError):
            raise entry
        if isinstance(entry, Calls):
            if entry.text:
                yield TextDelta(entry.text)
            for name, args in entry.calls:
                self._ids += 1
                yield ToolCallRequested(f"call_{self._ids}", name, args)
            yield LlmFinished("tool_calls")
            return
        for word in str(entry).split(" "):
            yield TextDelta(word + " ")
        yield LlmFinished("stop")


def make_call(
    call_id: str = "call-a", from_uri: str = "sip:+15550100@example.com", to_uri: str = "sip:+15550199@example.com"
) -> Call:
    media = MediaStream(MediaParams("PCMU", 0, 8000, 101), "test", rng=random.Random(7))
    call = Call(
        call_id,
        from_uri=from_uri,
        to_uri=to_uri,
        media=media,
        signal=FakeSignal(),
        send_media=lambda _: None,
        event_log=CallEventLog(call_id),
    )
    call.answer()
    return call


class FakeClock:
    def __init__(self) -> None:
        self.ms = 1_000

    def now_us(self) -> int:
        return 1_745_870_400_000_000 + self.ms * 1000

    def monotonic_ms(self) -> int:
        return self.ms


def lookup_tool(
    response: str = "ACME charges $99/seat. We're $79.", actions: list[dict[str, Any]] | None = None
) -> StaticTool:
    def run(args: dict[str, Any], _control: Any) -> ToolOutcome:
        return ToolOutcome(response=response, actions=list(actions or []))

    return StaticTool(
        "lookup_competitor",
        "Look up a competitor by name.",
        run,
        {"type": "object", "properties": {"competitor": {"type": "string"}}},
    )


class ActingTools(StaticToolRunner):
    """A static runner that also applies its outcome's actions through the control, as SWAIG does."""

    async def invoke(self, invocation: Any, control: Any) -> ToolOutcome:
        from mediaserver.swaig.actions import apply_actions

        outcome = await super().invoke(invocation, control)
        apply_actions(outcome.actions, control, {})
        return outcome


BODY: dict[str, Any] = {
    "prompt": "You are a sales copilot for ${global_data.company}. Call sidecar_skip when no advice is needed.",
    "lang": "en-US",
    "global_data": {"company": "Initech"},
    "params": {"idle_timeout_ms": 50},
}


@dataclass
class Harness:
    llm: ScriptedLlm
    tools: ToolRunner | None = None
    clock: FakeClock = field(default_factory=FakeClock)
    bus: EventBus = field(default_factory=EventBus)
    call: Call = field(default_factory=make_call)

    def __post_init__(self) -> None:
        llm: LanguageModel = self.llm
        tools = self.tools

        async def get_llm() -> LanguageModel:
            return llm

        def tool_factory(_call: Call, _config: SidecarConfig) -> ToolRunner:
            return tools if tools is not None else ActingTools([lookup_tool()])

        self.services = SidecarServices(
            llm=get_llm,
            blocking=None,  # type: ignore[arg-type]
            tool_factory=tool_factory,
            now_us=self.clock.now_us,
            monotonic_ms=self.clock.monotonic_ms,
        )
        self.manager = SidecarManager(self.services, self.bus)
        self.sub: Subscription = self.bus.subscribe(self.call.call_id)
        self.variables: dict[str, Any] = {}

    async def start(self, body: dict[str, Any] | None = None) -> str:
        return await self.manager.start(self.call, dict(body or BODY), self.variables)

    @property
    def engine(self) -> Any:
        return self.manager.sidecars[self.call.call_id].engine

    def say(self, leg: str, text: str, advance_ms: int = 0) -> None:
        self.clock.ms += advance_ms
        self.manager.transcript(self.call.call_id, leg, text)

    async def turn_end(self) -> None:
        """Let the idle timer of the pending customer turn fire, and the tick run."""
        self.clock.ms += 10_000
        sidecar = self.manager.sidecars[self.call.call_id]
        self.manager._cancel_timer(sidecar)
        self.manager._poll(sidecar)
        await self.engine.idle()

    def events(self) -> list[dict[str, Any]]:
        out = []
        while (event := self.sub.get_nowait()) is not None:
            out.append(event.data)
        return out


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


__all__ = [
    "BODY",
    "ActingTools",
    "Calls",
    "FakeClock",
    "Harness",
    "LlmError",
    "ScriptedLlm",
    "lookup_tool",
    "make_call",
    "settle",
    "types",
]
