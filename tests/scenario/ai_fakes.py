"""Fake engines behind the public Protocols, and a call driven tick by tick on a manual clock.

The caller "speaks" pure tones: `ToneAsr` hears the dominant frequency and returns the phrase the
test assigned to it, so a transcript follows from the audio actually received (a cough-like
noise burst has no dominant tone and transcribes to ""). `WordTts` speaks every word as exactly
200 ms of tone at 8 kHz with exact word timings, so heard-text cuts can be computed by hand.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, Future
from typing import Any

import numpy as np

from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.listen import rms_dbfs
from mediaserver.agents.ai.session import AiEngines, AiSession
from mediaserver.agents.ai.tools import ToolRunner
from mediaserver.kernel.call import Call
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.logs import CallEventLog
from mediaserver.pipeline.asr import Recognition
from mediaserver.pipeline.end_of_turn import EndOfTurnDetector
from mediaserver.pipeline.llm import LlmError, LlmFinished, LlmSettings, TextDelta, ToolCallRequested
from mediaserver.pipeline.tts import TtsChunk, WordTiming
from mediaserver.rtp.packet import RtpPacket, is_rtcp
from mediaserver.swml.effects import AiFinished
from tests.support.fakes import FakeSignal

FRAME_NS = 20_000_000
WORD_SAMPLES = 1600  # 200 ms at 8 kHz
TTS_RATE = 8000


class InlineExecutor(Executor):
    """Runs each job at submit time: scenario results land on the loop at once, in order."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


class ToneVad:
    def __init__(self, floor_dbfs: float = -40.0) -> None:
        self.floor_dbfs = floor_dbfs

    def is_speech(self, pcm: np.ndarray) -> bool:
        return rms_dbfs(pcm) > self.floor_dbfs

    def reset(self) -> None:
        pass


