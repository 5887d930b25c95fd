"""The `mediaserver` command's contract with users and scripts: clear errors, non-zero exits."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.support.server import REPO, free_port


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediaserver", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def test_taken_sip_port_exits_non_zero_naming_the_address() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", port))
        result = run_cli("serve", "--host", "127.0.0.1", "--sip-port", str(port), "--http-port", str(free_port()))
    assert result.returncode == 1
    assert f"cannot listen for SIP on 127.0.0.1:{port}" in result.stderr


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[rtp]\nport_min = 'low'\n")
    result = run_cli("serve", "--config", str(cfg))
    assert result.returncode == 2
    assert "rtp.port_min: expected an integer" in result.stderr


def test_help_lists_the_flags() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    for flag in ("--sip-port", "--http-port", "--config"):
        assert flag in result.stdout
