"""Kamailio as registrar and proxy (the local-PBX shape), with Debian baresip as the caller.

The test writes a kamailio.cfg into a temp dir: usrloc in memory, digest auth (qop=auth) for the
server's own REGISTER, record-routing proxy for INVITEs. The server registers as
``agent@127.0.0.1`` with digest, and baresip reaches it by that registered name through kamailio
(the INVITE, the ACK and the BYE all cross the proxy), hearing the greeting.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.conftest import BaresipFactory
from tests.support.baresip import require_baresip
from tests.support.server import REPO, ServerProcess, free_port
from tests.support.speech import contains_words, transcribe

require_baresip(at_import=True)
pytestmark = pytest.mark.interop
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
PASSWORD = "s3cret-kam"

CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
alias="127.0.0.1:{port}"
mpath="{modules}/"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)
modparam("auth", "algorithm", "{algorithm}")

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    t_check_trans();
    if (is_method("REGISTER")) {{
        if ($fU == "agent") {{
            if (!pv_www_authenticate("$td", "{password}", "0")) {{
                xlog("L_INFO", "REGISTER challenged for $fU\\n");
                www_challenge("$td", "1");
                exit;
            }}
            xlog("L_INFO", "REGISTER authenticated for $fU\\n");
        }}
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    record_route();
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"""


class Kamailio:
    def __init__(self, workdir: Path, algorithm: str = "MD5") -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.cfg = workdir / "kamailio.cfg"
        self.cfg.write_text(CONFIG.format(port=self.port, modules=MODULES, algorithm=algorithm, password=PASSWORD))
        self.log = workdir / "kamailio.log"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Kamailio:
        self.proc = subprocess.Popen(
            [
                KAMAILIO,
                "-f",
                str(self.cfg),
                "-DD",
                "-E",
                "-Y",
                str(self.workdir),
                "-P",
                str(self.workdir / "k.pid"),
                "-m",
                "32",
                "-M",
                "8",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while "processes (at least)" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("kamailio did not start:\n" + self.log.read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        time.sleep(0.3)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @property
    def text(self) -> str:
        return self.log.read_text(errors="replace")


def require_kamailio() -> None:
    if not Path(KAMAILIO).exists() or not MODULES.is_dir():
        import os

        if os.environ.get("MS_REQUIRE_PEERS") == "1":
            pytest.fail("kamailio is not installed (Debian package 'kamailio')")
        pytest.skip("kamailio is not installed (Debian package 'kamailio')")


@pytest.fixture(params=["MD5", "SHA-256"])
def kamailio(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kamailio]:
    require_kamailio()
    proxy = Kamailio(tmp_path / "kamailio", algorithm=request.param).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def registered_server(tmp_path: Path, kamailio: Kamailio) -> ServerProcess:
    config = tmp_path / "server.toml"
    config.write_text(
        f'[sip.register]\nregistrar = "sip:127.0.0.1:{kamailio.port}"\nuser = "agent"\npassword = "{PASSWORD}"\n'
        f'expires = 60\n[routes]\ndefault = "{REPO / "config/swml/greeting.yaml"}"\n'
        f'[routes.users]\nagent = "{REPO / "config/swml/greeting.yaml"}"\n'  # not the shipped AI agent
    )
    server = ServerProcess(config, rtp_base=42000, log_level="INFO").start()
    deadline = time.monotonic() + 10
    while not any(r.get("msg") in ("registered", "registration failed") for r in server.records()):
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError("no registration outcome:\n" + "\n".join(server.lines[-30:]))
        time.sleep(0.1)
    return server


def test_server_registers_with_digest_and_is_called_through_the_proxy(
    kamailio: Kamailio, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    server = registered_server(tmp_path, kamailio)
    try:
        outcome = [r for r in server.records() if r.get("msg") in ("registered", "registration failed")]
        assert outcome[0]["msg"] == "registered", json.dumps(outcome) + kamailio.text[-2000:]
        assert outcome[0]["expires_s"] > 0
        assert "REGISTER challenged for agent" in kamailio.text
        assert "REGISTER authenticated for agent" in kamailio.text
        phone = baresip_factory("caller", codec="PCMU")
        phone.call(f"sip:agent@127.0.0.1:{kamailio.port}")  # the registered name, at the proxy
        phone.wait_for("established", timeout=15)
        phone.wait_for("closed", timeout=30)  # our BYE, routed back through kamailio's Record-Route
        text = transcribe(phone.recording_path)
        assert contains_words(text, ["thank", "you", "for", "calling", "voice", "media", "server"]), text
        server.wait_idle()
        started = [r for r in server.records() if r.get("event") == "call_started"]
        assert started and started[-1]["to_uri"].startswith("sip:agent@")
        sip_in = [r["peer"] for r in server.records(started[-1]["call_id"]) if r.get("event") == "sip_in"]
        assert sip_in and all(peer.endswith(f":{kamailio.port}") for peer in sip_in)  # all via the proxy
    finally:
        server.stop()


def test_unknown_name_at_the_proxy_is_404(kamailio: Kamailio, baresip_factory: BaresipFactory) -> None:
    phone = baresip_factory("caller", codec="PCMU")
    phone.call(f"sip:nobody@127.0.0.1:{kamailio.port}")
    closed = phone.wait_for("closed", timeout=10)
    assert "404" in str(getattr(closed, "param", closed))
