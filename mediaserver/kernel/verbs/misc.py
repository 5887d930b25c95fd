"""Small verbs: send_digits, user_event, denoise/stop_denoise, and the unsupported ones.

Theory of operation: `send_digits` hands the digits to the media path's RFC 4733 sender
(`MediaStream.send_dtmf`, paced by the 20 ms tick; `w` = 0.5 s and `W` = 1 s pauses) and
waits until the last packet is out (or the call ends); a media path without a sender (a front end that cannot send
telephone-events) reports send_digits_result failed. `user_event` logs the event on the call
and keeps it in the call's `user_events` list for the HTTP API. `denoise` is accepted as a
no-op with a log line (no noise suppressor in the pipeline yet). A verb with no handler at all
is logged as `verb_unsupported` and sets `<verb>_result = "unsupported"`, so a script can
branch on it and the call goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mediaserver.kernel.call import Call
from mediaserver.swml.effects import Denoise, SendDigits, Unsupported, UserEvent, VerbResult

if TYPE_CHECKING:
    from mediaserver.kernel.executor import SwmlExecutor

DIGIT_MS = 100  # tone length per digit
GAP_MS = 60  # silence between digits


@runtime_checkable
class DtmfSender(Protocol):
    """A media path that can send RFC 4733 events (RTP's `MediaStream`; WebRTC's cannot yet)."""

    def send_dtmf(
        self, digits: str, duration_ms: int = 100, gap_ms: int = 60, done: Callable[[], None] | None = None
    ) -> None: ...


async def send_digits(ex: SwmlExecutor, call: Call, effect: SendDigits) -> VerbResult:
    media = call.media
    if not isinstance(media, DtmfSender):
        call.events.record(
            "verb_unsupported",
            level=logging.WARNING,
            verb="send_digits",
            path=effect.path,
            reason="this media path cannot send RFC 4733 events",
        )
        return VerbResult({"send_digits_result": "failed"})
    if not call.answered:
        call.answer()
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def sent() -> None:
        if not done.done():
            done.set_result(True)

    try:
        media.send_dtmf(effect.digits, DIGIT_MS, GAP_MS, done=sent)
    except ValueError as exc:  # the peer negotiated no telephone-event
        call.events.record("send_digits_failed", level=logging.WARNING, path=effect.path, error=str(exc))
        return VerbResult({"send_digits_result": "failed"})
    ended: asyncio.Future[Any] = asyncio.ensure_future(call.ended.wait())
    try:
        await asyncio.wait({done, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
    ok = done.done()
    call.events.record("digits_sent", path=effect.path, digits=effect.digits, completed=ok)
    return VerbResult({"send_digits_result": "success" if ok else "failed"})


async def user_event(ex: SwmlExecutor, call: Call, effect: UserEvent) -> None:
    call.events.record("user_event", path=effect.path, user_event=effect.event)
    kept: list[dict[str, Any]] = call.info.setdefault("user_events", [])
    kept.append(effect.event)
    if ex.user_events is not None:
        ex.user_events(call.call_id, effect.event)


async def denoise(ex: SwmlExecutor, call: Call, effect: Denoise) -> VerbResult:
    call.events.record(
        "denoise",
        path=effect.path,
        enabled=effect.enabled,
        applied=False,
        reason="no noise suppressor in the pipeline; accepted as a no-op",
    )
    return VerbResult({"denoise_result": "on" if effect.enabled else "off"})


async def unsupported(ex: SwmlExecutor, call: Call, effect: Unsupported) -> VerbResult:
    call.events.record("verb_unsupported", level=logging.WARNING, verb=effect.verb, path=effect.path)
    return VerbResult({f"{effect.verb}_result": "unsupported"})
