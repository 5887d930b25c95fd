"""A small asyncio SIP/RTP caller: `mediaserver call`, loopback tests and load generation.

It places one call (INVITE with an SDP offer, ACK, BYE either way), sends paced RTP from a PCM
buffer or silence, and records every RTP packet it receives with its arrival time. It speaks
just enough SIP for a UAS that follows RFC 3261 and is deliberately independent of the
server's own SIP stack (raw text, its own parsing), so that a bug in `mssip` cannot hide
itself in tests that use both ends.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass, field

import numpy as np

from mediaserver.rtp.packet import RtpPacket, is_rtcp
from mscodecs import make_codec

Addr = tuple[str, int]

OFFER_CODECS = {
    "PCMU": (0, "PCMU/8000"),
    "PCMA": (8, "PCMA/8000"),
    "G722": (9, "G722/8000"),
    "opus": (111, "opus/48000/2"),
}


@dataclass
class ReceivedPacket:
    packet: RtpPacket
    arrival_ns: int


@dataclass
class SipResponse:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    raw: bytes


def parse_response(data: bytes) -> SipResponse | None:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    match = re.match(r"SIP/2\.0 (\d{3}) ?(.*)", lines[0])
    if not match:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return SipResponse(int(match.group(1)), match.group(2), headers, body, data)


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, sink: asyncio.Queue[tuple[bytes, Addr]]) -> None:
        self.sink = sink
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.sink.put_nowait((data, addr))


@dataclass
class SipCaller:
    server: Addr
    user: str = "greeting"
    codec: str = "PCMU"
    local_host: str = "127.0.0.1"
    from_user: str = "tester"
    call_id: str = field(default_factory=lambda: f"{random.getrandbits(64):016x}@test")
    received: list[ReceivedPacket] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    responses: list[SipResponse] = field(default_factory=list)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._sip_in: asyncio.Queue[tuple[bytes, Addr]] = asyncio.Queue()
        self._rtp_in: asyncio.Queue[tuple[bytes, Addr]] = asyncio.Queue()
        t, self._sip = await loop.create_datagram_endpoint(
            lambda: _Proto(self._sip_in), local_addr=(self.local_host, 0)
        )
        self.sip_port = t.get_extra_info("sockname")[1]
        t2, self._rtp = await loop.create_datagram_endpoint(lambda: _RtpRecorder(self), local_addr=(self.local_host, 0))
        self.rtp_port = t2.get_extra_info("sockname")[1]
        self._tag = f"{random.getrandbits(32):08x}"
        self._cseq = 0
        self.remote_tag = ""
        self.remote_rtp: Addr | None = None
        self.bye_received = asyncio.Event()
        self._responses: asyncio.Queue[SipResponse] = asyncio.Queue()
        self._dispatcher = asyncio.create_task(self._dispatch())

    def close(self) -> None:
        self._dispatcher.cancel()
        for proto in (self._sip, self._rtp):
            if proto.transport:
                proto.transport.close()

    # -- SIP -----------------------------------------------------------------------------
    def offer_sdp(self) -> bytes:
        pt, rtpmap = OFFER_CODECS[self.codec]
        clock = int(rtpmap.split("/")[1])
        lines = [
            "v=0",
            f"o=- 1 1 IN IP4 {self.local_host}",
            "s=test",
            f"c=IN IP4 {self.local_host}",
            "t=0 0",
            f"m=audio {self.rtp_port} RTP/AVP {pt} 101",
            f"a=rtpmap:{pt} {rtpmap}",
            f"a=rtpmap:101 telephone-event/{clock if self.codec != 'G722' else 8000}",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=sendrecv",
        ]
        return ("\r\n".join(lines) + "\r\n").encode()

    def _request(
        self,
        method: str,
        body: bytes = b"",
        cseq: int | None = None,
        branch: str | None = None,
        to_tag: bool = True,
        extra: str = "",
    ) -> bytes:
        if cseq is None:
            self._cseq += 1
            cseq = self._cseq
        branch = branch or f"z9hG4bK{random.getrandbits(48):012x}"
        to = f"<sip:{self.user}@{self.server[0]}:{self.server[1]}>"
        if to_tag and self.remote_tag:
            to += f";tag={self.remote_tag}"
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        msg = (
            f"{method} sip:{self.user}@{self.server[0]}:{self.server[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.local_host}:{self.sip_port};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{self.from_user}@{self.local_host}>;tag={self._tag}\r\nTo: {to}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:{self.from_user}@{self.local_host}:{self.sip_port}>\r\n{extra}{ctype}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        return msg

    def send_raw(self, data: bytes) -> None:
        assert self._sip.transport is not None
        self._sip.transport.sendto(data, self.server)

    async def _dispatch(self) -> None:
        while True:
            data, _ = await self._sip_in.get()
            if data.startswith(b"SIP/2.0"):
                response = parse_response(data)
                if response:
                    self.responses.append(response)
                    await self._responses.put(response)
                continue
            self.requests.append(data)
            if data.startswith(b"BYE "):
                self.send_raw(_reply_200(data))
                self.bye_received.set()

    async def next_response(self, timeout: float = 5.0) -> SipResponse:
        return await asyncio.wait_for(self._responses.get(), timeout)

    async def call(self, timeout: float = 10.0) -> SipResponse:
        """INVITE and wait for the final response; ACK a 2xx and remember the remote media."""
        self._invite_branch = f"z9hG4bK{random.getrandbits(48):012x}"
        self._invite_cseq = self._cseq = self._cseq + 1
        self.send_raw(self._request("INVITE", self.offer_sdp(), cseq=self._invite_cseq, branch=self._invite_branch))
        deadline = time.monotonic() + timeout
        while True:
            response = await self.next_response(max(0.1, deadline - time.monotonic()))
            if response.status < 200:
                continue
            to = response.headers.get("to", "")
            match = re.search(r";tag=([^;>\s]+)", to)
            self.remote_tag = match.group(1) if match else ""
            if response.status < 300:
                self.send_raw(self._request("ACK", cseq=self._invite_cseq))
                self.remote_rtp = _sdp_media_addr(response.body)
            return response

    async def hangup(self) -> SipResponse:
        self.send_raw(self._request("BYE"))
        while True:
            response = await self.next_response()
            if "BYE" in response.headers.get("cseq", ""):
                return response

    # -- RTP -----------------------------------------------------------------------------
    async def send_audio(self, pcm: np.ndarray, payload_type: int | None = None) -> None:
        """Send PCM (at the codec's rate) as paced 20 ms RTP frames."""
        assert self.remote_rtp is not None and self._rtp.transport is not None
        codec = make_codec(self.codec)
        frame = codec.sample_rate // 50
        step = {"opus": 960}.get(self.codec, 160)
        pt = OFFER_CODECS[self.codec][0] if payload_type is None else payload_type
        seq, ts, ssrc = random.getrandbits(16), random.getrandbits(32), random.getrandbits(32)
        start = time.monotonic()
        for i in range(0, len(pcm) - frame + 1, frame):
            packet = RtpPacket(pt, seq, ts, ssrc, codec.encode(pcm[i : i + frame]), marker=i == 0)
            self._rtp.transport.sendto(packet.serialize(), self.remote_rtp)
            seq, ts = (seq + 1) & 0xFFFF, (ts + step) & 0xFFFFFFFF
            await asyncio.sleep(max(0.0, start + (i // frame + 1) * 0.02 - time.monotonic()))

    def decoded_audio(self) -> tuple[np.ndarray, int]:
        """Everything received, decoded in arrival order (one stream, no reordering on loopback)."""
        codec = make_codec(self.codec)
        pcm = [
            codec.decode(r.packet.payload)
            for r in self.received
            if r.packet.payload_type == OFFER_CODECS[self.codec][0]
        ]
        return (np.concatenate(pcm) if pcm else np.zeros(0, np.int16)), codec.sample_rate


class _RtpRecorder(asyncio.DatagramProtocol):
    def __init__(self, caller: SipCaller) -> None:
        self.caller = caller
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        if not is_rtcp(data):
            self.caller.received.append(ReceivedPacket(RtpPacket.parse(data), time.monotonic_ns()))


def _reply_200(request: bytes) -> bytes:
    head = request.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
    keep = [h for h in head[1:] if h.split(":", 1)[0].strip().lower() in ("via", "from", "to", "call-id", "cseq")]
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode()


def _sdp_media_addr(sdp: bytes) -> Addr:
    text = sdp.decode(errors="replace")
    host = re.search(r"^c=IN IP[46] (\S+)", text, re.MULTILINE)
    port = re.search(r"^m=audio (\d+)", text, re.MULTILINE)
    if not host or not port:
        raise ValueError(f"no media address in SDP answer: {text!r}")
    return host.group(1), int(port.group(1))
