"""Real UDP sockets on 127.0.0.1: RTP from anyone but the call's peer is not heard.

In process (an `RtpEndpoint` feeding a `MediaStream`): a third socket injects a loud tone into a
live call and none of it reaches the decoded inbound audio; a NATed peer is latched to and a
stranger is not. Against a `mediaserver serve` process: the injected packets are not counted as
received by the call, are counted as dropped on /metrics, and are logged once with the call id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from benchmarks.sipclient import SipCaller
from mediaserver.audio.frame import AudioFrame
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.rtp.packet import RtpPacket
from mediaserver.transport.udp import RtpEndpoint
from mscodecs import make_codec
from tests.support.server import ServerProcess

PCMU = make_codec("PCMU", 8000)
SILENCE = PCMU.encode(np.zeros(160, np.int16))
TONE = PCMU.encode((12000 * np.sin(np.arange(160) * 2 * np.pi * 1000 / 8000)).astype(np.int16))
PEER_SSRC = 0x1111
STRANGER_SSRC = 0x6666


@contextmanager
def udp_socket() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        yield sock


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.002)


def rtp(seq: int, ssrc: int, payload: bytes) -> bytes:
    return RtpPacket(0, seq, seq * 160, ssrc, payload).serialize()


async def test_injected_rtp_is_dropped_and_never_heard() -> None:
    with udp_socket() as peer, udp_socket() as stranger:
        endpoint = await RtpEndpoint.open("127.0.0.1", 0, peer.getsockname())  # the SDP named the peer
        endpoint.call_id = "inject-1"
        port = endpoint.endpoint.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        stream = MediaStream(MediaParams("PCMU", 0, 8000, None), "cname", rng=random.Random(1))
        endpoint.on_media = stream.receive_datagram
        heard: list[AudioFrame] = []
        stream.taps.inbound.subscribe(heard.append)

        async def arrived(packets: int) -> None:
            await until(lambda: stream.counters.packets_in + endpoint.source_dropped == packets)

        try:
            for i in range(80):
                peer.sendto(rtp(i, PEER_SSRC, SILENCE), ("127.0.0.1", port))
                # Inside the latching window with another SSRC, then after it with the peer's own.
                spoofed = STRANGER_SSRC if i < 55 else PEER_SSRC  # the window closes at 50
                stranger.sendto(rtp(i, spoofed, TONE), ("127.0.0.1", port))
                await arrived(2 * (i + 1))
                for datagram in stream.tick(i * 20_000_000, 0.0):
                    endpoint.send(datagram)
        finally:
            endpoint.close()
        assert stream.counters.packets_in == 80 and endpoint.source_dropped == 80
        assert endpoint.remote == peer.getsockname() and endpoint.latched
        assert stream.session.remote is not None and stream.session.remote.ssrc == PEER_SSRC
        assert len(heard) >= 70
        assert max(int(np.abs(f.pcm.astype(np.int32)).max()) for f in heard) < 100  # silence: no tone
        # What the call sends goes to its peer, never to the stranger.
        with pytest.raises(BlockingIOError):
            stranger.recv(2048)
        assert len(peer.recv(2048)) == 12 + 160


async def test_a_natted_peer_is_latched_and_logged_then_a_stranger_is_not(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mediaserver.transport.udp")
    with udp_socket() as announced, udp_socket() as natted, udp_socket() as stranger:
        # The SDP named `announced` (a private address); the packets come from `natted`.
        endpoint = await RtpEndpoint.open("127.0.0.1", 0, announced.getsockname())
        endpoint.call_id = "nat-1"
        port = endpoint.endpoint.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        received: list[bytes] = []
        endpoint.on_media = lambda data, _: received.append(data)
        try:
            natted.sendto(rtp(0, PEER_SSRC, SILENCE), ("127.0.0.1", port))
            await until(lambda: len(received) == 1)
            assert endpoint.remote == natted.getsockname()
            for i in range(1, 60):
                natted.sendto(rtp(i, PEER_SSRC, SILENCE), ("127.0.0.1", port))
                stranger.sendto(rtp(i, PEER_SSRC, TONE), ("127.0.0.1", port))
            announced.sendto(rtp(99, PEER_SSRC, TONE), ("127.0.0.1", port))
            await until(lambda: len(received) + endpoint.source_dropped == 60 + 60)
            endpoint.send(rtp(0, 0x9999, SILENCE))
            assert await asyncio.wait_for(asyncio.get_running_loop().sock_recv(natted, 2048), 2)
        finally:
            endpoint.close()
        assert len(received) == 60 and all(TONE not in data for data in received)
        assert endpoint.source_dropped == 60  # the stranger's 59 and the announced address's late one
        latches = [r for r in caplog.records if r.getMessage() == "RTP source latched"]
        assert len(latches) == 1
        latch = latches[0].__dict__
        assert latch["call_id"] == "nat-1"
        assert latch["old"] == f"127.0.0.1:{announced.getsockname()[1]}"
        assert latch["new"] == f"127.0.0.1:{natted.getsockname()[1]}"
        drops = [r for r in caplog.records if r.getMessage() == "RTP from an unexpected source dropped"]
        assert len(drops) == 1 and drops[0].__dict__["call_id"] == "nat-1"  # one line, not one a packet


def scrape_dropped(server: ServerProcess) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(r'^mediaserver_rtp_dropped_packets_total\{reason="foreign_source"\} (\S+)$', text, re.MULTILINE)
    assert match is not None, text
    return float(match.group(1))


async def test_a_live_calls_injected_rtp_is_not_received_and_is_counted(server: ServerProcess) -> None:
    dropped_before = scrape_dropped(server)
    caller = SipCaller(("127.0.0.1", server.sip_port), user="long", codec="PCMU")
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        assert caller.remote_rtp is not None
        with udp_socket() as stranger:
            # The caller's own audio first (the negotiated address and SSRC), then the stranger's
            # tone, during the latching window and after it, with made-up sequence numbers.
            send = asyncio.create_task(caller.send_audio(np.zeros(8000 * 3, np.int16)))  # 150 frames, 3 s
            await asyncio.sleep(0.3)
            for i in range(100):
                stranger.sendto(rtp(1000 + i, STRANGER_SSRC, TONE), caller.remote_rtp)
                await asyncio.sleep(0.02)
            await send
        await asyncio.sleep(0.2)
        assert (await caller.hangup()).status == 200
    finally:
        caller.close()
    server.wait_idle()
    ended = [r for r in server.records(caller.call_id) if r.get("event") == "call_ended"]
    assert ended and ended[0]["packets_in"] == 150  # the caller's frames, none of the stranger's
    assert scrape_dropped(server) - dropped_before == 100
    drops = [r for r in server.records(caller.call_id) if r.get("msg") == "RTP from an unexpected source dropped"]
    assert 1 <= len(drops) <= 2  # rate-limited: not one line a packet
    summary = [
        r
        for r in server.records(caller.call_id)
        if r.get("msg") == "RTP from unexpected sources dropped during the call"
    ]
    assert summary and summary[0]["dropped_total"] == 100
