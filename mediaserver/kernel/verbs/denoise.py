"""`denoise` / `stop_denoise`: accepted as a no-op with a log line.

Theory of operation: there is no noise suppressor in the pipeline yet, so both verbs only log
a `denoise` entry (`applied: false`, with the reason) and set `denoise_result` to on or off,
which is what a script that branches on it expects.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediaserver import events
from mediaserver.kernel.call import Call
from mediaserver.kernel.verbs.context import KernelVerb, VerbContext
from mediaserver.swml.builders import Expander
from mediaserver.swml.document import Verb
from mediaserver.swml.effects import VerbResult


@dataclass(frozen=True, slots=True, kw_only=True)
class Denoise:
    path: str
    enabled: bool


def build(interp: Expander, verb: Verb) -> Denoise:
    return Denoise(path=verb.path, enabled=verb.name == "denoise")


async def handle(ctx: VerbContext, call: Call, effect: Denoise) -> VerbResult:
    call.events.emit(
        events.Denoise(
            path=effect.path,
            enabled=effect.enabled,
            applied=False,
            reason="no noise suppressor in the pipeline; accepted as a no-op",
        )
    )
    return VerbResult({"denoise_result": "on" if effect.enabled else "off"})


VERBS = (KernelVerb("denoise", Denoise, build, handle), KernelVerb("stop_denoise", Denoise, build, handle))
