"""A load generator that holds hundreds of SIP calls from one asyncio process.

Theory of operation: one SIP socket carries every call's signalling (demultiplexed by Call-ID)
and one RTP socket carries every call's media: we offer the same RTP port in every SDP, and the
server answers each call from its own port, so the source port of a packet names its call. One
pacing task sends one 20 ms PCMU frame per call per tick. Arrival times come from the kernel
(SO_TIMESTAMPNS), not from when our loop got round to reading, so a busy generator does not
show up as server jitter; the generator's own loop lag is measured by a probe and reported.

Per call, the deviation of packet k is its kernel arrival time minus where the 20 ms grid puts
it (first arrival + RTP-timestamp offset), less the call's minimum: 0 means exactly on the
grid, and growth means the server sent late.

Turns of caller speech (benchmarks/capacity_ai.py): `say(call, payloads)` queues PCMU payloads
that the pacing task sends instead of silence, one a tick; every frame it sends with caller
energy is stamped on the same clock as the kernel's arrival stamps (CLOCK_REALTIME ns, in
`LoadCall.speech_sent_ns`), and with `decode_audio` on, every agent packet's peak amplitude is
kept beside its arrival (`LoadCall.audio`), so voice-to-voice at the wire is one subtraction.
`try_place` places a call without raising (its `status` says how it ended: 0 = no final answer
in time), and `forget` drops a finished call from the pacing loop (a setup-rate run places thousands).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from benchmarks.sipclient import SipResponse, _sdp_media_addr, parse_response
from mediaserver.rtp.packet import RtpPacket, is_rtcp
from mscodecs import make_codec

Addr = tuple[str, int]
_TIMESPEC = struct.Struct("@ll")
# Linux's SO_TIMESTAMPNS (= SCM_TIMESTAMPNS); Python 3.11's socket module does not name it.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
# Linux's SO_RXQ_OVFL: every recvmsg carries the socket's count of datagrams dropped for want of
# buffer space, so a loss at the generator is told apart from a frame the server never sent.
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
_DROPS = struct.Struct("@I")


@dataclass
class LoadCall:
    call_id: str
    tag: str
    cseq: int = 1
    status: int = 0
    remote_tag: str = ""
    remote_rtp: Addr | None = None
    invite_sent_ns: int = 0
    answered_ns: int = 0
    ended: bool = False
    seq: int = field(default_factory=lambda: random.getrandbits(16))
    ts: int = field(default_factory=lambda: random.getrandbits(32))
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    arrivals: list[tuple[int, int]] = field(default_factory=list)  # (kernel arrival ns, rtp timestamp)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    final_ns: int = 0  # when the final response to the INVITE arrived (any status)
    outbox: deque[tuple[bytes, bool]] = field(default_factory=deque)  # (PCMU payload, has caller energy)
    speech_sent_ns: list[int] = field(default_factory=list)  # CLOCK_REALTIME ns of each voiced frame sent
    audio: list[tuple[int, int]] = field(default_factory=list)  # (kernel arrival ns, peak) with decode_audio
    heard: bool = False  # any response to the INVITE (stops its retransmissions)
    invite_branch: str = ""  # the INVITE's Via branch: the ACK of a non-2xx answer reuses it
    bye_answered: asyncio.Event = field(default_factory=asyncio.Event)


def _new_branch() -> str:
    return f"z9hG4bK{random.getrandbits(48):012x}"


class LoadGenerator:
    def __init__(self, server: Addr, user: str = "idle", host: str = "127.0.0.1") -> None:
        self.server = server
        self.user = user
        self.host = host
        self.calls: dict[str, LoadCall] = {}
        self._by_rtp_port: dict[int, LoadCall] = {}
        self.loop_lag_ns: list[int] = []
        self.rtp_socket_drops = 0  # datagrams the kernel dropped at our RTP socket (buffer full), cumulative
        self._record = False
        self._tasks: list[asyncio.Task[None]] = []
        self._resends: set[asyncio.Task[None]] = set()
        # Optional caller speech: PCMU payloads every call cycles through (from a per-call offset).
        self.talk: list[bytes] = []
        # Keep each agent packet's peak amplitude (turn benchmarks), decoded as PCMU.
        self.decode_audio = False
        self._pcmu = make_codec("PCMU")

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sip.bind((self.host, 0))
        self._sip.setblocking(False)
        self.sip_port = self._sip.getsockname()[1]
        self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self._rtp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._rtp.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
        self._rtp.bind((self.host, 0))
        self._rtp.setblocking(False)
        self.rtp_port = self._rtp.getsockname()[1]
        loop.add_reader(self._sip.fileno(), self._read_sip)
        loop.add_reader(self._rtp.fileno(), self._read_rtp)
        self._tasks = [asyncio.create_task(self._pace()), asyncio.create_task(self._lag_probe())]

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for task in [*self._tasks, *self._resends]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._resends, return_exceptions=True)
        loop.remove_reader(self._sip.fileno())
        loop.remove_reader(self._rtp.fileno())
        self._sip.close()
        self._rtp.close()

    # -- signalling -------------------------------------------------------------------------
    def _request(self, call: LoadCall, method: str, body: bytes = b"", branch: str = "") -> bytes:
        to = f"<sip:{self.user}@{self.server[0]}:{self.server[1]}>"
        if call.remote_tag and method != "INVITE":
            to += f";tag={call.remote_tag}"
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        cseq = call.cseq if method in ("INVITE", "ACK") else call.cseq + 1
        return (
            f"{method} sip:{self.user}@{self.server[0]}:{self.server[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.sip_port};branch={branch or _new_branch()};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:load@{self.host}>;tag={call.tag}\r\nTo: {to}\r\n"
            f"Call-ID: {call.call_id}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:load@{self.host}:{self.sip_port}>\r\n{ctype}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    def _sdp(self) -> bytes:
        return (
            f"v=0\r\no=- 1 1 IN IP4 {self.host}\r\ns=load\r\nc=IN IP4 {self.host}\r\nt=0 0\r\n"
            f"m=audio {self.rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n"
        ).encode()

    # A UAC over UDP retransmits (RFC 3261 §17.1.1.2 timer A, §17.1.2.2 timer E): a request the
    # server's socket dropped while it was busy is sent again, as a real trunk would.
    INVITE_RESEND_S = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    BYE_RESEND_S = (0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0)

    def _send_with_resends(self, data: bytes, waits: tuple[float, ...], done: Callable[[], bool]) -> None:
        self._sip.sendto(data, self.server)

        async def resend() -> None:
            for wait in waits:
                await asyncio.sleep(wait)
                if done():
                    return
                self._sip.sendto(data, self.server)

        task = asyncio.create_task(resend())
        self._resends.add(task)
        task.add_done_callback(self._resends.discard)

    def _invite(self) -> LoadCall:
        call = LoadCall(f"{random.getrandbits(64):016x}@load", f"{random.getrandbits(32):08x}")
        self.calls[call.call_id] = call
        call.invite_sent_ns = time.monotonic_ns()
        call.invite_branch = _new_branch()
        self._send_with_resends(
            self._request(call, "INVITE", self._sdp(), branch=call.invite_branch),
            self.INVITE_RESEND_S,
            lambda: call.heard or call.call_id not in self.calls,
        )
        return call

    async def place(self, timeout: float = 10.0) -> LoadCall:
        call = self._invite()
        await asyncio.wait_for(call.answered.wait(), timeout)
        if call.status != 200:
            raise RuntimeError(f"call refused: {call.status}")
        return call

    async def try_place(self, timeout: float = 10.0) -> LoadCall:
        """Place a call and return it however it ended (`status` 0: no final answer within `timeout`)."""
        call = self._invite()
        try:
            await asyncio.wait_for(call.answered.wait(), timeout)
        except TimeoutError:
            call.ended = True
        return call

    def forget(self, call: LoadCall) -> None:
        """Drop a call that is over from the generator's tables (its media stops)."""
        call.ended = True
        self.calls.pop(call.call_id, None)
        if call.remote_rtp is not None and self._by_rtp_port.get(call.remote_rtp[1]) is call:
            del self._by_rtp_port[call.remote_rtp[1]]

    def say(self, call: LoadCall, payloads: list[tuple[bytes, bool]]) -> None:
        """Queue caller audio: (PCMU payload, has caller energy) per 20 ms frame, sent one a tick."""
        call.outbox.extend(payloads)

    async def hang_up_all(self, calls: list[LoadCall], timeout: float = 10.0) -> None:
        """BYE every call (retransmitted as needed) and wait, up to `timeout`, for every answer."""
        for call in calls:
            self.hang_up(call)
        pending = [call.bye_answered.wait() for call in calls if not call.bye_answered.is_set()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pending), timeout)

    def hang_up(self, call: LoadCall) -> None:
        if not call.ended:
            call.ended = True
            self._send_with_resends(
                self._request(call, "BYE"),
                self.BYE_RESEND_S,
                lambda: call.bye_answered.is_set() or call.call_id not in self.calls,
            )

    def _read_sip(self) -> None:
        while True:
            try:
                data = self._sip.recv(65535)
            except BlockingIOError:
                return
            match = re.search(rb"^(?:Call-ID|i)\s*:\s*(\S+)", data, re.IGNORECASE | re.MULTILINE)
            call = self.calls.get(match.group(1).decode()) if match else None
            if call is None:
                continue
            if data.startswith(b"SIP/2.0"):
                response = parse_response(data)
                cseq = response.headers.get("cseq", "") if response is not None else ""
                if response is not None and "INVITE" in cseq:
                    self._invite_response(call, response)
                elif response is not None and "BYE" in cseq and response.status >= 200:
                    call.bye_answered.set()
            elif data.startswith(b"BYE"):
                call.ended = True
                head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
                keep = [
                    h
                    for h in head[1:]
                    if h.split(":", 1)[0].strip().lower() in ("via", "from", "to", "call-id", "cseq")
                ]
                self._sip.sendto(
                    ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode(), self.server
                )

    def _invite_response(self, call: LoadCall, response: SipResponse) -> None:
        call.heard = True
        if response.status == 200 and call.answered.is_set() and call.status == 200:
            self._sip.sendto(self._request(call, "ACK"), self.server)  # our ACK was lost: the 200 came again
            return
        if response.status >= 300:  # RFC 3261 §17.1.1.3: a non-2xx final answer is ACKed in its transaction
            tag = re.search(r";tag=([^;>\s]+)", response.headers.get("to", ""))
            call.remote_tag = tag.group(1) if tag else ""
            self._sip.sendto(self._request(call, "ACK", branch=call.invite_branch), self.server)
        if response.status < 200 or call.answered.is_set():
            return
        call.status = response.status
        call.final_ns = time.monotonic_ns()
        tag = re.search(r";tag=([^;>\s]+)", response.headers.get("to", ""))
        call.remote_tag = tag.group(1) if tag else ""
        if response.status == 200:
            call.answered_ns = time.monotonic_ns()
            call.remote_rtp = _sdp_media_addr(response.body)
            self._by_rtp_port[call.remote_rtp[1]] = call
            self._sip.sendto(self._request(call, "ACK"), self.server)
        call.answered.set()

    # -- media ------------------------------------------------------------------------------
    def _read_rtp(self) -> None:
        while True:
            try:
                data, ancdata, _, addr = self._rtp.recvmsg(2048, 64)
            except BlockingIOError:
                return
            arrival = 0
            for level, kind, raw in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack(raw[: _TIMESPEC.size])
                    arrival = sec * 1_000_000_000 + nsec
                elif level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL:
                    self.rtp_socket_drops = _DROPS.unpack(raw[: _DROPS.size])[0]
            call = self._by_rtp_port.get(addr[1])
            if call is None or not self._record or is_rtcp(data):
                continue
            packet = RtpPacket.parse(data)
            call.arrivals.append((arrival or time.time_ns(), packet.timestamp))
            if self.decode_audio and packet.payload_type == 0:
                pcm = self._pcmu.decode(packet.payload)
                call.audio.append((arrival or time.time_ns(), int(np.abs(pcm.astype(np.int32)).max())))

    async def _pace(self) -> None:
        payload = bytes([0xFF]) * 160  # µ-law silence
        start = time.monotonic()
        k = 0
        while True:
            k += 1
            await asyncio.sleep(max(0.0, start + k * 0.02 - time.monotonic()))
            for call in list(self.calls.values()):
                if call.remote_rtp is None or call.ended:
                    continue
                if call.outbox:
                    talk, voiced = call.outbox.popleft()
                    if voiced:  # the same clock as SO_TIMESTAMPNS arrivals
                        call.speech_sent_ns.append(time.time_ns())
                else:
                    talk = self.talk[(k + call.ssrc) % len(self.talk)] if self.talk else payload
                packet = RtpPacket(0, call.seq, call.ts, call.ssrc, talk)
                self._rtp.sendto(packet.serialize(), call.remote_rtp)
                call.seq, call.ts = (call.seq + 1) & 0xFFFF, (call.ts + 160) & 0xFFFFFFFF

    async def _lag_probe(self) -> None:
        while True:
            before = time.monotonic_ns()
            await asyncio.sleep(0.005)
            self.loop_lag_ns.append(time.monotonic_ns() - before - 5_000_000)

    # -- measurement ------------------------------------------------------------------------
    def record(self, on: bool) -> None:
        if on:
            for call in self.calls.values():
                call.arrivals.clear()
                call.audio.clear()
            self.loop_lag_ns.clear()
        self._record = on

    def deviations_ms(self) -> np.ndarray:
        """Per-packet deviation from each call's 20 ms grid, pooled over calls (ms)."""
        pooled = []
        for call in self.calls.values():
            if len(call.arrivals) < 10:
                continue
            arrivals = np.array([a for a, _ in call.arrivals], dtype=np.float64)
            stamps = np.unwrap(np.array([t for _, t in call.arrivals], dtype=np.float64), period=2.0**32)
            ideal = (stamps - stamps[0]) / 8000 * 1e9
            dev = arrivals - arrivals[0] - ideal
            pooled.append((dev - dev.min()) / 1e6)
        return np.concatenate(pooled) if pooled else np.zeros(0)

    def packets_received(self) -> int:
        return sum(len(c.arrivals) for c in self.calls.values())
