"""`connect` and `sip_refer` through the kernel's `Dialer` (the SIP B2BUA).

Theory of operation: `connect` dials `to` (or the first device of serial / parallel lists,
tried in order until one answers), then bridges the two legs until one side hangs up; the
script then goes on (SWML continues after a bridge). Results: connect_result connected |
failed, connect_failed_reason, connect_sip_status. `sip_refer` asks the dialer for a blind
transfer: sip_refer_result success | failed, sip_refer_response_code. The dialer is always
there: on a server without outbound SIP it is `NoDialer` (kernel/services.py), which logs
`verb_unsupported` and answers "not answered" (status 0), so both verbs report failed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mediaserver.events import ConnectDialed, SipReferDone
from mediaserver.kernel.call import Call
from mediaserver.kernel.verbs.context import VerbContext
from mediaserver.swml.effects import Connect, SipRefer, VerbResult


def _devices(params: dict[str, Any]) -> list[dict[str, Any]]:
    if "to" in params:
        return [params]
    found: list[dict[str, Any]] = []
    for key in ("serial", "parallel"):
        for device in params.get(key, []) or []:
            if isinstance(device, dict) and "to" in device:
                found.append({**params, **device})
    for group in params.get("serial_parallel", []) or []:
        for device in group if isinstance(group, list) else []:
            if isinstance(device, dict) and "to" in device:
                found.append({**params, **device})
    return found


async def connect(ctx: VerbContext, call: Call, effect: Connect) -> VerbResult:
    status, reason = 0, "no device to dial"
    for device in _devices(effect.params):
        headers = {h["name"]: str(h["value"]) for h in device.get("headers", []) if isinstance(h, dict) and "name" in h}
        codecs = device.get("codecs")
        outcome = await ctx.dialer.dial(
            call,
            str(device["to"]),
            from_=device.get("from"),
            timeout_s=float(device.get("timeout", 60)),
            headers=headers or None,
            codecs=codecs.split(",") if isinstance(codecs, str) else None,
        )
        status, reason = outcome.status, outcome.reason
        call.events.emit(ConnectDialed(path=effect.path, to=device["to"], status=status, reason=reason))
        if outcome.answered and outcome.leg is not None:
            try:
                ended_by = await ctx.dialer.bridge(call, outcome.leg)
            except asyncio.CancelledError:
                # An agent's transfer took the caller elsewhere (kernel/inline.py), or the call
                # ended: the outbound leg never outlives its bridge.
                outcome.leg.hangup(reason="bridge cancelled")
                raise
            return VerbResult(
                {
                    "connect_result": "connected",
                    "connect_sip_status": status,
                    "connect_ended_by": ended_by,
                    **outcome.variables,
                }
            )
    return VerbResult({"connect_result": "failed", "connect_failed_reason": reason, "connect_sip_status": status})


async def sip_refer(ctx: VerbContext, call: Call, effect: SipRefer) -> VerbResult:
    status = await ctx.dialer.refer(call, effect.to_uri)
    call.events.emit(SipReferDone(path=effect.path, to=effect.to_uri, status=status))
    return VerbResult(
        {"sip_refer_result": "success" if 200 <= status < 300 else "failed", "sip_refer_response_code": status}
    )
