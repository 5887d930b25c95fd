"""How many transcriptions run at once in the process, finals first.

Theory of operation: the recognizer holds `workers` model replicas (CTranslate2 `num_workers`)
and the ASR has that many executor threads, so up to `workers` transcriptions run in parallel.
Every call's partials and finals share them. A final decides when the agent may answer; a
partial only refreshes a transcript, so:

* a final takes any free slot, else waits in a FIFO that is served before any partial;
* a partial starts only when no final waits and, with two or more workers, one slot stays free
  after it (partials never hold the last slot, so the final asked as the caller stops does not
  wait behind the partial started just before; measured on the turn benchmark, that wait was
  ~200 ms of a whole turn's gap with one shared slot). A partial refused is skipped, not queued.

With one worker a partial may take the only slot when it is free (the old single-slot rule).
Used from the event loop only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["AsrSlots"]


class AsrSlots:
    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.busy = 0
        self._finals: deque[asyncio.Future[None]] = deque()

    @property
    def finals_waiting(self) -> int:
        return sum(1 for f in self._finals if not f.done())

    def partial_free(self) -> bool:
        """Whether `try_partial` would succeed now (the session asks before starting a task)."""
        reserve = 1 if self.workers > 1 else 0
        return not self.finals_waiting and self.busy + reserve < self.workers

    def try_partial(self) -> bool:
        """Take a slot for a partial (True; `release` after it) or refuse (False: skip it)."""
        if not self.partial_free():
            return False
        self.busy += 1
        return True

    async def acquire_final(self) -> None:
        """Take a slot for a final, waiting ahead of every partial; `release` after it."""
        if not self.finals_waiting and self.busy < self.workers:
            self.busy += 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finals.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # the slot was handed to us as we were cancelled: pass it on
            else:
                turn.cancel()
            raise

    def release(self) -> None:
        """A transcription ended: hand its slot to the first waiting final, else free it."""
        while self._finals:
            turn = self._finals.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot changes hands: `busy` stays
                return
        self.busy = max(0, self.busy - 1)

    @asynccontextmanager
    async def final(self) -> AsyncIterator[None]:
        await self.acquire_final()
        try:
            yield
        finally:
            self.release()
