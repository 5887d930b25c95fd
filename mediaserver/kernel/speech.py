"""Blocking engines (TTS, file decoding) run in a bounded thread pool, results on the loop.

Theory of operation: Piper synthesizes one sentence per ONNX call, so the engine is a
blocking iterator of chunks. `SpeechSynthesizer.stream` runs it in the shared executor and
hands each chunk to the event loop as soon as it exists, so the first sentence plays while
the next one is still being synthesized. Cancelling the consumer stops the producer after
its current sentence (ONNX cannot be interrupted mid-call).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import Executor

from mediaserver.pipeline.tts import TtsChunk, TtsEngine

_DONE = object()


class SpeechSynthesizer:
    def __init__(self, engine: TtsEngine, executor: Executor) -> None:
        self.engine = engine
        self._executor = executor

    @property
    def sample_rate(self) -> int:
        return self.engine.sample_rate

    async def stream(self, text: str) -> AsyncIterator[TtsChunk]:
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
