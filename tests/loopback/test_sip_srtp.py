"""SDES-SRTP against a real server with ``[sip] media_encryption = "required"``: a plain RTP
offer gets 488; an RTP/SAVP offer is answered RTP/SAVP with the server's own key, the greeting
arrives as SRTP (80-bit tag, no µ-law in clear) that the answer's key decrypts, and only our
protected packets count as received (plain and forged ones are dropped)."""

from __future__ import annotations

import base64
import os
import re
import select
import socket
import time
from pathlib import Path

import numpy as np

from mediaserver.rtp.packet import RtpPacket, is_rtcp
from mediaserver.rtp.srtp import SrtpSession
from mscodecs import make_codec
from mssip.sdes import parse_crypto
from mssip.sdp import parse_sdp
from tests.support.server import REPO, ServerProcess

SUITE = "AES_CM_128_HMAC_SHA1_80"


class RawCaller:
    """Just enough UDP SIP for one call: INVITE, ACK, BYE, and a 200 to the server's BYE."""

    def __init__(self, server: ServerProcess, call_id: str) -> None:
        self.server = ("127.0.0.1", server.sip_port)
        self.call_id = call_id
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.port = self.sip.getsockname()[1]
        self.to_tag = ""

    def request(self, method: str, cseq: int, body: str = "", branch: str = "") -> None:
        to_tag = f";tag={self.to_tag}" if self.to_tag else ""
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        branch = f"z9hG4bK{branch or f'{method}{cseq}'}-{self.call_id}"  # a new transaction per CSeq
        message = (
            f"{method} sip:greeting@127.0.0.1:{self.server[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=srtp1\r\n"
            f"To: <sip:greeting@127.0.0.1>{to_tag}\r\nCall-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:caller@127.0.0.1:{self.port}>\r\n{ctype}Content-Length: {len(body)}\r\n\r\n{body}"
        )
        self.sip.sendto(message.encode(), self.server)

    def final(self, method: str, cseq_number: int = 1, timeout: float = 10.0) -> tuple[int, str]:
        """The first final response to ``cseq_number method`` (requests from the server get a 200)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.sip], [], [], 0.2)
            if not ready:
                continue
            text = self.sip.recv(65535).decode()
            status = re.match(r"SIP/2.0 (\d{3})", text)
            if status is None:
                self.answer_request(text)
                continue
            cseq = re.search(r"CSeq:[^\r]*\r\n", text, re.I)
            if cseq is not None and f" {cseq_number} {method}\r\n" in cseq.group(0) and int(status.group(1)) >= 200:
                tag = re.search(r"^To:.*;tag=([^;\r]+)", text, re.I | re.M)
                self.to_tag = tag.group(1) if tag else self.to_tag
                return int(status.group(1)), text
        raise AssertionError(f"no final response to {method}")

    def answer_request(self, text: str) -> None:
        head = text.split("\r\n\r\n", 1)[0].split("\r\n")
        keep = [h for h in head[1:] if re.match(r"(Via|From|To|Call-ID|CSeq):", h, re.I)]
        self.sip.sendto(
            ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode(), self.server
        )

    def close(self) -> None:
        self.sip.close()


def offer(rtp_port: int, proto: str, crypto: str = "", version: int = 1) -> str:
    lines = [
        "v=0",
        f"o=- 1 {version} IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=audio {rtp_port} {proto} 0",
        *([f"a=crypto:{crypto}"] if crypto else []),
        "a=sendrecv",
    ]
    return "\r\n".join(lines) + "\r\n"


def test_required_refuses_plain_and_runs_the_greeting_over_srtp(tmp_path: Path) -> None:
    config = tmp_path / "srtp.toml"
    config.write_text(
        f'[sip]\nmedia_encryption = "required"\n[routes]\ndefault = "{REPO / "config/swml/greeting.yaml"}"\n'
    )
    server = ServerProcess(config, rtp_base=42700, log_level="INFO").start()
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    try:
        plain = RawCaller(server, "srtp-plain")
        plain.request("INVITE", 1, offer(rtp.getsockname()[1], "RTP/AVP"))
        status, _ = plain.final("INVITE")
        assert status == 488
        plain.request("ACK", 1, branch="INVITE1")  # a non-2xx ACK is in the INVITE's transaction
        plain.close()

        key = os.urandom(30)
        caller = RawCaller(server, "srtp-call")
        inline = base64.b64encode(key).decode()
        caller.request("INVITE", 1, offer(rtp.getsockname()[1], "RTP/SAVP", f"1 {SUITE} inline:{inline}"))
        status, response = caller.final("INVITE")
        assert status == 200, response
        media = parse_sdp(response.split("\r\n\r\n", 1)[1]).media[0]
        assert media.proto == "RTP/SAVP"
        (value,) = media.attribute_values("crypto")
        theirs = parse_crypto(value)
        assert (theirs.tag, theirs.suite) == (1, SUITE) and theirs.key != key
        caller.request("ACK", 1)
        srtp = SrtpSession(SUITE, key, theirs.key)
        server_rtp = ("127.0.0.1", media.port)

        codec = make_codec("PCMU", 8000)
        silence = codec.encode(np.zeros(160, dtype=np.int16))
        wire: list[bytes] = []
        sender = srtp  # what protects our packets: the key of our latest offer
        sent = seq = 0
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            if sent < 50:
                seq += 1
                packet = RtpPacket(0, seq, 160 * seq, 0xC0FFEE, silence, marker=seq == 1).serialize()
                rtp.sendto(sender.protect(packet), server_rtp)
                sent += 1
                if sent == 30:  # a re-INVITE with a new key: the server keeps its own, takes ours
                    key2 = os.urandom(30)
                    inline2 = base64.b64encode(key2).decode()
                    caller.request(
                        "INVITE", 2, offer(rtp.getsockname()[1], "RTP/SAVP", f"1 {SUITE} inline:{inline2}", version=2)
                    )
                    status, response = caller.final("INVITE", 2)
                    assert status == 200, response
                    caller.request("ACK", 2)
                    reanswer = parse_sdp(response.split("\r\n\r\n", 1)[1]).media[0]
                    assert reanswer.proto == "RTP/SAVP"
                    assert [parse_crypto(v).key for v in reanswer.attribute_values("crypto")] == [theirs.key]
                    sender = SrtpSession(SUITE, key2, theirs.key)
                if sent == 10:  # a plain packet and a forged one: both must be dropped
                    seq += 1
                    rtp.sendto(RtpPacket(0, seq, 160 * seq, 0xC0FFEE, silence).serialize(), server_rtp)
                    seq += 1
                    forged = bytearray(srtp.protect(RtpPacket(0, seq, 160 * seq, 0xC0FFEE, silence).serialize()))
                    forged[-1] ^= 0xFF
                    rtp.sendto(bytes(forged), server_rtp)
            ready, _, _ = select.select([rtp], [], [], 0.02)
            while ready:
                wire.append(rtp.recv(2048))
                ready, _, _ = select.select([rtp], [], [], 0)
        caller.request("BYE", 3)
        assert caller.final("BYE", 3)[0] == 200
        caller.close()

        rtp_wire = [d for d in wire if not is_rtcp(d)]
        assert len(rtp_wire) > 100
        assert all(len(d) == 12 + 160 + 10 for d in rtp_wire)  # PCMU 20 ms + the 80-bit tag
        decrypted = [srtp.unprotect(d) for d in wire]
        packets = [RtpPacket.parse(d) for d in decrypted if not is_rtcp(d)]
        assert {p.payload_type for p in packets} == {0}
        assert all(p.payload not in d for p, d in zip(packets, rtp_wire, strict=True))  # no µ-law in clear
        voice = np.concatenate([codec.decode(p.payload) for p in packets])
        assert np.abs(voice.astype(np.int32)).max() > 2000  # the greeting's voice, decrypted

        server.wait_idle()
        (ended,) = [r for r in server.records("srtp-call") if r.get("event") == "call_ended"]
        assert ended["packets_in"] == 50  # ours, both keys; the plain and the forged packet never reached the call
        assert any("SRTP packet dropped" in line for line in server.lines)
    finally:
        rtp.close()
        server.stop()
