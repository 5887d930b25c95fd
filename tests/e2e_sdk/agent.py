"""Runs an unmodified SignalWire SDK example agent as its own process, and fetches its SWML.

`SdkAgent(example, route)` starts `python <signalwire/_docs/examples/example.py>` on a free
port with known basic-auth credentials (SWML_BASIC_AUTH_USER/PASSWORD), waits until its port
answers, and `fetch_swml(call_id)` POSTs the call body of contract §4.1 so that the tokens in
the returned SWML are minted for that call id. The agent's stdout/stderr are kept in `lines`
(the SDK logs every SWAIG request it handles, which the tests read).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from base64 import b64encode
from pathlib import Path
from typing import Any

import signalwire

EXAMPLES = Path(signalwire.__file__).parent / "_docs" / "examples"
USER, PASSWORD = "tester", "s3cret-pass"
TOKEN_INVALID = "security token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call_body(call_id: str, **call: Any) -> dict[str, Any]:
    """The SWML fetch body (contract §4.1) for one call."""
    return {
        "call": {
            "call_id": call_id,
            "node_id": "node-1",
            "segment_id": "seg-1",
            "call_state": "created",
            "direction": "inbound",
            "type": "sip",
            "from": "sip:+15551230000@127.0.0.1",
            "to": "sip:agent@127.0.0.1",
            "from_number": "+15551230000",
            "to_number": "agent",
            "headers": [],
            "project_id": "proj-1",
            "space_id": "space-1",
            **call,
        },
        "vars": {"userVariables": {}},
        "envs": {},
        "params": {},
    }


class SdkAgent:
    def __init__(
        self, example: str, route: str = "/", env: dict[str, str] | None = None, *, port_shim: bool = False
    ) -> None:
        self.path = EXAMPLES / example
        self.port_shim = port_shim  # the example pins port 3000: bind $PORT instead (port_shim.py)
        self.route = route
        self.port = free_port()
        self.env = env or {}
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{USER}:{PASSWORD}@127.0.0.1:{self.port}{self.route}"

    def start(self, timeout: float = 60.0) -> SdkAgent:
        env = dict(
            os.environ,
            PORT=str(self.port),
            SWML_BASIC_AUTH_USER=USER,
            SWML_BASIC_AUTH_PASSWORD=PASSWORD,
            SWML_PROXY_URL_BASE=self.base,
            SWML_ALLOW_PRIVATE_URLS="true",
            PYTHONUNBUFFERED="1",
            **self.env,
        )
        shim = [str(Path(__file__).with_name("port_shim.py"))] if self.port_shim else []
        self.proc = subprocess.Popen(
            [sys.executable, *shim, str(self.path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=self.path.parent,
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.path.name} did not start:\n" + "\n".join(self.lines[-30:]))

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def fetch_swml(self, call_id: str, **call: Any) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.base}{self.route}",
            data=json.dumps(call_body(call_id, **call)).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": "Basic " + b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.loads(response.read()))

    def __enter__(self) -> SdkAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ai_verb(swml: dict[str, Any]) -> dict[str, Any]:
    for verb in swml["sections"]["main"]:
        if "ai" in verb:
            return dict(verb["ai"])
    raise AssertionError("the SWML has no ai verb")
