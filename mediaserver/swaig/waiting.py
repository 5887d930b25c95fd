"""What the caller hears while one webhook function runs: its fillers and its wait_file.

Theory of operation (schema `SWAIG.functions[].fillers`, `wait_file`, `wait_file_loops`,
`wait_for_fillers`): before the POST, `FunctionWait.start` speaks the function's next filler
phrase (rotating through its list) through the session's `SessionRecord`; with
`wait_for_fillers` the POST waits until the phrase has played. A `wait_file` starts playing
beside it, `wait_file_loops` times (0: until the function returns). `start` returns the tasks
to cancel when the function returns: the music stops then; a filler is never cut (it is short,
and the reply that follows queues behind it). Without a record (a sidecar) nothing plays.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mediaserver.swaig.functions import SwaigFunction
from mediaserver.swaig.session_record import SessionRecord

__all__ = ["FunctionWait"]


class FunctionWait:
    def __init__(self) -> None:
        self._turn = 0
        self._fillers: set[asyncio.Task[Any]] = set()  # still speaking after their function returned

    async def start(
        self, record: SessionRecord | None, fn: SwaigFunction, phrases: list[str]
    ) -> list[asyncio.Task[None]]:
        if record is None:
            return []
        if phrases:
            self._turn += 1
            filler = asyncio.ensure_future(record.speak(phrases[(self._turn - 1) % len(phrases)]))
            self._fillers.add(filler)
            filler.add_done_callback(self._fillers.discard)
            if fn.wait_for_fillers:
                await asyncio.shield(filler)
        if fn.wait_file:
            return [asyncio.ensure_future(record.play_file(fn.wait_file, fn.wait_file_loops))]
        return []

    def close(self) -> None:
        """The AI ended: a filler of a cancelled reply would wait for its commit forever."""
        for filler in list(self._fillers):
            filler.cancel()
