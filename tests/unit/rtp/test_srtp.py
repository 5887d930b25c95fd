"""SRTP on a call's real media path: a MediaStream's packets leave an SRTP RtpEndpoint protected
(what a capture of the socket sees) and the peer's protected packets reach the stream decrypted;
forged or plain packets are dropped without latching."""

from __future__ import annotations

import asyncio
import os
import socket

import numpy as np
import pytest

from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.rtp.packet import RtpPacket
from mediaserver.rtp.srtp import AUTH_TAG_BYTES, SrtpError, SrtpSession
from mediaserver.transport.udp import RtpEndpoint
from mscodecs import make_codec

SUITES = list(AUTH_TAG_BYTES)


def pair(suite: str) -> tuple[SrtpSession, SrtpSession]:
    ours, theirs = os.urandom(30), os.urandom(30)
    return SrtpSession(suite, ours, theirs), SrtpSession(suite, theirs, ours)


@pytest.mark.parametrize("suite", SUITES)
def test_protect_unprotect_rtp_and_rtcp(suite: str) -> None:
    server, peer = pair(suite)
    packet = RtpPacket(0, 1, 160, 0x1234, b"\xff" * 160).serialize()
    wire = server.protect(packet)
    assert len(wire) == len(packet) + AUTH_TAG_BYTES[suite]
    assert wire[:12] == packet[:12] and wire[12:172] != packet[12:]  # header in clear, payload not
    assert peer.unprotect(wire) == packet
    with pytest.raises(SrtpError):
        peer.unprotect(wire)  # a replay
    rtcp = bytes([0x80, 200, 0, 6]) + (0x1234).to_bytes(4, "big") + bytes(20)  # an empty sender report
    srtcp = server.protect(rtcp)
    assert len(srtcp) == len(rtcp) + 14  # E-flag/index (4) + 80-bit tag, whatever the suite
    assert peer.unprotect(srtcp) == rtcp


def test_wrong_key_or_suite_is_refused() -> None:
    server, _ = pair("AES_CM_128_HMAC_SHA1_80")
    stranger, _ = pair("AES_CM_128_HMAC_SHA1_80")
    wire = server.protect(RtpPacket(0, 1, 160, 7, b"\x00" * 160).serialize())
    with pytest.raises(SrtpError):
        stranger.unprotect(wire)
    with pytest.raises(ValueError):
        SrtpSession("AES_256_CM_HMAC_SHA1_80", os.urandom(30), os.urandom(30))


def test_rekey_inbound_takes_the_new_key() -> None:
    server, peer = pair("AES_CM_128_HMAC_SHA1_32")
    new_peer = SrtpSession(peer.suite, os.urandom(30), server.local_key)
    packet = RtpPacket(0, 5, 800, 9, b"\x7f" * 160).serialize()
    with pytest.raises(SrtpError):
        server.unprotect(new_peer.protect(packet))
    server.rekey_inbound(new_peer.local_key)
    assert server.unprotect(new_peer.protect(RtpPacket(0, 6, 960, 9, b"\x7f" * 160).serialize()))[12:] == packet[12:]


async def test_media_stream_over_an_srtp_endpoint() -> None:
    suite = "AES_CM_128_HMAC_SHA1_80"
    server_keys, peer = pair(suite)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as capture:
        capture.bind(("127.0.0.1", 0))
        capture.setblocking(False)
        rtp = await RtpEndpoint.open("127.0.0.1", 0, capture.getsockname())
        port = rtp.endpoint.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        rtp.srtp = server_keys
        stream = MediaStream(MediaParams("PCMU", 0, 8000, None), "cname")
        rtp.on_media = stream.receive_datagram
        loop = asyncio.get_running_loop()
        try:
            tone = (8000 * np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000)).astype(np.int16)
            stream.enqueue(tone, 8000)
            plain = []
            for i in range(5):
                for datagram in stream.tick(i * 20_000_000, 0.0):
                    plain.append(datagram)
                    rtp.send(datagram)
            wire = [await asyncio.wait_for(loop.sock_recv(capture, 2048), 2) for _ in plain]
            # On the wire: the same headers, 10 more bytes, and not one µ-law payload in clear.
            for sent, seen in zip(plain, wire, strict=True):
                assert len(seen) == len(sent) + 10 and seen[:12] == sent[:12]
                assert sent[12:] not in seen
                assert peer.unprotect(seen) == sent

            # The peer's protected packet reaches the stream decrypted and latches the address.
            mulaw = make_codec("PCMU", 8000).encode(tone[:160])
            good = peer.protect(RtpPacket(0, 100, 16000, 0xBEEF, mulaw).serialize())
            forged = bytearray(peer.protect(RtpPacket(0, 101, 16160, 0xBEEF, mulaw).serialize()))
            forged[20] ^= 0x01
            plain_packet = RtpPacket(0, 102, 16320, 0xBEEF, mulaw).serialize()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
                attacker.sendto(bytes(forged), ("127.0.0.1", port))
                attacker.sendto(plain_packet, ("127.0.0.1", port))
                await _until(lambda: rtp.srtp_dropped == 2)
                assert stream.counters.packets_in == 0 and not rtp.latched
            await loop.sock_sendto(capture, good, ("127.0.0.1", port))
            await _until(lambda: stream.counters.packets_in == 1)
            assert rtp.latched and rtp.remote == capture.getsockname() and stream.counters.bad_packets == 0
        finally:
            rtp.close()


async def _until(condition: object, timeout: float = 2.0) -> None:
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
