"""The media ends of a chat (chat.py): a call whose agent speaks text and whose caller types.

Theory of operation: `TextCall` is a real `Call` on a real `MediaStream` (PCMU, no network: its
packets go nowhere) with a signalling that has nothing to ring and ends the call at a hangup.
`pump()` ticks it in virtual time, 20 ms a tick, only while there is audio to play or the
opening's initial sleep is still owed (counted once the session listens to what leaves): the
played cursor, `wait_played` and the AI's tick clock (the opening, hard_stop_time) run as on a
call, but never wait for the wall clock, and nothing ticks while the caller types.

The session's synthesizer is `TextVoice`: each clause goes to `spoken` (the printer) and comes
back as one frame of silence per word, so that the playout has something to play. The phrase
cache keeps nothing (`NoCache`): a phrase said twice must reach `TextVoice` twice. VAD and ASR
are `Deaf`: no audio ever arrives, so neither is asked. `ObservedLlm` counts open LLM streams in
`Activity`, which (with the tools in flight and the audio queued) tells the chat when the
agent's turn is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mediaserver.clock import wall_time
from mediaserver.events import EventSink
from mediaserver.kernel.call import Call
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.logs import CallEventLog
from mediaserver.pipeline.asr import Recognition
from mediaserver.pipeline.llm import LanguageModel, LlmEvent, LlmSettings
from mediaserver.pipeline.tts import TtsChunk

__all__ = ["Activity", "Deaf", "NoCache", "ObservedLlm", "TextCall", "TextVoice"]

RATE = 8000  # the chat's "codec": PCMU, whose packets go nowhere
FRAME_NS = 20_000_000
FRAME_SAMPLES = RATE // 50


@dataclass
class Activity:
    """What is in flight, seen from outside the session: LLM streams (`llm`), and tool calls or the
    tool runner's start, with its SWAIG includes and startup_hook (`tools`, chat_output.py)."""

    llm: int = 0
    tools: int = 0

    @property
    def busy(self) -> bool:
        return self.llm > 0 or self.tools > 0


class TextVoice:
    """The session's synthesizer in a chat: each clause is printed; its audio is silence, one frame a word."""

    sample_rate = RATE

    def __init__(self, spoken: Callable[[str], None]) -> None:
        self.spoken = spoken

    async def stream(self, text: str) -> AsyncIterator[TtsChunk]:
        self.spoken(text)
        frames = max(1, len(text.split()))
        yield TtsChunk(np.zeros(frames * FRAME_SAMPLES, dtype=np.int16), RATE, text)


class NoCache(dict[str, list[TtsChunk]]):
    """The phrase cache of a chat keeps nothing: every phrase said must reach `TextVoice` again."""

    def __setitem__(self, key: str, value: list[TtsChunk]) -> None:
        return None


class Deaf:
    """VAD and ASR of a chat: no audio ever arrives (the caller types), so neither is asked."""

    sample_rate = 16000

    def is_speech(self, pcm: Any) -> bool:
        return False

    def reset(self) -> None:
        return None

    def transcribe(self, pcm: Any, *, prompt: str | None = None, hotwords: str | None = None) -> Recognition:
        return Recognition("", 0.0)


class ObservedLlm:
    """The chat's LLM, counted in `Activity` while a stream is open."""

    def __init__(self, llm: LanguageModel, activity: Activity) -> None:
        self.llm = llm
        self.activity = activity

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[LlmEvent]:
        self.activity.llm += 1
        try:
            async for event in self.llm.stream(messages, tools=tools, settings=settings):
                yield event
        finally:
            self.activity.llm -= 1


class _TextSignal:
    """The call's signalling: nothing to ring or answer; a hangup ends the call at once."""

    def __init__(self) -> None:
        self.hung_up: Callable[[], None] = lambda: None

    def ring(self) -> None:
        return None

    def answer(self) -> None:
        return None

    def hangup(self) -> None:
        asyncio.get_running_loop().call_soon(self.hung_up)


class TextCall:
    """A `Call` whose media is a `MediaStream` with no network, played out in virtual time."""

    def __init__(self, call_id: str, route: str, events: EventSink, owed_frames: int = 1) -> None:
        signal = _TextSignal()
        self.call = Call(
            call_id,
            from_uri="sip:chat@127.0.0.1",
            to_uri=f"sip:{route}@127.0.0.1",
            media=MediaStream(MediaParams("PCMU", 0, RATE, None), "chat"),
            signal=signal,
            send_media=lambda data: None,
            event_log=CallEventLog(call_id, bus=events),
            info={"direction": "inbound", "transport": "chat"},
        )
        signal.hung_up = lambda: self.call.signaling_ended("chat hangup")
        self.owed = owed_frames  # the opening's initial sleep, in frames sent
        self._now_ns = 0

    @property
    def queued(self) -> bool:
        return self.call.media.playout.queued_samples > 0 or self.owed > 0

    async def pump(self) -> None:
        """Tick the call while it has something to play: the agent never waits on a wall clock."""
        media = self.call.media
        while not self.call.ended.is_set():
            # The opening's frames count once the session listens to what leaves (taps.outbound).
            owed = self.owed > 0 and bool(media.taps.outbound) and self.call.answered
            if media.playout.queued_samples > 0 or owed:
                self._now_ns += FRAME_NS
                self.owed = max(0, self.owed - 1) if owed else self.owed
                self.call.on_tick(self._now_ns, wall_time())
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(0.005)
