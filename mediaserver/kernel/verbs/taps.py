"""DTMF collection for verbs (prompt, record): a queue of the call's digits while it is open.

Theory of operation: `DigitCollector` subscribes to the call leg's `taps.dtmf` (kernel/taps.py)
and queues every digit, whatever carried it; `close()` ends its subscription and nobody else's.
Verbs that want audio subscribe to `taps.inbound` (leg rate) or `taps.inbound16` directly.
"""

from __future__ import annotations

import asyncio

from mediaserver.events import DtmfCollected
from mediaserver.kernel.call import Call
from mediaserver.kernel.taps import Digit


class DigitCollector:
    def __init__(self, call: Call) -> None:
        self.call = call
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self._subscription = call.media.taps.dtmf.subscribe(self._on_digit, name="digit-collector")

    def _on_digit(self, digit: Digit) -> None:
        self.call.events.emit(DtmfCollected(digit=digit.digit, source=digit.source.value))
        self.digits.put_nowait(digit.digit)

    async def next(self, timeout_s: float) -> str | None:
        try:
            return await asyncio.wait_for(self.digits.get(), timeout_s)
        except TimeoutError:
            return None

    def close(self) -> None:
        self._subscription.close()
