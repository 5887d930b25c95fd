"""The four RFC 4475 cases of issue 17 over real UDP to a `mediaserver serve` process: each gets
the answer the RFC asks for from the front end (not only from the sans-I/O endpoint, which
tests/unit/sip/test_rfc4475_rest.py checks), and the server keeps serving afterwards."""

from __future__ import annotations

import socket

import pytest

from tests.support.server import ServerProcess
from tests.unit.sip.test_rfc4475 import load


def first_status_line(server: ServerProcess, message: bytes, timeout: float = 3.0) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.bind(("127.0.0.1", 0))
        sock.sendto(message, ("127.0.0.1", server.sip_port))
        return sock.recv(65535).split(b"\r\n", 1)[0].decode()


@pytest.mark.parametrize(
    ("name", "status"),
    [("insuf", 400), ("unksm2", 400), ("novelsc", 416), ("baddate", 400)],
)
def test_rfc4475_case_over_udp(server: ServerProcess, name: str, status: int) -> None:
    assert first_status_line(server, load(name)).startswith(f"SIP/2.0 {status} ")
    options = (
        "OPTIONS sip:greeting@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK" + name + "-after\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:greeting@127.0.0.1>\r\n"
        f"Call-ID: {name}-after\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    assert first_status_line(server, options.encode()) == "SIP/2.0 200 OK"  # still up
