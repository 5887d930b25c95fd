"""Debian baresip against the server directly: cancel before the answer, hold and resume by
re-INVITE, DTMF by RFC 4733. (baresip 1.0 ignores ``dtmfmode=info``; INFO DTMF is covered by
the raw-SIP loopback tests.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.interop.conftest import BaresipFactory
from tests.support.baresip import require_baresip
from tests.support.server import REPO, ServerProcess
from tests.support.speech import contains_words, synthesize_espeak, transcribe

require_baresip(at_import=True)
pytestmark = pytest.mark.interop


def test_caller_cancels_before_answer(baresip_factory: BaresipFactory, tmp_path: Path) -> None:
    flow = tmp_path / "slow.yaml"
    flow.write_text("sections:\n  main:\n    - sleep: 20000\n    - answer: {}\n    - hangup: {}\n")
    config = tmp_path / "slow.toml"
    config.write_text(f'[routes]\ndefault = "{REPO / "config/swml/greeting.yaml"}"\n[routes.users]\nslow = "{flow}"\n')
    server = ServerProcess(config, rtp_base=42200, log_level="INFO").start()
    try:
        phone = baresip_factory("caller", codec="PCMU")
        phone.call(f"sip:slow@127.0.0.1:{server.sip_port}")
        phone.wait_for("ringing", timeout=10)  # our 180
        phone.hangup()  # before the answer: baresip sends CANCEL
        phone.wait_for("closed", timeout=10)
        health = server.wait_idle()
        assert health["rtp_ports_in_use"] == 0
        events = server.records()
        remote = [r for r in events if r.get("event") == "remote_hangup"]
        assert remote and remote[-1]["reason"] == "CANCEL"
        ended = [r for r in events if r.get("event") == "signaling_ended"]
        assert ended and ended[-1]["reason"] == "cancelled"
        assert not any(r.get("event") == "verb_started" and r.get("verb") == "answer" for r in events)
    finally:
        server.stop()


def test_hold_resume_and_rfc4733_dtmf_from_baresip(server: ServerProcess, baresip_factory: BaresipFactory) -> None:
    before = len(server.lines)  # the session server has served other tests' calls
    phone = baresip_factory("caller", codec="PCMU")
    phone.call(f"sip:long@127.0.0.1:{server.sip_port}")
    phone.wait_for("established", timeout=15)
    time.sleep(1.0)
    call_id = wait_for_event(server, "call_started", since=before)
    phone.command("hold")  # baresip re-INVITEs with a=sendonly; we answer recvonly and go quiet
    wait_for_event(server, "held", call_id=call_id)
    phone.command("resume")
    wait_for_event(server, "resumed", call_id=call_id)
    for digit in "5#":
        phone.command("sndcode", digit)  # RFC 4733 telephone-event
        time.sleep(0.8)
    wait_for_event(server, "dtmf", count=2, call_id=call_id)
    records = server.records(call_id)
    assert [(r["digit"], r["source"]) for r in records if r.get("event") == "dtmf"] == [
        ("5", "rfc4733"),
        ("#", "rfc4733"),
    ]
    held = next(r for r in records if r.get("event") == "held")
    assert held["direction"] in ("recvonly", "inactive")
    phone.hangup()
    phone.wait_for("closed", timeout=5)
    server.wait_idle()


def wait_for_event(
    server: ServerProcess,
    event: str,
    count: int = 1,
    timeout: float = 10.0,
    *,
    call_id: str | None = None,
    since: int = 0,
) -> str:
    """Wait for ``count`` call events named ``event`` (of ``call_id``, logged after line ``since``);
    returns the call id of the last one."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for line in list(server.lines)[since:]:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == event and call_id in (None, record.get("call_id")):
                found.append(record)
        if len(found) >= count:
            return str(found[-1].get("call_id"))
        assert time.monotonic() < deadline, f"no {event} event: " + "\n".join(server.lines[-20:])
        time.sleep(0.1)


@pytest.mark.slow
def test_refer_transfers_the_caller_to_a_second_baresip_that_hears_it(
    baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    words = "hello my name is john and i need help with my account"
    wav = synthesize_espeak(words, tmp_path / "caller.wav", 16000)
    target = baresip_factory("target", codec="PCMU", auto_answer=True)
    flow = tmp_path / "transfer.yaml"
    flow.write_text(
        f'sections:\n  main:\n    - answer: {{}}\n    - sip_refer:\n        to_uri: "{target.uri}"\n'
        "    - hangup: {}\n"
    )
    config = tmp_path / "transfer.toml"
    config.write_text(f'[routes]\ndefault = "{REPO / "config/swml/greeting.yaml"}"\n[routes.users]\nxfer = "{flow}"\n')
    server = ServerProcess(config, rtp_base=42600, log_level="INFO").start()
    try:
        caller = baresip_factory("caller", codec="PCMU", mic=wav, mic_lead_s=1.0, mic_tail_s=3.0)
        caller.call(f"sip:xfer@127.0.0.1:{server.sip_port}")
        target.wait_for("established", timeout=20)  # the transferee called the target
        target.wait_for("closed", timeout=30)  # the caller's mic ran out: it hung up
        done = [r for r in server.records() if r.get("event") == "sip_refer_done"]
        assert done and 200 <= done[0]["status"] < 300, done
        text = transcribe(target.recording_path)
        assert contains_words(text, words), text
    finally:
        server.stop()
