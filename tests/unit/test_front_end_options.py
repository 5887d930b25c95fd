"""The front ends read no settings: app.py turns [sip], [rtp], [routes] and [webrtc] into the
plain option values the SIP front end, its dialer and the WebRTC front end take."""

from __future__ import annotations

from pathlib import Path

from aiortc.rtcconfiguration import RTCIceTransportPolicy

from mediaserver.app import sip_options, webrtc_options
from mediaserver.settings import load_settings
from mediaserver.signaling.sip_dialer import DialerOptions, Registration
from mediaserver.transport.webrtc import rtc_configuration

CONFIG = """
[sip]
host = "0.0.0.0"
unknown_user = "reject"
route_header = "X-Route"
[sip.users]
alice = "wonderland"
[sip.trunks]
carrier = ["203.0.113.0/24"]
[sip.security]
challenge = 407
[sip.register]
registrar = "sip:pbx.example.com:5060"
user = "agent"
password = "x"
[rtp]
codecs = ["PCMA", "PCMU"]
jitter_max_depth_frames = 6
[routes.users]
sales = "http://127.0.0.1:3000/sales"
[webrtc]
ice_transport_policy = "relay"
host_addresses = ["127.0.0.1"]
[[webrtc.ice_servers]]
urls = ["turn:turn.example.org"]
username = "u"
credential = "p"
"""


def test_sip_options_carry_the_sip_rtp_and_routes_values(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    settings = load_settings(path, environ={})
    options = sip_options(settings)
    assert (options.jitter_depth_frames, options.jitter_max_depth_frames) == (2, 6)  # the shipped start depth
    assert options.contact_host == "127.0.0.1"  # derived from host 0.0.0.0, as [sip] says
    assert options.unknown_user == "reject" and "sales" in options.known_users
    assert options.known_users == frozenset(settings.routes.users)
    assert options.route_header == "X-Route" and options.codecs == ("PCMA", "PCMU")
    assert options.access.users == {"alice": "wonderland"} and options.access.challenge == 407
    assert options.access.trunks == {"carrier": ("203.0.113.0/24",)}
    assert options.tls.port == 0
    assert options.dialer() == DialerOptions(
        contact_host="127.0.0.1",
        codecs=("PCMA", "PCMU"),
        jitter_depth_frames=settings.rtp.jitter_depth_frames,
        jitter_max_depth_frames=6,
        register=Registration("sip:pbx.example.com:5060", "agent", "x", 300),
    )


def test_webrtc_options_carry_the_routes_and_the_ice_configuration(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    settings = load_settings(path, environ={})
    options = webrtc_options(settings)
    assert "sales" in options.routes and list(options.routes) == list(settings.routes.users)
    assert list(options.host_addresses) == ["127.0.0.1"]
    config = rtc_configuration(options.ice)
    assert config.iceTransportPolicy == RTCIceTransportPolicy.RELAY
    assert [(s.urls, s.username, s.credential) for s in config.iceServers] == [(["turn:turn.example.org"], "u", "p")]
