"""A real `AiSession` with the real SWAIG runner, talking to a local aiohttp agent.

`SwaigCall(ai, agent, …)` is `ai_fakes.Scenario` with a `SwaigToolRunner` and the script's
variables handed to the session as the SWML executor hands them. Webhooks go over real HTTP, so
the harness steps ticks with a short real sleep between them (`until`) instead of only draining
the loop: the agent's reply arrives in real time.
"""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from mediaserver.agents.ai.global_data import persist_enabled
from mediaserver.agents.ai.session import AiSession
from mediaserver.swaig.gateway import SwaigToolRunner, call_info_from
from tests.scenario.ai_fakes import Scenario, ScriptedLlm, WordTts


class SwaigCall(Scenario):
    def __init__(
        self,
        ai: dict[str, Any],
        *,
        llm: ScriptedLlm,
        variables: dict[str, Any] | None = None,
        signing_key: str = "",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        phrases: dict[int, str] | None = None,
        tts: WordTts | None = None,
    ) -> None:
        super().__init__(ai, llm=llm, phrases=phrases, tts=tts)
        self.variables = variables if variables is not None else {}
        self.runner = SwaigToolRunner(ai, call_info_from(self.call, ai), signing_key=signing_key, sleep=sleep)
        self.session = AiSession(
            self.call,
            self.config,
            self.engines,
            self.runner,
            variables=self.variables,
            persist_global_data=persist_enabled(ai.get("params")),
        )

    async def until(self, done: Callable[[], bool], *, max_ticks: int = 400, pause_s: float = 0.005) -> None:
        """Step ticks (with a real pause for HTTP) until `done()`; fail after `max_ticks`."""
        for _ in range(max_ticks):
            if done():
                return
            await self.step()
            await asyncio.sleep(pause_s)
        raise AssertionError(f"not done after {max_ticks} ticks")

    async def close(self) -> None:
        await self.finish()
        await self.runner.close()


def wav_file(path: Path, freq: float, ms: int, rate: int = 8000) -> Path:
    """A mono 16-bit WAV of a pure tone."""
    t = np.arange(rate * ms // 1000) / rate
    pcm = (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    path.write_bytes(buffer.getvalue())
    return path


def dominant_hz(pcm: np.ndarray, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum)) * rate / len(pcm)
