"""The SIP front end asks the endpoint for its timer once per loop pass, never after a datagram
the endpoint handled statelessly, and logs flood-class refusals at DEBUG (issue 17)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from mediaserver.signaling.sip import SipFrontEnd
from mediaserver.signaling.sip_options import SipAccess, SipOptions
from mediaserver.transport.ports import PortPool
from mssip import events as sip_events
from tests.unit.sip.sipkit import Phone

FLOODER = ("203.0.113.9", 5060)


def front_end(rate_limit_per_s: int = 1) -> tuple[SipFrontEnd, list[float | None]]:
    options = SipOptions(
        host="127.0.0.1",
        port=5060,
        contact_host="127.0.0.1",
        user_agent="test",
        codecs=("PCMU",),
        access=SipAccess(rate_limit_per_s=rate_limit_per_s, rate_limit_burst=1),
    )
    kernel: Any = SimpleNamespace(draining=False, dialer=None)
    front = SipFrontEnd(options, kernel, PortPool(40000, 40010))  # no sockets: _udp stays None
    scans: list[float | None] = []
    endpoint_get_timer = front.endpoint.get_timer

    def counted() -> float | None:
        scans.append(endpoint_get_timer())
        return scans[-1]

    front.endpoint.get_timer = counted  # type: ignore[method-assign]
    return front, scans


async def test_a_burst_is_one_timer_scan_and_a_rate_limited_flood_none() -> None:
    front, scans = front_end()
    front._loop = asyncio.get_running_loop()
    for n in range(3):  # three sources, each within its rate: three new transactions in one pass
        front._on_udp(Phone(call_id=f"ok{n}", host=f"10.0.0.{n}").request("OPTIONS", cseq=1), (f"10.0.0.{n}", 5060))
    await asyncio.sleep(0)
    assert len(scans) == 1  # one pass, one scan
    assert front._timer_at == scans[0] is not None  # Timer J of the OPTIONS transactions is armed
    first = front._timer_at
    for n in range(50):  # the same source, far over its rate: stateless 503s
        front._on_udp(Phone(call_id=f"flood{n}").request("OPTIONS", cseq=1), FLOODER)
    front._on_udp(b"\r\n\r\n", FLOODER)
    front._on_udp(b"\x00\x01 garbage", FLOODER)
    await asyncio.sleep(0)
    assert len(scans) == 2  # the flooder's first OPTIONS passed (burst 1); the other 52 cost no scan
    assert front._timer_at == first
    await front.stop()


async def test_commands_still_rearm() -> None:
    front, scans = front_end()
    front._loop = asyncio.get_running_loop()
    registrar = ("192.0.2.50", 5060)
    front.command(
        lambda now: front.endpoint.register("sip:reg.example.com", aor="sip:u@reg.example.com", addr=registrar, now=now)
    )
    await asyncio.sleep(0)
    assert len(scans) == 1
    assert front._timer_at == front.endpoint.get_timer() is not None  # the REGISTER's Timer E
    await front.stop()


@pytest.mark.parametrize(("status", "level"), [(405, logging.DEBUG), (501, logging.DEBUG), (400, logging.DEBUG),
                                               (503, logging.DEBUG), (415, logging.WARNING)])  # fmt: skip
def test_flood_class_refusals_log_at_debug(status: int, level: int, caplog: pytest.LogCaptureFixture) -> None:
    front, _ = front_end()
    caplog.set_level(logging.DEBUG, logger="mediaserver.signaling.sip")
    front._handle(sip_events.MessageRejected(status, "x", FLOODER, "REGISTER", "c1"))
    assert [r.levelno for r in caplog.records if r.message == "SIP request refused"] == [level]


async def test_a_burst_of_invites_is_set_up_one_call_at_a_time() -> None:
    """A burst read in one loop pass is set up one call per pass (`_setup_gate`), so the media
    ticks run between call setups instead of after all of them."""
    front, _ = front_end(rate_limit_per_s=1000)
    front._loop = asyncio.get_running_loop()
    inside: list[str] = []
    overlaps: list[tuple[str, ...]] = []

    async def set_up(invite: Any, document: Any) -> None:
        inside.append(invite.call_id)
        overlaps.append(tuple(inside))
        await asyncio.sleep(0)  # a setup awaits (its RTP socket): another must not start meanwhile
        inside.remove(invite.call_id)

    async def resolve(invite: Any) -> object:
        return object()

    front._set_up = set_up  # type: ignore[method-assign]
    front._resolve = resolve  # type: ignore[method-assign]
    invites: list[Any] = [SimpleNamespace(call_id=f"c{n}") for n in range(5)]  # what _start_call reads
    await asyncio.gather(*(front._start_call(invite) for invite in invites))
    assert overlaps == [(f"c{n}",) for n in range(5)]  # never two at once, in arrival order
    await front.stop()
