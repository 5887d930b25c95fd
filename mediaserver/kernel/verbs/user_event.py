"""`user_event`: hand an application event to whoever watches the call.

Theory of operation: the event (any JSON object, its `${…}` expanded) is logged on the call as
a `user_event` entry, kept in the call's `user_events` list for the HTTP API, and passed to
the executor's `user_events` hook when one is set (the control API's push). No variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mediaserver import events
from mediaserver.kernel.call import Call
from mediaserver.kernel.verbs.context import KernelVerb, VerbContext
from mediaserver.swml.builders import Expander, expanded_params
from mediaserver.swml.document import Verb


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEvent:
    path: str
    event: dict[str, Any]


def build(interp: Expander, verb: Verb) -> UserEvent:
    return UserEvent(path=verb.path, event=expanded_params(interp, verb)["event"])


async def handle(ctx: VerbContext, call: Call, effect: UserEvent) -> None:
    call.events.emit(events.UserEvent(path=effect.path, user_event=effect.event))
    kept: list[dict[str, Any]] = call.info.setdefault("user_events", [])
    kept.append(effect.event)
    if ctx.user_events is not None:
        ctx.user_events(call.call_id, effect.event)


VERB = KernelVerb("user_event", UserEvent, build, handle)
