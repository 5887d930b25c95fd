"""Which leg is the agent's: a `Dialer` wrapper that tells the sidecar manager about bridges.

Theory of operation: the sidecar listens to the customer on its own call's inbound audio and to
the agent on the bridged leg's inbound audio, so it has to learn which leg `connect` bridged.
`ObservedDialer` wraps the real `Dialer` (the kernel's `DialerPort` wraps what the SIP front
end binds with it) and passes `dial` and `refer` through untouched; it is a `Dialer` and
nothing more. `bridge(a, b)` starts the real bridge as a task and reports `bridged(a, b)`
from a callback queued right after that task's first step, so the sidecar starts listening
to the agent's leg as the bridge starts. The bridge and the sidecar's transcribers each hold
their own subscriptions to the legs' taps: neither disturbs the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from mediaserver.kernel.services import Dialer, DialResult

if TYPE_CHECKING:
    from mediaserver.kernel.call import Call

__all__ = ["ObservedDialer"]


class ObservedDialer:
    def __init__(self, inner: Dialer, on_bridge: Callable[[Call, Call], None]) -> None:
        self.inner = inner
        self.on_bridge = on_bridge

    async def dial(
        self,
        origin: Call,
        to: str,
        *,
        from_: str | None = None,
        timeout_s: float = 60.0,
        headers: Mapping[str, str] | None = None,
        codecs: list[str] | None = None,
    ) -> DialResult:
        return await self.inner.dial(origin, to, from_=from_, timeout_s=timeout_s, headers=headers, codecs=codecs)

    async def bridge(self, a: Call, b: Call) -> str:
        task = asyncio.ensure_future(self.inner.bridge(a, b))
        # Queued after the task's first step: by then the media bridge is relaying.
        asyncio.get_running_loop().call_soon(self.on_bridge, a, b)
        return await task

    async def refer(self, call: Call, to_uri: str) -> int:
        return await self.inner.refer(call, to_uri)
