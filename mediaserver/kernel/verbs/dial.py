"""`connect` and `sip_refer` through the kernel's `Dialer` (the SIP B2BUA); none: unsupported.

Theory of operation: `connect` dials `to` (or the first device of serial / parallel lists,
tried in order until one answers), then bridges the two legs until one side hangs up; the
script then goes on (SWML continues after a bridge). Results: connect_result connected |
failed, connect_failed_reason, connect_sip_status. `sip_refer` asks the dialer for a blind
transfer: sip_refer_result success | failed, sip_refer_response_code. With no dialer (a
server without outbound SIP) both log `verb_unsupported` and report failed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mediaserver.kernel.call import Call
from mediaserver.swml.effects import Connect, SipRefer, VerbResult

if TYPE_CHECKING:
    from mediaserver.kernel.executor import SwmlExecutor


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


async def connect(ex: SwmlExecutor, call: Call, effect: Connect) -> VerbResult:
    if ex.dialer is None:
        call.events.record(
            "verb_unsupported",
            level=logging.WARNING,
            verb="connect",
            path=effect.path,
            reason="no dialer (outbound SIP) configured",
        )
        return VerbResult({"connect_result": "failed", "connect_failed_reason": "unsupported"})
    status, reason = 0, "no device to dial"
    for device in _devices(effect.params):
        headers = {h["name"]: str(h["value"]) for h in device.get("headers", []) if isinstance(h, dict) and "name" in h}
        codecs = device.get("codecs")
        outcome = await ex.dialer.dial(
            call,
            str(device["to"]),
            from_=device.get("from"),
            timeout_s=float(device.get("timeout", 60)),
            headers=headers or None,
            codecs=codecs.split(",") if isinstance(codecs, str) else None,
        )
        status, reason = outcome.status, outcome.reason
        call.events.record("connect_dialed", path=effect.path, to=device["to"], status=status, reason=reason)
        if outcome.answered and outcome.leg is not None:
            ended_by = await ex.dialer.bridge(call, outcome.leg)
            return VerbResult(
                {
                    "connect_result": "connected",
                    "connect_sip_status": status,
                    "connect_ended_by": ended_by,
                    **outcome.variables,
                }
            )
    return VerbResult({"connect_result": "failed", "connect_failed_reason": reason, "connect_sip_status": status})


async def sip_refer(ex: SwmlExecutor, call: Call, effect: SipRefer) -> VerbResult:
    if ex.dialer is None:
        call.events.record(
            "verb_unsupported",
            level=logging.WARNING,
            verb="sip_refer",
            path=effect.path,
            reason="no dialer (SIP REFER) configured",
        )
        return VerbResult({"sip_refer_result": "failed", "sip_refer_response_code": 0})
    status = await ex.dialer.refer(call, effect.to_uri)
    call.events.record("sip_refer_done", path=effect.path, to=effect.to_uri, status=status)
    return VerbResult(
        {"sip_refer_result": "success" if 200 <= status < 300 else "failed", "sip_refer_response_code": status}
    )
