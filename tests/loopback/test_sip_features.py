"""SIP features against a real `mediaserver serve` over 127.0.0.1: unknown users, hold/resume by
re-INVITE, DTMF by INFO, and a flood of INVITEs answered with 503 while a live call keeps its audio."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.sipclient import SipCaller, SipResponse
from tests.support.server import REPO, ServerProcess


def write_config(tmp: Path, extra: str = "") -> Path:
    config = tmp / "sip.toml"
    config.write_text(
        f"""
[sip]
unknown_user = "reject"
route_header = "X-Route"
{extra}
[routes]
default = "{REPO / "config/swml/greeting.yaml"}"
[routes.users]
greeting = "{REPO / "config/swml/greeting.yaml"}"
long = "{REPO / "tests/fixtures/config/swml/long.yaml"}"
"""
    )
    return config


@pytest.fixture(scope="module")
def sip_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(write_config(tmp_path_factory.mktemp("sipcfg")), rtp_base=41000, log_level="INFO").start()
    try:
        yield proc
    finally:
        proc.stop()


async def reinvite(caller: SipCaller, direction: str, version: int) -> SipResponse:
    sdp = (
        caller.offer_sdp()
        .replace(b"a=sendrecv", f"a={direction}".encode())
        .replace(b"o=- 1 1", f"o=- 1 {version}".encode())
    )
    cseq = caller._cseq = caller._cseq + 1
    caller.send_raw(caller._request("INVITE", sdp, cseq=cseq))
    while True:
        response = await caller.next_response()
        if response.status >= 200:
            caller.send_raw(caller._request("ACK", cseq=cseq))
            return response


async def test_unknown_user_gets_404_when_configured(sip_server: ServerProcess) -> None:
    caller = SipCaller(("127.0.0.1", sip_server.sip_port), user="nobody-here")
    await caller.open()
    try:
        assert (await caller.call()).status == 404
    finally:
        caller.close()


async def test_route_header_picks_the_document(sip_server: ServerProcess) -> None:
    caller = SipCaller(("127.0.0.1", sip_server.sip_port), user="nobody-here")
    await caller.open()
    try:
        caller.send_raw(caller._request("INVITE", caller.offer_sdp(), extra="X-Route: <sip:long@example.com>\r\n"))
        while (response := await caller.next_response()).status < 200:
            pass
        assert response.status == 200  # routed by the header, though the called user is unknown
        caller.remote_tag = re.search(r";tag=([^;>\s]+)", response.headers["to"]).group(1)  # type: ignore[union-attr]
        caller.send_raw(caller._request("ACK", cseq=caller._cseq))
        assert (await caller.hangup()).status == 200
    finally:
        caller.close()
    started = [r for r in sip_server.records(caller.call_id) if r.get("event") == "call_started"]
    assert started and started[0]["document"] == "long"  # the route's name, not the file's path


async def test_digest_auth_on_a_real_server(tmp_path: Path) -> None:
    from mssip.digest import answer_challenge, parse_challenge

    extra = '[sip.users]\nalice = "wonder-land"\n'
    server = ServerProcess(write_config(tmp_path, extra), rtp_base=41300, log_level="INFO").start()
    caller = SipCaller(("127.0.0.1", server.sip_port), user="long")
    await caller.open()
    try:
        assert (await caller.call()).status == 401
        challenge = parse_challenge(caller.responses[-1].headers["www-authenticate"])
        uri = f"sip:long@127.0.0.1:{server.sip_port}"
        for password, expected in (("wrong", 403), ("wonder-land", 200)):
            creds = answer_challenge(
                challenge, method="INVITE", uri=uri, username="alice", password=password, cnonce="abc"
            )
            caller._cseq += 1
            caller.send_raw(
                caller._request(
                    "INVITE", caller.offer_sdp(), to_tag=False, extra=f"Authorization: {creds.header_value()}\r\n"
                )
            )
            while (response := await caller.next_response()).status < 200:
                pass
            assert response.status == expected
            caller.remote_tag = re.search(r";tag=([^;>\s]+)", response.headers["to"]).group(1)  # type: ignore[union-attr]
            caller.send_raw(caller._request("ACK", cseq=caller._cseq))
        assert (await caller.hangup()).status == 200
    finally:
        caller.close()
        server.stop()


async def test_hold_resume_and_info_dtmf(sip_server: ServerProcess) -> None:
    caller = SipCaller(("127.0.0.1", sip_server.sip_port), user="long")
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        await asyncio.sleep(1.0)
        assert len(caller.received) > 20
        held = await reinvite(caller, "sendonly", 2)
        assert held.status == 200 and "a=recvonly" in held.body.decode()
        await asyncio.sleep(0.3)  # packets already in flight
        count = len(caller.received)
        await asyncio.sleep(1.0)
        assert len(caller.received) == count  # we hold: no RTP toward a caller who put us on hold
        resumed = await reinvite(caller, "sendrecv", 3)
        assert resumed.status == 200 and "a=sendrecv" in resumed.body.decode()
        await asyncio.sleep(1.0)
        assert len(caller.received) > count + 20
        packets = [r.packet for r in caller.received]
        assert {p.ssrc for p in packets} == {packets[0].ssrc}
        for body in ("Signal=5\r\nDuration=160\r\n", "Signal=#\r\nDuration=100\r\n"):
            info = caller._request("INFO", body.encode()).replace(b"application/sdp", b"application/dtmf-relay")
            caller.send_raw(info)
            assert (await caller.next_response()).status == 200
        assert (await caller.hangup()).status == 200
    finally:
        caller.close()
    sip_server.wait_idle()
    records = sip_server.records(caller.call_id)
    assert [r["digit"] for r in records if r.get("event") == "dtmf"] == ["5", "#"]
    assert [r.get("event") for r in records if r.get("event") in ("held", "resumed")] == ["held", "resumed"]


class _Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.retry_after: set[str] = set()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        match = re.match(rb"SIP/2.0 (\d{3})", data)
        if match:
            self.statuses.append(int(match.group(1)))
            retry = re.search(rb"\r\nRetry-After: *(\d+)", data)
            if retry:
                self.retry_after.add(retry.group(1).decode())


def flood_invite(i: int, port: int, server_port: int) -> bytes:
    return (
        f"INVITE sip:long@127.0.0.1:{server_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKflood{i};rport\r\nMax-Forwards: 70\r\n"
        f"From: <sip:flood@127.0.0.1>;tag=f{i}\r\nTo: <sip:long@127.0.0.1>\r\nCall-ID: flood-{i}@test\r\n"
        f"CSeq: 1 INVITE\r\nContact: <sip:flood@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def test_flood_gets_503_and_the_live_call_keeps_its_audio(tmp_path: Path) -> None:
    extra = "[sip.security]\nrate_limit_per_s = 10\nrate_limit_burst = 20\n"
    server = ServerProcess(write_config(tmp_path, extra), rtp_base=41200, log_level="INFO").start()
    loop = asyncio.get_running_loop()
    caller = SipCaller(("127.0.0.1", server.sip_port), user="long")
    await caller.open()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    transport, counter = await loop.create_datagram_endpoint(_Counter, sock=sock)
    try:
        assert (await caller.call()).status == 200
        await asyncio.sleep(1.0)
        first = len(caller.received)
        port = sock.getsockname()[1]
        for burst in range(20):  # 2,000 INVITEs within one second: 100 every 50 ms
            for i in range(100):
                transport.sendto(flood_invite(burst * 100 + i, port, server.sip_port), ("127.0.0.1", server.sip_port))
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        bye = await caller.hangup()
        assert bye.status == 200  # in-dialog requests pass the limiter
    finally:
        transport.close()
        caller.close()
        server.stop()
    statuses = counter.statuses
    assert statuses.count(503) >= 1900, {s: statuses.count(s) for s in set(statuses)}
    assert counter.retry_after and all(int(v) >= 1 for v in counter.retry_after)
    # The live call's RTP across the flood: every packet, in order, 20 ms of timestamp apart.
    packets = [r.packet for r in caller.received]
    assert len(packets) - first > 100
    for a, b in zip(packets, packets[1:], strict=False):
        assert b.sequence == (a.sequence + 1) & 0xFFFF
        assert b.timestamp == (a.timestamp + 160) & 0xFFFFFFFF
