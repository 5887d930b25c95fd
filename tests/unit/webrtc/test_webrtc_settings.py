"""The [webrtc] settings: defaults contact nothing outside, bad ICE entries name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.settings import ConfigError, IceServer, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_defaults_have_no_ice_servers() -> None:
    webrtc = load_settings(environ={}).webrtc
    assert webrtc.enabled and webrtc.ice_servers == () and webrtc.host_addresses == ()
    assert webrtc.ice_transport_policy == "all"


def test_stun_and_turn_servers_parse(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[webrtc]
host_addresses = ["192.0.2.10"]
ice_servers = [{ urls = "stun:stun.example.org:3478" },
               { urls = ["turn:turn.example.org:3478?transport=udp"], username = "u", credential = "p" }]
""",
    )
    webrtc = load_settings(path, environ={}).webrtc
    assert webrtc.host_addresses == ("192.0.2.10",)
    assert webrtc.ice_servers == (
        IceServer(("stun:stun.example.org:3478",)),
        IceServer(("turn:turn.example.org:3478?transport=udp",), "u", "p"),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('ice_servers = [{ urls = "turn:t.example.org" }]', r"ice_servers\[0\]: a TURN server needs a username"),
        ('ice_servers = [{ urls = "http://x" }]', r"ice_servers\[0\].urls: 'http://x' is not a stun:"),
        ('ice_servers = [{ url = "stun:x" }]', r"ice_servers\[0\]: unknown setting 'url'"),
        ('ice_servers = ["stun:x"]', r"ice_servers\[0\]: expected a table"),
        ('ice_transport_policy = "relay"', r"'relay' needs a TURN server"),
        ('ice_transport_policy = "none"', r"ice_transport_policy: 'none' is not one of"),
        ("host_addresses = [1]", r"host_addresses: expected a list of IP addresses"),
        ('enabled = "maybe"', r"webrtc.enabled: expected true or false"),
    ],
)
def test_bad_webrtc_settings_name_the_key(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, f"[webrtc]\n{body}\n"), environ={})


def test_environment_can_turn_webrtc_off() -> None:
    assert not load_settings(environ={"MS_WEBRTC_ENABLED": "false"}).webrtc.enabled
