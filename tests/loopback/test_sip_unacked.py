"""An INVITE whose 200 OK is not ACKed gets no media (a flood of them must not load the media
clock): a real `mediaserver serve` answers, resends its 200 OK (RFC 3261 §13.3.1.4), and sends no
RTP or RTCP to the offered port until the ACK comes; then its media starts at once."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import pytest

from benchmarks.sipclient import Addr, SipCaller, SipResponse
from tests.support.server import ServerProcess

WAIT = """
sections:
  main:
    - answer: {}
    - sleep: -1
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("unacked")
    (tmp / "wait.yaml").write_text(WAIT)
    config = tmp / "unacked.toml"
    config.write_text('[routes]\ndefault = "wait.yaml"\n')
    proc = ServerProcess(config, rtp_base=43500, log_level="INFO").start()
    try:
        yield proc
    finally:
        proc.stop()


def count_datagrams(caller: SipCaller) -> tuple[list[bytes], asyncio.Event]:
    """Every datagram (RTP and RTCP) that reaches the caller's offered media port, and an event
    set at the first."""
    seen: list[bytes] = []
    first = asyncio.Event()
    recorder = caller._rtp
    record = recorder.datagram_received

    def counted(data: bytes, addr: Addr) -> None:
        seen.append(data)
        first.set()
        record(data, addr)

    recorder.datagram_received = counted  # type: ignore[method-assign]
    return seen, first


async def final_responses(caller: SipCaller, until: float) -> list[SipResponse]:
    """The final responses to our INVITE that arrive before the monotonic time `until`."""
    finals: list[SipResponse] = []
    while (left := until - time.monotonic()) > 0:
        try:
            response = await caller.next_response(left)
        except TimeoutError:
            break
        if response.status >= 200:
            finals.append(response)
    return finals


async def test_no_media_until_the_ack_then_media_at_once(server: ServerProcess) -> None:
    caller = SipCaller(("127.0.0.1", server.sip_port), user="wait", codec="PCMU")
    await caller.open()
    media, media_came = count_datagrams(caller)
    try:
        branch = f"z9hG4bK{random.getrandbits(48):012x}"
        caller.send_raw(caller._request("INVITE", caller.offer_sdp(), cseq=1, branch=branch))
        ok = await caller.next_response(10)
        while ok.status < 200:
            ok = await caller.next_response(10)
        assert ok.status == 200, ok.raw
        answered = time.monotonic()
        # T1 = 0.5 s: the 200 OK comes again within the next 1.2 s; no media comes with it.
        again = await final_responses(caller, answered + 1.2)
        assert again and {r.status for r in again} == {200}
        assert media == []
        assert server.get("/health")["calls"] == 1
        caller.remote_tag = ok.headers["to"].split(";tag=")[1].split(";")[0].strip()
        caller.send_raw(caller._request("ACK", cseq=1))
        await asyncio.wait_for(media_came.wait(), 3)  # the next tick sends: 20 ms, on a busy box more
        assert caller.received, "the first datagrams after the ACK are RTP"
        await caller.hangup()
    finally:
        caller.close()
    server.wait_idle()
    confirmed = [r for r in server.records(caller.call_id) if r.get("event") == "media_confirmed"]
    assert [r["reason"] for r in confirmed] == ["ack"]
