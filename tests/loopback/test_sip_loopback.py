"""Real sockets on 127.0.0.1: our own raw-SIP caller against a `mediaserver serve` process."""

from __future__ import annotations

import asyncio
import socket

import numpy as np

from benchmarks.sipclient import SipCaller, parse_response
from tests.support.server import ServerProcess


def udp_exchange(server: ServerProcess, message: bytes, timeout: float = 3.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.sendto(message.replace(b"{port}", str(port).encode()), ("127.0.0.1", server.sip_port))
        return sock.recv(65535)


def request(method: str, extra: str = "", body: str = "", call_id: str = "lb-1") -> bytes:
    return (
        f"{method} sip:greeting@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK" + call_id + method + "\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:greeting@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\n{extra}Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def test_options_is_answered_with_allow(server: ServerProcess) -> None:
    response = parse_response(udp_exchange(server, request("OPTIONS")))
    assert response is not None and response.status == 200
    assert "INVITE" in response.headers["allow"] and "BYE" in response.headers["allow"]


def test_unknown_method_gets_501_with_allow(server: ServerProcess) -> None:
    response = parse_response(udp_exchange(server, request("FROBNICATE", call_id="lb-2")))
    assert response is not None and response.status == 501
    assert "INVITE" in response.headers["allow"]


def test_malformed_invite_gets_400_and_server_keeps_serving(server: ServerProcess) -> None:
    bad = request("INVITE", call_id="lb-3").replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE")
    response = parse_response(udp_exchange(server, bad))
    assert response is not None and response.status == 400
    assert "cseq" in response.reason.lower()
    ok = parse_response(udp_exchange(server, request("OPTIONS", call_id="lb-4")))
    assert ok is not None and ok.status == 200


async def test_greeting_call_rtp_numbering_and_server_hangup(server: ServerProcess) -> None:
    caller = SipCaller(("127.0.0.1", server.sip_port), user="greeting", codec="PCMU")
    await caller.open()
    try:
        final = await caller.call()
        assert final.status == 200, final.raw
        assert [r.status for r in caller.responses][:2] == [100, 180]
        await asyncio.wait_for(caller.bye_received.wait(), 30)  # SWML `hangup` after the greeting
    finally:
        caller.close()
    packets = [r.packet for r in caller.received]
    assert len(packets) > 100
    assert {p.ssrc for p in packets} == {packets[0].ssrc}
    assert {p.payload_type for p in packets} == {0}
    for a, b in zip(packets, packets[1:], strict=False):
        assert b.sequence == (a.sequence + 1) & 0xFFFF
        assert b.timestamp == (a.timestamp + 160) & 0xFFFFFFFF
    # The greeting starts with 0.5 s of silence in the same talkspurt, marked on its first packet.
    # Until the greeting is synthesized the call sends idle (silent) frames, unmarked: on a busy box
    # a few of them may go first, so the mark is looked for before the voice, not at packet 0.
    from mscodecs.g711 import ulaw_decode

    loud = [
        i
        for i, p in enumerate(packets)
        if np.abs(ulaw_decode(np.frombuffer(p.payload, np.uint8)).astype(np.int32)).max() > 2000
    ]
    marked = [i for i, p in enumerate(packets) if p.marker]
    assert loud and marked and marked[0] <= loud[0], (marked[:3], loud[:1])
    assert loud[0] - marked[0] >= 20  # the voice comes after the greeting's 0.5 s lead-in, same talkspurt
    assert all(
        not np.abs(ulaw_decode(np.frombuffer(p.payload, np.uint8)).astype(np.int32)).any() for p in packets[: marked[0]]
    )
    pcm, _ = caller.decoded_audio()
    assert np.abs(pcm.astype(np.int32)).max() > 2000  # the voice, not just silence
    health = server.wait_idle()
    assert health["rtp_ports_in_use"] == 0
    events = [r.get("event") for r in server.records(caller.call_id)]
    for expected in (
        "call_started",
        "sip_in",
        "sip_out",
        "verb_started",
        "audio_started",
        "audio_stopped",
        "hangup_requested",
        "call_ended",
    ):
        assert expected in events, expected


async def test_bye_from_caller_ends_call_and_frees_port(server: ServerProcess) -> None:
    caller = SipCaller(("127.0.0.1", server.sip_port), user="long", codec="PCMA")
    await caller.open()
    try:
        final = await caller.call()
        assert final.status == 200
        await asyncio.sleep(1.5)
        assert server.get("/health")["calls"] == 1
        assert server.get(f"/calls/{caller.call_id}")["state"] == "active"
        bye = await caller.hangup()
        assert bye.status == 200
        received = len(caller.received)
        assert received > 40
        await asyncio.sleep(0.5)
        assert len(caller.received) <= received + 2  # RTP stops with the call
    finally:
        caller.close()
    server.wait_idle()
    assert any(r.get("event") == "remote_hangup" for r in server.records(caller.call_id))


async def test_missing_file_is_logged_and_the_call_goes_on(server: ServerProcess) -> None:
    caller = SipCaller(("127.0.0.1", server.sip_port), user="broken", codec="PCMU")
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        await asyncio.wait_for(caller.bye_received.wait(), 30)
    finally:
        caller.close()
    records = server.records(caller.call_id)
    failed = [r for r in records if r.get("event") == "play_failed"]
    assert failed and "missing.wav" in failed[0]["error"]
    assert any(r.get("event") == "tts_first_audio" for r in records)


def test_options_over_tcp(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.sip_port), timeout=3) as sock:
        port = sock.getsockname()[1]
        message = request("OPTIONS", call_id="lb-tcp").replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        sock.sendall(message.replace(b"{port}", str(port).encode()))
        data = sock.recv(65535)
    response = parse_response(data)
    assert response is not None and response.status == 200
    assert response.headers["via"].startswith("SIP/2.0/TCP") and "rport=" in response.headers["via"]
