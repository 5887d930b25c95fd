"""A flooder, run as its own process so it does not share the server's or the load's event loop.

    python -m benchmarks.flood_sender --kind invite|register_options|garbage --target 127.0.0.1:5060
        [--source 127.0.0.2] [--rate 5000] [--seconds 20] [--rtp-range 40000-40999]

Sends `--rate` datagrams a second for `--seconds` from one source address (a second loopback
address, so the per-source limiter sees the flooder apart from the live calls on 127.0.0.1), in
batches every 5 ms, and reads the answers between batches. `invite`: new INVITEs with an SDP
offer, each a new Call-ID, never ACKed (a scanner's INVITE flood); `register_options`:
REGISTER and OPTIONS alternately, each a new Call-ID; `garbage`: random bytes of 20-1400
octets, half to the SIP port and half to random ports of `--rtp-range` (the live calls' media
ports among them). Prints one JSON object: what was sent, at what rate, and the final status
each request got (first final response per Call-ID; provisional-only and unanswered counted).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import time
from collections import Counter
from typing import Any

BATCH_S = 0.005
DRAIN_S = 1.0  # answers that arrive this long after the last datagram still count


class Flooder:
    def __init__(self, kind: str, target: tuple[str, int], source: str, rtp_range: tuple[int, int] | None) -> None:
        self.kind = kind
        self.target = target
        self.rtp_range = rtp_range
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((source, 0))
        self.sock.setblocking(False)
        self.source, self.port = self.sock.getsockname()
        # Where admitted flood calls send their media; never read (the kernel drops the overflow).
        self.media_sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.media_sink.bind((source, 0))
        self.sent = 0
        self.final: dict[bytes, int] = {}  # Call-ID -> first final status
        self.provisional: set[bytes] = set()
        self.other_datagrams = 0  # answers that are not SIP responses to our Call-IDs
        self.tag = f"{random.getrandbits(32):08x}"

    def message(self, n: int) -> tuple[bytes, tuple[str, int]]:
        if self.kind == "garbage":
            data = os.urandom(random.randint(20, 1400))
            if self.rtp_range and n % 2:
                return data, (self.target[0], random.randrange(self.rtp_range[0], self.rtp_range[1] + 1))
            return data, self.target
        host, port = self.target
        src = f"{self.source}:{self.port}"
        call_id = f"flood-{self.tag}-{n}@{self.source}"
        method = "INVITE" if self.kind == "invite" else ("REGISTER" if n % 2 else "OPTIONS")
        uri = f"sip:flood{n}@{host}:{port}" if method == "INVITE" else f"sip:{host}:{port}"
        body = b""
        extra = ""
        if method == "INVITE":
            sink = self.media_sink.getsockname()[1]
            body = (
                f"v=0\r\no=- {n} 1 IN IP4 {self.source}\r\ns=flood\r\nc=IN IP4 {self.source}\r\nt=0 0\r\n"
                f"m=audio {sink} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
            ).encode()
            extra = "Content-Type: application/sdp\r\n"
        elif method == "REGISTER":
            extra = "Expires: 60\r\n"
        to = f"<sip:flood{n}@{host}>"
        head = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {src};branch=z9hG4bK{self.tag}{n};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:flood{n}@{host}>;tag={self.tag}{n}\r\nTo: {to}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nContact: <sip:flood{n}@{src}>\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body, self.target

    def read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                return
            status, call_id = _status_and_call_id(data)
            if status is None or call_id is None:
                self.other_datagrams += 1
            elif status < 200:
                self.provisional.add(call_id)
            else:
                self.final.setdefault(call_id, status)

    def run(self, rate: float, seconds: float) -> dict[str, Any]:
        per_batch = rate * BATCH_S
        start = time.perf_counter()
        due = 0.0
        k = 0
        while (now := time.perf_counter() - start) < seconds:
            due = min(rate * now, rate * seconds)
            while self.sent < due:
                data, addr = self.message(self.sent)
                try:
                    self.sock.sendto(data, addr)
                except (BlockingIOError, ConnectionRefusedError):
                    pass  # a full socket buffer or an ICMP answer to garbage: it was still sent at rate
                self.sent += 1
            self.read()
            k += 1
            time.sleep(max(0.0, start + k * BATCH_S - time.perf_counter()))
        elapsed = time.perf_counter() - start
        drain_until = time.perf_counter() + DRAIN_S
        while time.perf_counter() < drain_until:
            self.read()
            time.sleep(0.01)
        codes = Counter(self.final.values())
        answered = sum(codes.values())
        requests = 0 if self.kind == "garbage" else self.sent
        return {
            "kind": self.kind,
            "source": self.source,
            "rate_asked_per_s": rate,
            "batch_size": round(per_batch, 1),
            "sent": self.sent,
            "seconds": round(elapsed, 2),
            "rate_sent_per_s": round(self.sent / elapsed, 1),
            "final_status": {str(code): n for code, n in sorted(codes.items())},
            "answered_final": answered,
            "provisional_only": len(self.provisional - set(self.final)),
            "unanswered": max(0, requests - answered - len(self.provisional - set(self.final))),
            "share_503": round(codes.get(503, 0) / self.sent, 4) if self.sent else None,
            "other_datagrams_received": self.other_datagrams,
        }


def _status_and_call_id(data: bytes) -> tuple[int | None, bytes | None]:
    if not data.startswith(b"SIP/2.0 "):
        return None, None
    try:
        status = int(data[8:11])
    except ValueError:
        return None, None
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"call-id", b"i"):
            return status, value.strip()
    return status, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("invite", "register_options", "garbage"), required=True)
    parser.add_argument("--target", required=True, help="host:port of the server's SIP socket")
    parser.add_argument("--source", default="127.0.0.2", help="address to send from")
    parser.add_argument("--rate", type=float, default=5000.0, help="datagrams a second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rtp-range", help="LOW-HIGH: garbage also goes to these ports")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    rtp: tuple[int, int] | None = None
    if args.rtp_range:
        low, _, high = args.rtp_range.partition("-")
        rtp = (int(low), int(high))
    flooder = Flooder(args.kind, (host, int(port)), args.source, rtp)
    print(json.dumps(flooder.run(args.rate, args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
