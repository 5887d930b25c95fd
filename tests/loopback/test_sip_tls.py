"""SIP over TLS against a real server: a self-signed certificate from the config, OPTIONS and an
INVITE answered over the TLS connection, and a bad certificate stopping start-up with its name."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.sipclient import parse_response
from tests.support.server import REPO, ServerProcess, free_port


def make_cert(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def request(method: str, port: int, tls_port: int, body: str = "") -> bytes:
    ctype = "Content-Type: application/sdp\r\n" if body else ""
    return (
        f"{method} sips:greeting@127.0.0.1:{tls_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bKtls{method};rport\r\nMax-Forwards: 70\r\n"
        f"From: <sips:t@127.0.0.1>;tag=tls1\r\nTo: <sips:greeting@127.0.0.1>\r\nCall-ID: tls-{method}\r\n"
        f"CSeq: 1 {method}\r\nContact: <sips:t@127.0.0.1:{port}>\r\n{ctype}Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def read_response(sock: ssl.SSLSocket, status_at_least: int = 200) -> tuple[int, bytes]:
    buffer = b""
    while True:
        chunk = sock.recv(65535)
        assert chunk, "connection closed"
        buffer += chunk
        for match in re.finditer(rb"SIP/2.0 (\d{3})[^\r]*\r\n(.*?)\r\n\r\n", buffer, re.S):
            if int(match.group(1)) >= status_at_least:
                return int(match.group(1)), buffer


@pytest.mark.skipif(not Path("/usr/bin/openssl").exists(), reason="needs openssl to make a certificate")
def test_options_and_invite_over_tls(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    tls_port = free_port()
    config = tmp_path / "tls.toml"
    config.write_text(
        f'[sip.tls]\nport = {tls_port}\ncert = "{cert}"\nkey = "{key}"\n'
        f'[routes]\ndefault = "{REPO / "config/swml/greeting.yaml"}"\n'
    )
    server = ServerProcess(config, rtp_base=42400, log_level="INFO").start()
    context = ssl.create_default_context(cafile=str(cert))  # the server proves it holds the key
    try:
        with (
            socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            port = sock.getsockname()[1]
            sock.sendall(request("OPTIONS", port, tls_port))
            status, data = read_response(sock)
            response = parse_response(data)
            assert status == 200 and response is not None
            assert response.headers["via"].startswith("SIP/2.0/TLS")
            sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
            sock.sendall(request("INVITE", port, tls_port, sdp))
            status, data = read_response(sock)
            assert status == 200, data
            assert f"<sips:mediaserver@127.0.0.1:{tls_port}>".encode() in data  # Contact for TLS
    finally:
        server.stop()


def test_unloadable_certificate_stops_startup_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    config = tmp_path / "bad.toml"
    config.write_text(f'[sip.tls]\nport = {free_port()}\ncert = "{bad}"\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mediaserver",
            "serve",
            "--host",
            "127.0.0.1",
            "--sip-port",
            str(free_port()),
            "--http-port",
            str(free_port()),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode != 0
    assert "bad.pem" in proc.stdout + proc.stderr
