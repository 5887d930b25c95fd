"""`VerbContext`: what a verb handler may use of the call's script, and nothing more.

Theory of operation: the executor (kernel/executor.py) builds one `VerbContext` per script,
at construction, from its `KernelServices` and its interpreter, and hands it to every handler
as `handler(context, call, effect)`. Handlers never see the executor: this module sits below it
and imports nothing from it (an import-linter contract in pyproject.toml keeps it so), which is
what keeps `executor -> verbs -> executor` from being a cycle (DESIGN §2).

What a handler gets: the interpreter's live scopes (`interp.variables`, `.call`, `.envs`), the
services it may call (`blocking`, `http`, `dialer`, `recognizer`, `sidecar_runner`, the SWML
`options`, the `user_events` hook), `play` (the executor's player: announcements of `prompt`)
and `background`, the script's background jobs by control id (`record_call` recordings, written
by `stop_record_call` or at the end of the script).

`KernelVerb` is how a module here declares a whole verb (effect, builder, handler); see
registry.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mediaserver.kernel.call import Call
from mediaserver.kernel.services import Dialer, SidecarRunner, SwmlOptions
from mediaserver.kernel.speech import PromptRecognizer
from mediaserver.swml.builders import Builder
from mediaserver.swml.effects import EffectResult
from mediaserver.swml.play_urls import PlayItem

if TYPE_CHECKING:
    import aiohttp

__all__ = ["BackgroundJob", "Handler", "KernelVerb", "Player", "ScriptScopes", "VerbContext"]


class ScriptScopes(Protocol):
    """What handlers read of the SWML interpreter: its live variables and the fetch body's scopes."""

    @property
    def variables(self) -> dict[str, Any]: ...
    @property
    def call(self) -> dict[str, Any]: ...
    @property
    def envs(self) -> dict[str, Any]: ...


class Player(Protocol):
    async def __call__(self, call: Call, items: tuple[PlayItem, ...], volume_db: float, path: str) -> bool:
        """Play `items` on the call; False when it stopped early (cut short, or not answered)."""
        ...


class BackgroundJob(Protocol):
    """A job that runs beside the script until stopped (`record_call`): `stop()` finishes it."""

    def stop(self) -> tuple[Path, float] | None: ...


@dataclass(frozen=True)
class VerbContext:
    interp: ScriptScopes
    play: Player
    blocking: Executor
    http: aiohttp.ClientSession | None  # None: `request` and SWML fetches fail, logged (services.py)
    dialer: Dialer
    recognizer: PromptRecognizer
    sidecar_runner: SidecarRunner
    options: SwmlOptions
    user_events: Callable[[str, dict[str, Any]], None] | None = None
    background: dict[str, BackgroundJob] = field(default_factory=dict)


Handler = Callable[[VerbContext, Call, Any], Awaitable[EffectResult | None]]


@dataclass(frozen=True, slots=True)
class KernelVerb:
    """A SWML verb the kernel executes, declared whole in one module of this package.

    `build(expander, verb)` turns the validated verb into an `effect` instance (a frozen
    dataclass with `path`, params expanded, SWML units converted; the swml builder helpers
    `expanded_params`, `integer`, `number`, `boolean`, `seconds_ms` raise `SwmlError` with the
    field's path); `handle(context, call, effect)` carries it out and returns the `VerbResult`
    whose variables the script sees. A module exports it as `VERB` (or several as `VERBS`) and
    kernel/verbs/registry.py finds it: the interpreter gets the builder, the executor the handler.
    """

    name: str  # the schema verb (swml.document.VERBS), not a control verb
    effect: type  # what `build` returns: the executor's dispatch key
    build: Builder
    handle: Handler
