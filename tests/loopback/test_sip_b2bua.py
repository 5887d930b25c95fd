"""The server as a B2BUA over 127.0.0.1: SWML `connect` dials a second party (a scripted UAS in
this test), bridges the two calls with transcoding (PCMU caller, PCMA callee) and each side hears
the other's real speech; `sip_refer` sends REFER and follows the NOTIFY sipfrag to success."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmarks.sipclient import SipCaller
from mediaserver.rtp.packet import RtpPacket, is_rtcp
from mscodecs import make_codec
from tests.support.server import REPO, ServerProcess
from tests.support.speech import contains_words, read_wav, synthesize_espeak, transcribe, write_wav

pytestmark = pytest.mark.slow

GREETING = REPO / "config/swml/greeting.yaml"
CALLER_SAYS = "please bring the yellow package tomorrow morning"
CALLEE_SAYS = "the green window is open on the seventh floor"


class Callee(asyncio.DatagramProtocol):
    """A scripted UAS: answers with PCMA, says its sentence over RTP, records, then hangs up."""

    def __init__(self, speech: np.ndarray) -> None:
        self.speech = speech
        self.transport: asyncio.DatagramTransport | None = None
        self.invite = b""
        self.peer: tuple[str, int] = ("", 0)
        self.received: list[RtpPacket] = []
        self.acked = asyncio.Event()
        self.bye_answered = asyncio.Event()
        self.codec = make_codec("PCMA")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if data.startswith(b"INVITE"):
            self.invite, self.peer = data, addr
            sdp = (
                f"v=0\r\no=- 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {self.rtp_port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"
            ).encode()
            self.transport.sendto(self._response(data, "100 Trying"), addr)
            self.transport.sendto(self._response(data, "200 OK", sdp), addr)
            self.remote_rtp = _media_addr(data)
        elif data.startswith(b"ACK"):
            self.acked.set()
        elif data.startswith(b"SIP/2.0 200") and b" BYE" in data:
            self.bye_answered.set()

    def _response(self, request: bytes, status: str, body: bytes = b"") -> bytes:
        head = request.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
        keep = [h for h in head if h.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq")]
        keep = [h + ";tag=callee" if h.lower().startswith("to:") else h for h in keep]
        extra = [f"Contact: <sip:bob@127.0.0.1:{self.sip_port}>"]
        if body:
            extra.append("Content-Type: application/sdp")
        lines = [f"SIP/2.0 {status}", *keep, *extra, f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def bye(self) -> bytes:
        head = self.invite.split(b"\r\n\r\n")[0].decode()
        from_ = re.search(r"^From: (.*)$", head, re.M | re.I).group(1)  # type: ignore[union-attr]
        call_id = re.search(r"^Call-ID: (.*)$", head, re.M | re.I).group(1)  # type: ignore[union-attr]
        return (
            f"BYE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{self.sip_port};branch=z9hG4bKcb1\r\n"
            f"From: <sip:bob@127.0.0.1>;tag=callee\r\nTo: {from_}\r\nCall-ID: {call_id}\r\nCSeq: 2 BYE\r\n"
            f"Content-Length: 0\r\n\r\n"
        ).encode()


class RtpSink(asyncio.DatagramProtocol):
    def __init__(self, callee: Callee) -> None:
        self.callee = callee

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not is_rtcp(data):
            self.callee.received.append(RtpPacket.parse(data))


def _media_addr(sdp: bytes) -> tuple[str, int]:
    text = sdp.decode(errors="replace")
    host = re.search(r"^c=IN IP4 (\S+)", text, re.M)
    port = re.search(r"^m=audio (\d+)", text, re.M)
    assert host and port, text
    return host.group(1), int(port.group(1))


def speech_8k(text: str, tmp: Path) -> np.ndarray:
    samples, _ = read_wav(synthesize_espeak(text, tmp / f"{len(text)}.wav", 8000))
    return (samples[:, 0] * 32767 * 0.8).astype(np.int16) if samples.ndim == 2 else (samples * 26000).astype(np.int16)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("b2bua")


async def test_connect_bridges_both_ways_with_transcoding(workdir: Path) -> None:
    loop = asyncio.get_running_loop()
    callee = Callee(speech_8k(CALLEE_SAYS, workdir))
    sip_t, _ = await loop.create_datagram_endpoint(lambda: callee, local_addr=("127.0.0.1", 0))
    callee.sip_port = sip_t.get_extra_info("sockname")[1]
    rtp_t, _ = await loop.create_datagram_endpoint(lambda: RtpSink(callee), local_addr=("127.0.0.1", 0))
    callee.rtp_port = rtp_t.get_extra_info("sockname")[1]
    flow = workdir / "connect.yaml"
    flow.write_text(
        "sections:\n  main:\n    - answer: {}\n    - connect:\n"
        f'        to: "sip:bob@127.0.0.1:{callee.sip_port}"\n    - hangup: {{}}\n'
    )
    config = workdir / "b2bua.toml"
    config.write_text(f'[routes]\ndefault = "{GREETING}"\n[routes.users]\nbridge = "{flow}"\n')
    server = ServerProcess(config, rtp_base=41400, log_level="INFO").start()
    caller = SipCaller(("127.0.0.1", server.sip_port), user="bridge", codec="PCMU")
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        await asyncio.wait_for(callee.acked.wait(), 10)
        codec = make_codec("PCMA")
        seq, ts = random.getrandbits(16), 0
        start = time.monotonic()
        caller_task = asyncio.create_task(caller.send_audio(speech_8k(CALLER_SAYS, workdir)))
        speech = callee.speech
        for i in range(0, len(speech) - 159, 160):  # the callee talks at the same time, paced 20 ms
            packet = RtpPacket(8, seq, ts, 1234, codec.encode(speech[i : i + 160]), marker=i == 0)
            rtp_t.sendto(packet.serialize(), callee.remote_rtp)
            seq, ts = (seq + 1) & 0xFFFF, ts + 160
            await asyncio.sleep(max(0.0, start + (i // 160 + 1) * 0.02 - time.monotonic()))
        await caller_task
        await asyncio.sleep(1.0)
        sip_t.sendto(callee.bye(), callee.peer)  # the callee hangs up: the SWML script goes on to hangup
        await asyncio.wait_for(caller.bye_received.wait(), 10)
    finally:
        caller.close()
        sip_t.close()
        rtp_t.close()
        server.stop()
    heard_by_caller, rate = caller.decoded_audio()
    heard_by_callee = np.concatenate([codec.decode(p.payload) for p in callee.received if p.payload_type == 8])
    caller_text = transcribe(write_wav(workdir / "caller_heard.wav", heard_by_caller, rate))
    callee_text = transcribe(write_wav(workdir / "callee_heard.wav", heard_by_callee, 8000))
    assert contains_words(caller_text, CALLEE_SAYS), caller_text
    assert contains_words(callee_text, CALLER_SAYS), callee_text
    events = [r.get("event") for r in server.records()]
    assert "bridged" in events and "unbridged" in events


def _header(message: bytes, name: str) -> str:
    match = re.search(rf"^{name}: *(.*?)\r?$", message.split(b"\r\n\r\n")[0].decode(), re.M | re.I)
    assert match, name
    return match.group(1)


async def test_sip_refer_follows_notify_sipfrag(workdir: Path) -> None:
    flow = workdir / "refer.yaml"
    flow.write_text(
        "sections:\n  main:\n    - answer: {}\n    - sip_refer:\n"
        '        to_uri: "sip:carol@127.0.0.1:5099"\n    - hangup: {}\n'
    )
    config = workdir / "refer.toml"
    config.write_text(f'[routes]\ndefault = "{GREETING}"\n[routes.users]\nrefer = "{flow}"\n')
    server = ServerProcess(config, rtp_base=41500, log_level="INFO").start()
    caller = SipCaller(("127.0.0.1", server.sip_port), user="refer")
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        deadline = time.monotonic() + 10
        while not any(r.startswith(b"REFER ") for r in caller.requests):
            assert time.monotonic() < deadline, "\n".join(str(r) for r in server.records(caller.call_id))
            await asyncio.sleep(0.05)
        refer = next(r for r in caller.requests if r.startswith(b"REFER "))
        assert _header(refer, "Refer-To") == "<sip:carol@127.0.0.1:5099>"
        head = [
            h
            for h in refer.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
            if h.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq")
        ]
        caller.send_raw(("SIP/2.0 202 Accepted\r\n" + "\r\n".join(head) + "\r\nContent-Length: 0\r\n\r\n").encode())
        for frag, state in [("SIP/2.0 100 Trying", "active"), ("SIP/2.0 200 OK", "terminated")]:
            notify = caller._request("NOTIFY", frag.encode(), extra=f"Event: refer\r\nSubscription-State: {state}\r\n")
            caller.send_raw(notify.replace(b"application/sdp", b"message/sipfrag"))
            assert (await caller.next_response()).status == 200
        await asyncio.wait_for(caller.bye_received.wait(), 10)  # SWML goes on to hangup after the transfer
    finally:
        caller.close()
        server.stop()
    done = [r for r in server.records(caller.call_id) if r.get("event") == "sip_refer_done"]
    assert done and done[0]["status"] == 200
    progress = [r["status"] for r in server.records(caller.call_id) if r.get("event") == "refer_progress"]
    assert progress == [202, 100, 200]
