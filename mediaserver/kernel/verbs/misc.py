"""Small verbs: send_digits and the unsupported ones (user_event and denoise are modules of their own).

Theory of operation: `send_digits` hands the digits to the media path's `send_dtmf` (RTP's
RFC 4733 sender, paced by the 20 ms tick; `w` = 0.5 s and `W` = 1 s pauses) and waits until
the last packet is out (or the call ends); a media path that cannot send digits (no
telephone-event negotiated, a WebRTC leg) raises `DtmfUnsupported`, logged as
`send_digits_failed` with its reason, and send_digits_result is failed. A verb with no handler at all
is logged as `verb_unsupported` and sets `<verb>_result = "unsupported"`, so a script can
branch on it and the call goes on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mediaserver.events import DigitsSent, SendDigitsFailed, VerbUnsupported
from mediaserver.kernel.call import Call
from mediaserver.kernel.media import DtmfUnsupported
from mediaserver.kernel.verbs.context import VerbContext
from mediaserver.swml.effects import SendDigits, Unsupported, VerbResult

DIGIT_MS = 100  # tone length per digit
GAP_MS = 60  # silence between digits


async def send_digits(ctx: VerbContext, call: Call, effect: SendDigits) -> VerbResult:
    media = call.media
    if not call.answered:
        call.answer()
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def sent() -> None:
        if not done.done():
            done.set_result(True)

    try:
        media.send_dtmf(effect.digits, DIGIT_MS, GAP_MS, done=sent)
    except DtmfUnsupported as exc:  # no telephone-event negotiated, or a WebRTC leg
        call.events.emit(SendDigitsFailed(path=effect.path, error=str(exc)))
        return VerbResult({"send_digits_result": "failed"})
    ended: asyncio.Future[Any] = asyncio.ensure_future(call.ended.wait())
    try:
        await asyncio.wait({done, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
    ok = done.done()
    call.events.emit(DigitsSent(path=effect.path, digits=effect.digits, completed=ok))
    return VerbResult({"send_digits_result": "success" if ok else "failed"})


async def unsupported(ctx: VerbContext, call: Call, effect: Unsupported) -> VerbResult:
    call.events.emit(VerbUnsupported(verb=effect.verb, path=effect.path))
    return VerbResult({f"{effect.verb}_result": "unsupported"})
