"""The `AiRunner` the SWML executor calls for the `ai` verb, and the event-loop lag monitor.

Theory of operation: `SessionRunner` holds the process-wide engines (`AiEngines`: one ASR model,
one LLM client, the TTS, the bounded executor and the phrase cache) and, for each `ai` verb,
parses its parameters (`AiSessionConfig.from_params`), asks the SWAIG factory for a
`ToolRunner` (a plain in-process runner when none is wired), answers the call and runs an
`AiSession` on it until it ends; the session's SWAIG `SWML`/`transfer` actions run on the
call's script through `scripts` (the kernel's `KernelServices.scripts`, kernel/inline.py).
While the session runs, its `AgentHandle` is attached to the kernel's `AgentRegistry` (the
control API and the WebRTC page find it there). A verb whose
session crashes is logged on the call and reported as `ai_result = failed`, so the document
goes on instead of the call dying.

`LoopLagMonitor` sleeps `interval_s` again and again and records how much later than asked it
woke up: the event loop's lag, which is what every call's 20 ms tick waits behind. The app runs
one and puts its summary in the /health JSON.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.global_data import persist_enabled
from mediaserver.agents.ai.llm_guidance import UNREACHABLE, UNREACHABLE_PHRASE
from mediaserver.agents.ai.session import AiEngines, AiSession
from mediaserver.agents.ai.tools import StaticToolRunner, ToolRunner
from mediaserver.clock import Clock
from mediaserver.events import AiFailure
from mediaserver.kernel.agent import AgentRegistry
from mediaserver.kernel.call import Call
from mediaserver.kernel.services import NoSwmlRunner, SwmlRunner
from mediaserver.swml.effects import Ai, AiFinished

log = logging.getLogger(__name__)


class SessionRunner:
    def __init__(
        self,
        engines: AiEngines | Callable[[], Awaitable[AiEngines]],
        *,
        tool_factory: Callable[[Call, AiSessionConfig, dict[str, Any]], ToolRunner] | None = None,
        render_prompt: Callable[[dict[str, Any]], str] | None = None,
        default_model: str = "",
        agents: AgentRegistry | None = None,
        scripts: SwmlRunner | None = None,
    ) -> None:
        self.engines = engines
        self.tool_factory = tool_factory
        self.render_prompt = render_prompt
        self.default_model = default_model
        self.agents = agents if agents is not None else AgentRegistry()  # the kernel's (KernelServices.agents)
        # The kernel's running scripts (KernelServices.scripts): SWAIG SWML/transfer actions run there.
        self.scripts: SwmlRunner = scripts if scripts is not None else NoSwmlRunner()

    async def __call__(self, call: Call, effect: Ai, variables: Mapping[str, Any]) -> AiFinished:
        if not call.answered:
            call.answer()
        config = AiSessionConfig.from_params(
            effect.params, render_prompt=self.render_prompt, default_model=self.default_model
        )
        config.recovery.setdefault(UNREACHABLE, UNREACHABLE_PHRASE)  # no LLM at [llm] base_url (llm_guidance.py)
        try:
            engines = self.engines if isinstance(self.engines, AiEngines) else await self.engines()
        except Exception as exc:  # a model that will not load: the verb fails, the document goes on
            call.events.emit(AiFailure(kind="engines", error=repr(exc)), level=logging.ERROR)
            return AiFinished(result="failed")
        try:
            tools = self.tool_factory(call, config, effect.params) if self.tool_factory else StaticToolRunner()
        except Exception as exc:
            call.events.emit(AiFailure(kind="tool_setup", error=repr(exc)), level=logging.ERROR)
            tools = StaticToolRunner()
        session = AiSession(
            call,
            config,
            engines,
            tools,
            scripts=self.scripts,
            # The script's own variables: ai_agents_global_data read and written there (global_data.py)
            variables=variables if isinstance(variables, dict) else None,
            persist_global_data=persist_enabled(effect.params.get("params")),
        )
        try:
            self.agents.attach(session.handle)
            return await session.run()
        except Exception as exc:
            call.events.emit(AiFailure(kind="session", error=repr(exc)), level=logging.ERROR)
            log.exception("ai session failed")
            return AiFinished(result="failed")
        finally:
            self.agents.detach(session.handle)
            try:
                await tools.close()  # SWAIG's runner owns an HTTP session
            except Exception:
                log.exception("closing the tool runner failed")


class LoopLagMonitor:
    def __init__(self, clock: Clock, interval_s: float = 0.1, keep: int = 600) -> None:
        self.clock = clock
        self.interval_s = interval_s
        self.lags_ms: deque[float] = deque(maxlen=keep)

    async def run(self) -> None:
        interval_ns = int(self.interval_s * 1e9)
        while True:
            before = self.clock.now_ns()
            await asyncio.sleep(self.interval_s)
            self.lags_ms.append(max(0, self.clock.now_ns() - before - interval_ns) / 1e6)

    def summary(self) -> dict[str, float]:
        if not self.lags_ms:
            return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "samples": 0}
        ordered = sorted(self.lags_ms)

        def pick(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

        return {"p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(ordered[-1], 2), "samples": len(ordered)}
