"""Scale-out on loopback: Debian kamailio's dispatcher in front of two server processes.

The same topology as `docker compose --profile scale up` (deploy/kamailio), without Docker:
calls for `agent*` are spread over both instances, an instance killed mid-test is taken out
and new calls land on the other, and SIGTERM drains an instance (new requests get 503, the live
call keeps its audio until it ends, then the process exits cleanly).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import BaresipFactory
from tests.support.baresip import require_baresip
from tests.support.kamailio import load_render
from tests.support.server import ServerProcess, free_port

require_baresip("kamailio", at_import=True)
pytestmark = pytest.mark.interop


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[int, list[ServerProcess]]]:
    require_baresip("kamailio")
    servers = [ServerProcess(rtp_base=31000 + 100 * i).start() for i in range(2)]
    port = free_port()
    cfg = load_render().render(
        tmp_path / "kamailio",
        f"udp:127.0.0.1:{port}",
        "127.0.0.1",
        [f"sip:127.0.0.1:{s.sip_port}" for s in servers],
        ping_interval=1,
    )
    # Its log goes to a file: a pipe nobody reads fills up (OPTIONS every second, logged) and
    # kamailio then blocks on the write, SIGTERM included (a CI run timed out in the teardown).
    log_path = tmp_path / "kamailio.log"
    with log_path.open("w") as log:
        kamailio = subprocess.Popen(
            [shutil.which("kamailio") or "kamailio", "-DD", "-E", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        time.sleep(2.5)  # first OPTIONS probes mark both instances active
        assert kamailio.poll() is None, log_path.read_text()
        yield port, servers
    finally:
        kamailio.terminate()
        try:
            kamailio.wait(10)
        except subprocess.TimeoutExpired:
            kamailio.kill()
            kamailio.wait(5)
        for server in servers:
            server.stop()


def call_and_hang_up(phone: Any, uri: str) -> None:
    phone.call(uri)
    phone.wait_for("established", timeout=15)
    phone.hangup()
    phone.wait_for("closed", timeout=10)


def started(server: ServerProcess) -> int:
    return int(server.get("/health")["calls_started"])


def sip_status(port: int, method: str, user: str = "agent") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.bind(("127.0.0.1", 0))
        me = sock.getsockname()[1]
        body = (
            (
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
            )
            if method == "INVITE"
            else ""
        )
        message = (
            f"{method} sip:{user}@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{time.monotonic_ns()};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:{user}@127.0.0.1>\r\n"
            f"Call-ID: probe-{time.monotonic_ns()}\r\nCSeq: 1 {method}\r\nContact: <sip:probe@127.0.0.1:{me}>\r\n"
            + ("Content-Type: application/sdp\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
        sock.sendto(message.encode(), ("127.0.0.1", port))
        while True:
            status = int(sock.recv(65535).split(b" ", 2)[1])
            if status >= 200:
                return status


def test_calls_spread_failover_and_drain(
    cluster: tuple[int, list[ServerProcess]], baresip_factory: BaresipFactory
) -> None:
    port, (a, b) = cluster
    phone = baresip_factory("caller", codec="PCMU", record=False)
    for _ in range(4):
        call_and_hang_up(phone, f"sip:agent@127.0.0.1:{port}")
    assert started(a) >= 1 and started(b) >= 1, "round robin should reach both instances"

    # An instance that stops answering: kill it; new calls still get through, on the other one.
    before = started(a)
    assert b.proc is not None
    b.proc.kill()
    b.proc.wait(10)
    for _ in range(2):
        call_and_hang_up(phone, f"sip:agent@127.0.0.1:{port}")
    assert started(a) == before + 2

    # SIGTERM drains: a live call through the proxy keeps going, new requests get 503.
    phone.call(f"sip:agentlong@127.0.0.1:{port}")
    phone.wait_for("established", timeout=15)
    assert a.proc is not None
    a.proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    try:
        status = sip_status(a.sip_port, "OPTIONS")
    except TimeoutError:
        raise AssertionError("no answer while draining:\n" + "\n".join(a.lines[-20:])) from None
    assert status == 503
    assert sip_status(a.sip_port, "INVITE") == 503
    assert a.get("/health")["calls"] == 1 and a.proc.poll() is None  # the live call is still up
    time.sleep(1.5)
    assert not phone.closed
    phone.hangup()
    phone.wait_for("closed", timeout=10)
    assert a.proc.wait(15) == 0
    assert any(r.get("msg") == "drained" for r in a.records())
