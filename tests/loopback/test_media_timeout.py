"""The RTP inactivity timeout over real sockets (issue 17): a `mediaserver serve` with `[rtp]
timeout_s = 2`. A caller who answers, sends RTP briefly and goes silent without a BYE (the BYE
lost under load) gets the server's BYE within a few seconds, and the server is idle again, its
log and /metrics saying why. A caller who puts the call on hold (re-INVITE a=sendonly) owes no
RTP: the call lives through the silence, and times out once resumed and still silent."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest

from benchmarks.sipclient import SipCaller
from tests.loopback.test_sip_features import reinvite
from tests.support.server import ServerProcess

TIMEOUT_S = 2
WAIT = """
sections:
  main:
    - answer: {}
    - sleep: -1
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("media_timeout")
    (tmp / "wait.yaml").write_text(WAIT)
    config = tmp / "media_timeout.toml"
    config.write_text(f'[rtp]\ntimeout_s = {TIMEOUT_S}\n\n[routes]\ndefault = "wait.yaml"\n')
    proc = ServerProcess(config, rtp_base=43300, log_level="INFO").start()
    try:
        yield proc
    finally:
        proc.stop()


async def answered_call(server: ServerProcess) -> SipCaller:
    caller = SipCaller(("127.0.0.1", server.sip_port), user="wait", codec="PCMU")
    await caller.open()
    assert (await caller.call()).status == 200
    await caller.send_audio(np.zeros(8000 // 2, np.int16))  # 0.5 s of RTP, then nothing
    return caller


def media_timeouts_counted(server: ServerProcess) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(r"^mediaserver_calls_media_timeout_total (\S+)$", text, re.MULTILINE)
    assert match, text
    return float(match.group(1))


async def test_a_caller_gone_silent_without_bye_is_hung_up_and_the_server_is_idle(server: ServerProcess) -> None:
    before = media_timeouts_counted(server)
    caller = await answered_call(server)
    try:
        assert server.get("/health")["calls"] == 1
        await asyncio.wait_for(caller.bye_received.wait(), TIMEOUT_S + 8)  # generous on a busy box
    finally:
        caller.close()
    health = server.wait_idle()
    assert health["calls"] == 0 and health["rtp_ports_in_use"] == 0
    records = server.records(caller.call_id)
    hangup = [r for r in records if r.get("event") == "hangup_requested"]
    assert hangup and hangup[0]["cause"] == "MEDIA_TIMEOUT" and hangup[0]["reason"].startswith("no RTP for")
    assert [r["cause"] for r in records if r.get("event") == "call_ended"] == ["MEDIA_TIMEOUT"]
    warning = [r for r in records if r.get("msg") == "no media from the peer: ending the call"]
    assert warning and warning[0]["level"] == "WARNING" and warning[0]["silence_s"] >= TIMEOUT_S
    assert media_timeouts_counted(server) == before + 1


async def test_a_held_call_lives_through_the_silence_and_times_out_once_resumed(server: ServerProcess) -> None:
    caller = await answered_call(server)
    try:
        assert (await reinvite(caller, "sendonly", 2)).status == 200  # hold: no RTP is owed now
        await asyncio.sleep(2 * TIMEOUT_S + 1)
        assert not caller.bye_received.is_set()
        assert server.get(f"/calls/{caller.call_id}")["state"] == "active"
        assert (await reinvite(caller, "sendrecv", 3)).status == 200  # resumed, and still silent
        await asyncio.wait_for(caller.bye_received.wait(), TIMEOUT_S + 8)
    finally:
        caller.close()
    server.wait_idle()
    hangup = [r for r in server.records(caller.call_id) if r.get("event") == "hangup_requested"]
    assert hangup and hangup[0]["cause"] == "MEDIA_TIMEOUT"