class ToneConfirmer:
    """A neural VAD stand-in: a pure tone is speech, broadband noise is not."""

    def speech_probability(self, pcm: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
        return 1.0 if spectrum.max() > 0.2 * spectrum.sum() else 0.0

    def reset(self) -> None:
        pass


class ToneAsr:
    sample_rate = 16000

    def __init__(self, phrases: dict[int, str]) -> None:
        self.phrases = phrases
        self.calls = 0

    def transcribe(self, pcm: np.ndarray, *, prompt: str | None = None, hotwords: str | None = None) -> Recognition:
        self.calls += 1
        loud = pcm[np.abs(pcm) > 1000]
        if len(loud) < 3200:  # under 200 ms of voice: no word yet
            return Recognition("", 0.0)
        spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
        peak_hz = float(np.argmax(spectrum)) * self.sample_rate / len(pcm)
        share = spectrum.max() / (spectrum.sum() + 1e-9)
        for freq, text in self.phrases.items():
            if abs(peak_hz - freq) < 25 and share > 0.01:
                return Recognition(text, 0.9)
        return Recognition("", 0.1)


class ScriptedLlm:
    """Each call to stream() plays the next script entry: text tokens, tool calls, or an error."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.requests: list[list[dict[str, Any]]] = []

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[Any]:
        self.requests.append([dict(m) for m in messages])
        entry = self.script.pop(0) if self.script else "Okay."
        if isinstance(entry, Exception):
            raise entry
        if isinstance(entry, ToolCallRequested):
            yield entry
            yield LlmFinished("tool_calls")
            return
        for token in entry.split(" "):
            yield TextDelta(token + " ")
        yield LlmFinished("stop")


class WordTts:
    sample_rate = TTS_RATE

    def __init__(self, fail: bool = False) -> None:
        self.spoken: list[str] = []
        self.fail = fail

    async def stream(self, text: str) -> AsyncIterator[TtsChunk]:
        if self.fail:
            raise RuntimeError("voice model crashed")
        self.spoken.append(text)
        words = text.split()
        t = np.arange(WORD_SAMPLES * len(words)) / TTS_RATE
        pcm = (6000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
        timings = tuple(WordTiming(w, i * WORD_SAMPLES, (i + 1) * WORD_SAMPLES) for i, w in enumerate(words))
        yield TtsChunk(pcm, TTS_RATE, text, timings)


def tone(freq: float, ms: int, rate: int = 8000, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(rate * ms // 1000) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def noise_burst(ms: int, rate: int = 8000, amplitude: int = 9000, seed: int = 3, decay: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = rate * ms // 1000
    envelope = np.exp(-np.linspace(0, 4, n)) if decay else np.ones(n)  # a cough: loud attack, fast decay
    return (amplitude * envelope * rng.uniform(-1, 1, n)).astype(np.int16)


class Scenario:
    """One call with an AI session; `await step(pcm)` is one 20 ms tick with 20 ms of caller audio."""

    def __init__(
        self,
        ai: dict[str, Any],
        *,
        llm: ScriptedLlm | None = None,
        phrases: dict[int, str] | None = None,
        tts: WordTts | None = None,
        tools: ToolRunner | None = None,
        far_end_delay_ms: int = 0,
        confirmer: bool = False,
        detector: EndOfTurnDetector | None = None,
    ) -> None:
        self.sent: list[bytes] = []
        # A fixed 3-frame jitter buffer: the scenarios' tick arithmetic ("voice from the packet of
        # tick 31, heard from tick 34") is written against it (the shipped start depth is 2).
        media = MediaStream(MediaParams("PCMU", 0, 8000, 101, 3, 3), "test", rng=random.Random(7))
        self.call = Call(
            "ai1",
            from_uri="sip:a@x",
            to_uri="sip:b@y",
            media=media,
            signal=FakeSignal(),
            send_media=self.sent.append,
            event_log=CallEventLog("ai1"),
        )
        self.call.answer()
        self.llm = llm or ScriptedLlm([])
        self.tts = tts or WordTts()
        self.asr = ToneAsr(phrases or {})
        self.engines = AiEngines(
            vad=ToneVad,
            asr=self.asr,
            llm=self.llm,
            tts=self.tts,
            blocking=InlineExecutor(),
            far_end_delay_ms=far_end_delay_ms,
            confirmer=ToneConfirmer if confirmer else lambda: None,
            detector=detector,
        )
        self.config = AiSessionConfig.from_params(ai)
        self.session = AiSession(self.call, self.config, self.engines, tools)
        self.task: asyncio.Task[AiFinished] | None = None
        self.tick = 0
        self.seq = 0
        self.agent: list[np.ndarray] = []  # decoded outbound audio per tick (index = tick - 1)
        self.event_ticks: list[tuple[int, dict[str, Any]]] = []
        self._seen = 0

    async def start(self) -> None:
        self.task = asyncio.ensure_future(self.session.run())
        await drain()
        self._collect()

    async def step(self, caller: np.ndarray | None = None) -> None:
        pcm = caller if caller is not None else np.zeros(160, dtype=np.int16)
        media = self.call.media
        assert isinstance(media, MediaStream)
        payload = media.codec.encode(pcm)
        self.call.receive_media(RtpPacket(0, self.seq, 160 * self.seq, 4242, payload).serialize(), self.tick * FRAME_NS)
        self.seq += 1
        self.tick += 1
        before = len(self.sent)
        self.call.on_tick(self.tick * FRAME_NS, 0.0)
        for data in self.sent[before:]:
            if not is_rtcp(data):
                self.agent.append(media.codec.decode(RtpPacket.parse(data).payload))
        await drain()
        self._collect()

    def _collect(self) -> None:
        events = self.call.events.events
        self.event_ticks += [(self.tick, e) for e in events[self._seen :]]
        self._seen = len(events)

    async def play(self, audio: np.ndarray | None = None, *, ticks: int = 0) -> None:
        """Caller audio cut into 20 ms frames (then `ticks` frames of silence)."""
        if audio is not None:
            for i in range(0, len(audio), 160):
                frame = np.zeros(160, dtype=np.int16)
                part = audio[i : i + 160]
                frame[: len(part)] = part
                await self.step(frame)
        for _ in range(ticks):
            await self.step()

    def ticks_of(self, event: str) -> list[int]:
        return [t for t, e in self.event_ticks if e["event"] == event]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [e for _, e in self.event_ticks if e["event"] == event]

    def agent_ticks(self) -> list[int]:
        """Ticks whose outbound frame carried agent audio."""
        return [i + 1 for i, pcm in enumerate(self.agent) if np.abs(pcm.astype(np.int32)).max() > 64]

    async def finish(self) -> AiFinished:
        self.session.stop()
        assert self.task is not None
        return await asyncio.wait_for(self.task, 5)


async def drain(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


__all__ = ["LlmError", "Scenario", "ScriptedLlm", "ToolCallRequested", "WordTts", "noise_burst", "tone"]
