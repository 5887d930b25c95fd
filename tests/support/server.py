"""Runs `mediaserver serve` as a real subprocess on free ports, for loopback and interop tests."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = REPO / "tests" / "fixtures" / "config" / "test.toml"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A loopback port free for both UDP and TCP right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


class ServerProcess:
    def __init__(
        self, config: Path = TEST_CONFIG, rtp_base: int | None = None, rtp_ports: int = 19, log_level: str = "DEBUG"
    ) -> None:
        self.sip_port = free_port()
        self.http_port = free_port()
        base = rtp_base or 30000 + (os.getpid() % 500) * 40
        self.rtp_range = (base, base + 2 * rtp_ports)
        self.log_level = log_level
        self.config = config
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = dict(
            os.environ,
            MS_RTP_PORT_MIN=str(self.rtp_range[0]),
            MS_RTP_PORT_MAX=str(self.rtp_range[1]),
            MS_LOG_LEVEL=self.log_level,
            HF_HUB_OFFLINE="1",
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mediaserver",
                "serve",
                "--host",
                "127.0.0.1",
                "--sip-port",
                str(self.sip_port),
                "--http-port",
                str(self.http_port),
                "--config",
                str(self.config),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=REPO,
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        # The `listening` line is logged at INFO; below that level, /health answering is the sign.
        while not self._ready.wait(0.2) and self.proc.poll() is None and time.monotonic() < deadline:
            try:
                self.get("/health")
                self._ready.set()
            except (OSError, http.client.HTTPException):
                # HTTPException: before the server listens, the poll's own ephemeral port can be
                # the free port picked for it, and TCP then connects the socket to itself (a
                # "BadStatusLine: GET /health" echo); the next poll tries again.
                pass
        if not self._ready.is_set() or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "\n".join(self.lines[-40:]))
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if '"msg": "listening"' in line:
                self._ready.set()

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as response:
            return json.loads(response.read())

    def records(self, call_id: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if call_id is None or entry.get("call_id") == call_id:
                out.append(entry)
        return out

    def wait_idle(self, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until no call is live and every RTP port is back in the pool."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.get("/health")
            if health["calls"] == 0 and health["rtp_ports_in_use"] == 0:
                return health
            if time.monotonic() > deadline:
                raise AssertionError(f"server not idle after {timeout} s: {health}")
            time.sleep(0.1)
