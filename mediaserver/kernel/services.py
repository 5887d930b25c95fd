"""Seams between the kernel and the engines and front ends that plug into it.

The SWML executor calls an `AiRunner` for the `ai` verb and a `Dialer` for `connect`,
`transfer` to a SIP address, and `sip_refer`; the app wires concrete implementations in. Both
are Protocols so that scenario tests can pass fakes and so that the AI loop and the SIP stack
can grow independently of the executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mediaserver.swml.effects import Ai, AiFinished

if TYPE_CHECKING:
    from mediaserver.kernel.call import Call


class AiRunner(Protocol):
    async def __call__(self, call: Call, effect: Ai, variables: Mapping[str, Any]) -> AiFinished:
        """Run the voice agent on the call until it ends (hangup, stop action, transfer…)."""
        ...


class SidecarRunner(Protocol):
    async def __call__(self, call: Call, params: Any, variables: Mapping[str, Any]) -> str:
        """Attach an `ai_sidecar` to the call and return at once: "+OK started" or "-ERR: …"."""
        ...


@dataclass
class DialResult:
    answered: bool
    status: int  # final SIP status (200 when answered, 486 busy, 408 timeout, 487 cancelled…)
    reason: str
    leg: Call | None = None  # the answered outbound leg, a Call of its own
    variables: dict[str, Any] = field(default_factory=dict)


class Dialer(Protocol):
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
        """Place an outbound leg for `origin` (SWML connect); the leg is not bridged yet."""
        ...

    async def bridge(self, a: Call, b: Call) -> str:
        """Relay media both ways (transcoding if needed) until one side hangs up; returns its call_id."""
        ...

    async def refer(self, call: Call, to_uri: str) -> int:
        """Blind transfer by SIP REFER; returns the final status reported by NOTIFY (or the REFER's)."""
        ...
