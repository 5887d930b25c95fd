"""Blocking engines (TTS, file decoding) run in a bounded thread pool, results on the loop.

Theory of operation: Piper synthesizes one sentence per ONNX call, so the engine is a
blocking iterator of chunks. `SpeechSynthesizer.stream` runs it in the shared executor and
hands each chunk to the event loop as soon as it exists, so the first sentence plays while
the next one is still being synthesized. Cancelling the consumer stops the producer after
its current sentence (ONNX cannot be interrupted mid-call). With a `TtsCache`, a short text
said before in the same voice streams from the cache without touching the executor, and one
synthesized to the end (not cut off by its consumer) is kept for next time.

The `prompt` verb's speech recognizer is a `PromptRecognizer`: `load()` gives the engine (the
app's loads on first use, `LazyRecognizer`); on a server without one it is
`UnavailableRecognizer`, whose `unavailable` reason makes a speech prompt collect digits only
and end `no_input` with a `prompt_speech_unavailable` log line (kernel/verbs/prompt.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from concurrent.futures import Executor
from contextlib import aclosing
from typing import Protocol

from mediaserver.pipeline.asr import SpeechRecognizer
from mediaserver.pipeline.tts import TtsChunk, TtsEngine
from mediaserver.pipeline.tts_cache import TtsCache

__all__ = ["LazyRecognizer", "PromptRecognizer", "SpeechSynthesizer", "UnavailableRecognizer"]

_DONE = object()


class SpeechSynthesizer:
    def __init__(self, engine: TtsEngine, executor: Executor, cache: TtsCache | None = None) -> None:
        self.engine = engine
        self._executor = executor
        self.cache = cache  # shared by the process's synthesizers (fillers, greetings: app.py)

    @property
    def sample_rate(self) -> int:
        return self.engine.sample_rate

    async def stream(self, text: str) -> AsyncGenerator[TtsChunk, None]:
        cache = self.cache
        key = cache.key(self.engine, text) if cache is not None else None
        if cache is not None and key is not None:
            cached = cache.get(key)
            if cached is not None:
                for chunk in cached:
                    yield chunk
                return
        made: list[TtsChunk] = []
        async with aclosing(self._synthesize(text)) as chunks:  # closed with us: the producer stops
            async for chunk in chunks:
                made.append(chunk)
                yield chunk
        if cache is not None and key is not None:
            cache.put(key, made)  # reached only when the phrase was synthesized to its end

    async def _synthesize(self, text: str) -> AsyncGenerator[TtsChunk, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                for chunk in self.engine.synthesize(text):
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except BaseException as exc:  # handed to the consumer, raised there
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        future = loop.run_in_executor(self._executor, produce)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, TtsChunk)
                yield item
        finally:
            stop.set()
            if not future.done():
                # Don't wait for the sentence in flight; the thread drops its result.
                future.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)


class PromptRecognizer(Protocol):
    """The `prompt` verb's speech seam (`KernelServices.prompt_recognizer`)."""

    @property
    def unavailable(self) -> str:
        """Why speech cannot be recognized on this server; "" when it can."""
        ...

    async def load(self) -> SpeechRecognizer:
        """The recognizer (engines may load on first use); only called when available."""
        ...


class UnavailableRecognizer:
    """No speech recognizer: speech prompts collect digits only and end `no_input`, logged."""

    unavailable = "no speech recognizer configured"

    async def load(self) -> SpeechRecognizer:
        raise RuntimeError(self.unavailable)


class LazyRecognizer:
    """A recognizer that `provider` loads on first use (the app shares the `ai` verb's ASR)."""

    unavailable = ""

    def __init__(self, provider: Callable[[], Awaitable[SpeechRecognizer]]) -> None:
        self._provider = provider

    async def load(self) -> SpeechRecognizer:
        return await self._provider()
