"""The executor's handler for the `ai_sidecar` verb: attach the sidecar, go on with the document.

The verb does not block: the sidecar runs alongside the rest of the script (typically a
`connect` that bridges the customer to a human agent) and dies with the call. A refused start
(`-ERR: …`, e.g. a bad param) is logged on the call with the spec's text and the document goes
on, as the platform does after an FS API error. On a server without the sidecar the kernel's
runner is `NoSidecarRunner`, whose `SIDECAR_UNAVAILABLE` answer is logged as `verb_unsupported`.
"""

from __future__ import annotations

from mediaserver.events import AiSidecarRefused, VerbUnsupported
from mediaserver.kernel.call import Call
from mediaserver.kernel.services import SIDECAR_UNAVAILABLE
from mediaserver.kernel.verbs.context import VerbContext
from mediaserver.swml.effects import AiSidecar

__all__ = ["ai_sidecar"]


async def ai_sidecar(ctx: VerbContext, call: Call, effect: AiSidecar) -> None:
    reply = await ctx.sidecar_runner(call, effect.params, ctx.interp.variables)
    if reply == SIDECAR_UNAVAILABLE:
        call.events.emit(VerbUnsupported(verb="ai_sidecar", path=effect.path, reason="no sidecar engine configured"))
    elif not reply.startswith("+OK"):
        call.events.emit(AiSidecarRefused(path=effect.path, reply=reply))
    return None
