"""Debian baresip calls the server over SIP/TLS with SDES-SRTP mandatory (``mediaenc=srtp-mand``,
RTP/SAVP + a=crypto) and ``[sip] media_encryption = "required"``: the greeting call connects,
both directions flow (baresip records the greeting's voice; the server decrypts baresip's packets),
and a capture of the media port shows only SRTP: every RTP packet carries an auth tag and none
holds the greeting's µ-law in clear.

The capture is an AF_PACKET socket on ``lo`` (needs CAP_NET_RAW; skipped without it)."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mediaserver.rtp.packet import is_rtcp
from mscodecs import make_codec
from tests.interop.conftest import BaresipFactory
from tests.support.baresip import Baresip, find_module_dir, require_baresip
from tests.support.server import REPO, ServerProcess, free_port
from tests.support.speech import write_wav

require_baresip(at_import=True)
pytestmark = pytest.mark.interop

TAGS = {4, 10}  # AES_CM_128_HMAC_SHA1_32 / _80
# libre (baresip 1.0) routes only sip: URIs (TLS by ;transport=tls): a sips: Contact in our 200 OK
# makes its ACK fail with ENOSYS and it closes the call. SDES has been negotiated by then.


def require(condition: bool, why: str) -> None:
    """Skip without ``condition``; fail instead under MS_REQUIRE_PEERS=1 (as require_baresip does)."""
    if condition:
        return
    if os.environ.get("MS_REQUIRE_PEERS") == "1":
        pytest.fail(f"MS_REQUIRE_PEERS=1 but {why}", pytrace=False)
    pytest.skip(why)


def can_capture() -> bool:
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800)).close()
    except (OSError, AttributeError):
        return False
    return True


class SrtpBaresip(Baresip):
    """A baresip whose account uses SDES-SRTP (``mediaenc``: ``srtp`` = best effort, RTP/AVP +
    a=crypto; ``srtp-mand`` = RTP/SAVP) and, given ``cafile``, trusts our self-signed certificate."""

    def __init__(self, name: str, *, mediaenc: str, cafile: Path | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.mediaenc = mediaenc
        self.cafile = cafile

    def _write_config(self) -> None:
        super()._write_config()
        config = self.config_dir / "config"
        ca = f"sip_cafile\t{self.cafile}\n" if self.cafile else ""
        config.write_text(config.read_text() + ca + "module\tsrtp.so\n")
        accounts = self.config_dir / "accounts"
        accounts.write_text(accounts.read_text().rstrip("\n") + f";mediaenc={self.mediaenc}\n")


def start(factory: BaresipFactory, peer: Baresip) -> Baresip:
    factory.instances.append(peer)  # stopped, and its log attached on failure, by the fixture
    return peer.start()


class Sniffer:
    """Every UDP datagram on loopback to or from a port in ``ports`` (one copy of each)."""

    def __init__(self, ports: range) -> None:
        self.ports = ports
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.packets: list[tuple[int, int, bytes]] = []  # (source port, destination port, payload)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, address = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] == socket.PACKET_OUTGOING:  # lo shows each packet leaving and arriving
                continue
            ip = frame[14:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            udp = ip[(ip[0] & 0x0F) * 4 :]
            sport, dport = struct.unpack("!HH", udp[:4])
            if sport in self.ports or dport in self.ports:
                self.packets.append((sport, dport, udp[8:]))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def make_cert(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def plain_windows(pcm: np.ndarray, size: int = 16) -> set[bytes]:
    """Every ``size``-byte window of the µ-law encoding of the voiced part of ``pcm``."""
    codec = make_codec("PCMU", 8000)
    voiced = [pcm[i : i + 160] for i in range(0, len(pcm) - 160, 160) if np.abs(pcm[i : i + 160]).max() > 500]
    encoded = b"".join(codec.encode(frame.astype(np.int16)) for frame in voiced)
    return {encoded[i : i + size] for i in range(0, len(encoded) - size)}


def test_baresip_srtp_mandatory_over_tls_to_the_greeting(baresip_factory: BaresipFactory, tmp_path: Path) -> None:
    require((find_module_dir() / "srtp.so").exists(), "baresip's srtp module is not installed")
    require(can_capture(), "capturing loopback needs CAP_NET_RAW (AF_PACKET)")
    cert, key = make_cert(tmp_path)
    tls_port = free_port(socket.SOCK_STREAM)
    config = tmp_path / "srtp.toml"
    config.write_text(
        f'[sip]\nmedia_encryption = "required"\n[sip.tls]\nport = {tls_port}\ncert = "{cert}"\nkey = "{key}"\n'
        f'[routes]\ndefault = "{REPO / "config/swml/greeting.yaml"}"\n'
    )
    server = ServerProcess(config, rtp_base=42800, log_level="INFO").start()
    sniffer = Sniffer(range(server.rtp_range[0], server.rtp_range[1] + 1))
    try:
        phone = start(
            baresip_factory,
            SrtpBaresip("srtpcaller", mediaenc="srtp-mand", cafile=cert, codec="PCMU", workdir=tmp_path / "caller"),
        )
        phone.call(f"sip:greeting@127.0.0.1:{tls_port};transport=tls")
        phone.wait_for("established", timeout=15)
        # baresip took our RTP/SAVP answer and key.  Its log line can trail the ctrl_tcp event that
        # says the call is established (two channels, read by two threads): wait for it.
        phone.wait_for("SRTP is Enabled", timeout=5)
        phone.wait_for("closed", timeout=30)  # the greeting ends with the server's BYE
        time.sleep(0.5)
    finally:
        sniffer.stop()
        with contextlib.suppress(Exception):
            server.wait_idle()
        server.stop()

    starts = [r for r in server.records() if r.get("event") == "call_started"]
    assert starts, "no call reached the server"
    (ended,) = [r for r in server.records() if r.get("event") == "call_ended"]
    assert ended["packets_in"] > 50, ended  # baresip's SRTP, decrypted and accepted by the server
    assert not any("SRTP packet dropped" in line for line in server.lines)

    rtp = [(s, d, p) for s, d, p in sniffer.packets if not is_rtcp(p)]
    assert len(rtp) > 100, f"captured {len(rtp)} RTP packets"
    lengths = {len(p) - 12 - 160 for _, _, p in rtp}
    assert lengths <= TAGS and len(lengths) == 1, lengths  # PCMU 20 ms + one suite's auth tag, both ways

    pcm, rate = phone.read_recording()
    assert rate == 8000
    mono = np.clip(np.round((pcm if pcm.ndim == 1 else pcm[:, 0]) * 32768), -32768, 32767).astype(np.int16)
    assert np.abs(mono.astype(np.int32)).max() > 2000  # baresip decrypted and heard the greeting
    windows = plain_windows(mono)
    assert windows  # the greeting's voice, as plain µ-law would have carried it
    leaked = [p for _, _, p in rtp if any(p[i : i + 16] in windows for i in range(12, len(p) - 16))]
    assert not leaked, f"{len(leaked)} packets carry the greeting's µ-law in clear"


def tone(path: Path, hz: float, seconds: float) -> Path:
    t = np.arange(int(8000 * seconds)) / 8000
    return write_wav(path, (0.4 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 8000)


def energy(peer: Baresip) -> float:
    pcm, _ = peer.read_recording()
    return float(np.abs(pcm).max())


@pytest.mark.parametrize(
    ("mode", "caller_enc", "callee_enc"),
    [("optional", "", "srtp"), ("required", "srtp-mand", "srtp-mand")],
)
def test_connect_dials_baresip_with_srtp(
    baresip_factory: BaresipFactory, tmp_path: Path, mode: str, caller_enc: str, callee_enc: str
) -> None:
    """SWML connect from the server's dialer to a baresip with SRTP: ``optional`` offers RTP/AVP +
    a=crypto (taken by baresip's best-effort ``srtp``) while the plain caller's leg stays plain;
    ``required`` offers RTP/SAVP (``srtp-mand``) and takes only SRTP callers (over UDP here)."""
    require((find_module_dir() / "srtp.so").exists(), "baresip's srtp module is not installed")
    require(can_capture(), "capturing loopback needs CAP_NET_RAW (AF_PACKET)")
    callee = start(
        baresip_factory,
        SrtpBaresip(
            "callee",
            mediaenc=callee_enc,
            codec="PCMU",
            auto_answer=True,
            mic=tone(tmp_path / "callee.wav", 440, 20),
            workdir=tmp_path / "callee",
        ),
    )
    flow = tmp_path / "connect.yaml"
    flow.write_text(
        f'sections:\n  main:\n    - answer: {{}}\n    - connect:\n        to: "{callee.uri}"\n    - hangup: {{}}\n'
    )
    config = tmp_path / "connect.toml"
    config.write_text(
        f'[sip]\nmedia_encryption = "{mode}"\n[routes]\ndefault = "{REPO / "config/swml/greeting.yaml"}"\n'
        f'[routes.users]\nbridge = "{flow}"\n'
    )
    server = ServerProcess(config, rtp_base=42900, log_level="INFO").start()
    sniffer = Sniffer(range(server.rtp_range[0], server.rtp_range[1] + 1))
    mic = tone(tmp_path / "caller.wav", 1000, 3)
    options: dict[str, Any] = {"codec": "PCMU", "mic": mic, "mic_lead_s": 0.5, "mic_tail_s": 1.5}
    if caller_enc:
        caller = start(baresip_factory, SrtpBaresip("caller", mediaenc=caller_enc, workdir=tmp_path / "a", **options))
    else:
        caller = baresip_factory("caller", **options)
    try:
        caller.call(f"sip:bridge@127.0.0.1:{server.sip_port}")
        caller.wait_for("established", timeout=15)
        callee.wait_for("established", timeout=15)
        caller.wait_for("closed", timeout=20)  # the caller's mic ran out: it hangs up, the bridge ends
        callee.wait_for("closed", timeout=10)
        time.sleep(0.3)
    finally:
        sniffer.stop()
        with contextlib.suppress(Exception):
            server.wait_idle()
        server.stop()

    assert "SRTP is Enabled" in callee.log_text
    assert ("SRTP is Enabled" in caller.log_text) == bool(caller_enc)
    ended = [r for r in server.records() if r.get("event") == "call_ended"]
    assert len(ended) == 2 and all(r["packets_in"] > 50 for r in ended), ended  # both legs decrypted/accepted
    assert not any("SRTP packet dropped" in line for line in server.lines)
    # Per server port (one per leg): the RTP payload length beyond 20 ms of PCMU is the auth tag.
    tags: dict[int, set[int]] = {}
    for sport, dport, payload in sniffer.packets:
        if not is_rtcp(payload):
            port = sport if sport in sniffer.ports else dport
            tags.setdefault(port, set()).add(len(payload) - 12 - 160)
    expected = sorted([10, 10] if caller_enc else [0, 10])  # baresip picks the _80 suite we answer/offer first
    assert sorted(next(iter(t)) for t in tags.values() if len(t) == 1) == expected, tags
    assert energy(callee) > 0.1 and energy(caller) > 0.1  # each heard the other's tone through SRTP
