"""Taps on a call's media callbacks: DTMF digits and decoded inbound frames, for one verb at a time.

Theory of operation: `call.media.on_dtmf` and `call.media.on_inbound` are single callbacks. A
verb that needs them (prompt, record, record_call, detect_machine) installs a tap that chains
to whatever was installed before (the AI loop, another tap) and, when closed, puts the
previous callback back if it is still the current one. Taps never drop anything for the
callback they wrap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from mediaserver.audio.frame import AudioFrame
from mediaserver.kernel.call import Call


def unwrap(callback: Any) -> Any:
    """The callback a media path's property wraps, if it wraps one.

    A media path may hand out a wrapper when its callback is read (the SIP front end's
    `DtmfStream` returns a tap that routes digits through its logger and tone detector, and
    unwraps a tap assigned back). Chaining to that wrapper would run it twice per digit or
    frame, and re-enter us; so we chain to, and compare with, what it wraps.
    """
    return callback.user if hasattr(callback, "user") and hasattr(callback, "stream") else callback


class DigitCollector:
    """Queues DTMF digits while installed; chains to whatever callback was there before."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self._previous: Callable[[str], None] | None = unwrap(call.media.on_dtmf)
        call.media.on_dtmf = self._on_digit

    def _on_digit(self, digit: str) -> None:
        self.call.events.record("dtmf_collected", digit=digit)
        self.digits.put_nowait(digit)
        if self._previous is not None:
            self._previous(digit)

    async def next(self, timeout_s: float) -> str | None:
        try:
            return await asyncio.wait_for(self.digits.get(), timeout_s)
        except TimeoutError:
            return None

    def close(self) -> None:
        if unwrap(self.call.media.on_dtmf) == self._on_digit:
            self.call.media.on_dtmf = self._previous


class InboundTap:
    def __init__(self, call: Call, on_frame: Callable[[AudioFrame], None]) -> None:
        self.call = call
        self._on_frame = on_frame
        self._previous = unwrap(call.media.on_inbound)
        call.media.on_inbound = self._frame

    def _frame(self, frame: AudioFrame) -> None:
        self._on_frame(frame)
        if self._previous is not None:
            self._previous(frame)

    def close(self) -> None:
        if unwrap(self.call.media.on_inbound) == self._frame:
            self.call.media.on_inbound = self._previous
