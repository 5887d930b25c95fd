"""SIP endpoint throughput, sans-I/O: how many flood datagrams a second of CPU absorbs.

    python -m benchmarks.sip_throughput [--datagrams 20000] [--calls 50] [--transactions 100]
        [--rate-limit 20] [--sources 1] [--every-datagram]

Builds the real `SipEndpoint` (no sockets, manual clock) with `--calls` answered and ACKed calls
and `--transactions` finished OPTIONS transactions lingering in Timer J, then feeds `--datagrams`
OPTIONS datagrams from `--sources` addresses spread over one virtual second per 5,000 datagrams,
the way the SIP front end does: receive, drain what to send and the events, and ask for the next
timer unless the endpoint says nothing changed (`receive_datagram` returned False);
`--every-datagram` asks after each one, as the front end did before issue 17. With `--rate-limit 0`
every datagram is answered and makes a transaction (a trusted trunk's flood). Prints one JSON
object; datagrams_per_cpu_s is the number to compare. CPU time (process_time), so a busy machine
skews it less than wall time.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

from mssip.endpoint import SipEndpoint
from mssip.events import InviteReceived
from mssip.security import RateLimiter

SERVER = ("192.0.2.1", 5060)
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _request(
    method: str, call_id: str, branch: str, src: tuple[str, int], *, to_tag: str = "", body: bytes = b""
) -> bytes:
    host, port = src
    to = f"<sip:agent@{SERVER[0]}>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} sip:agent@{SERVER[0]} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:bench@{host}>;tag=f{branch}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: 1 {method}",
        f"Contact: <sip:bench@{host}:{port}>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _drain(endpoint: SipEndpoint) -> list[object]:
    endpoint.datagrams_to_send()
    events = []
    while (event := endpoint.next_event()) is not None:
        events.append(event)
    return events


def build(calls: int, transactions: int, rate_limit: int) -> SipEndpoint:
    peer = ("198.51.100.7", 40000)
    endpoint = SipEndpoint(SERVER[0], SERVER[1], rng=random.Random(1))  # open policy, as shipped
    for n in range(calls):
        call_id = f"live-{n}"
        endpoint.receive_datagram(_request("INVITE", call_id, f"inv{n}", peer, body=SDP), peer, 0.0)
        invite = next(e for e in _drain(endpoint) if isinstance(e, InviteReceived))
        endpoint.answer(invite.call_id, SDP, 0.0)
        endpoint.datagrams_to_send()
        # The 200's To tag is the dialog's local tag: read it off the call (the ACK must carry it).
        to_tag = endpoint._calls[call_id].dialog.local_tag  # noqa: SLF001  (a benchmark may look inside)
        endpoint.receive_datagram(_request("ACK", call_id, f"inv{n}", peer, to_tag=to_tag), peer, 0.0)
        _drain(endpoint)
    for n in range(transactions):
        endpoint.receive_datagram(_request("OPTIONS", f"probe-{n}", f"opt{n}", peer), peer, 0.0)
        _drain(endpoint)
    # The limiter comes in after the set-up, so the live calls are all there (as in benchmarks.floods,
    # where they were set up below the limit); the shipped default is 20/s, burst 40.
    endpoint.rate_limiter = RateLimiter(rate_limit, 2 * rate_limit) if rate_limit else None
    return endpoint


def run(args: argparse.Namespace) -> dict[str, object]:
    endpoint = build(args.calls, args.transactions, args.rate_limit)
    sources = [(f"203.0.113.{1 + n % 250}", 5060 + n // 250) for n in range(args.sources)]
    flood = [
        (_request("OPTIONS", f"flood-{n}", f"fl{n}", src), src)
        for n in range(args.datagrams)
        for src in (sources[n % len(sources)],)
    ]
    timer_scans = 0
    start = time.process_time()
    for n, (data, src) in enumerate(flood):
        now = 1.0 + n / 5000.0  # 5,000 datagrams a virtual second, as benchmarks.floods sends
        changed = endpoint.receive_datagram(data, src, now)
        _drain(endpoint)
        if changed or args.every_datagram:  # what SipFrontEnd._pump does
            endpoint.get_timer()
            timer_scans += 1
    cpu_s = time.process_time() - start
    return {
        "datagrams": args.datagrams,
        "calls": args.calls,
        "transactions": args.transactions,
        "rate_limit_per_s": args.rate_limit,
        "sources": args.sources,
        "timer_after": "every datagram" if args.every_datagram else "datagrams that changed state",
        "timer_scans": timer_scans,
        "cpu_s": round(cpu_s, 3),
        "datagrams_per_cpu_s": round(args.datagrams / cpu_s) if cpu_s else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datagrams", type=int, default=20000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--transactions", type=int, default=100)
    parser.add_argument("--rate-limit", type=int, default=20, help="per-source requests/s; 0: no limiter")
    parser.add_argument("--sources", type=int, default=1)
    parser.add_argument(
        "--every-datagram",
        action="store_true",
        help="ask get_timer after every datagram (the front end before issue 17)",
    )
    args = parser.parse_args(argv)
    json.dump(run(args), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
