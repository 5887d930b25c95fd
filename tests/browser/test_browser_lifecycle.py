"""The call's life as a browser sees it: the page loads cleanly, and a server hangup reaches a
plain WHIP client (no data channel, nothing but the peer connection) at once.

The WHIP client is a few lines of page JavaScript run in headless Chromium on the server's own
origin; it also reads the call's events as server-sent events, so that the moment the server
hung up (`hangup_requested`) and the peer connection's state changes are on one clock.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.browser.conftest import ChromeFactory
from tests.browser.test_browser_call import wait_until
from tests.support.server import ServerProcess
from tests.support.speech import write_wav

pytestmark = pytest.mark.interop

# Chromium left alone (consent freshness only) stays "connected" ~7 s and reaches "failed" after
# ~17 s; a peer that is told (DTLS close_notify, an ICE error answer) leaves "connected" in well
# under a second. 3 s tells the two apart with room for a loaded machine.
HANGUP_NOTICED_S = 3.0

WHIP_CALL = """
const done = arguments[arguments.length - 1];
(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const pc = new RTCPeerConnection();
  const whip = window.whip = { pc, states: [], events: [] };
  pc.addTransceiver(stream.getAudioTracks()[0], { direction: "sendrecv" });
  pc.onconnectionstatechange = () => whip.states.push([pc.connectionState, performance.now()]);
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === "complete") resolve(); };
    setTimeout(resolve, 3000);
  });
  const response = await fetch("/whip/" + arguments[0], {
    method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
  const body = await response.text();
  if (response.status !== 201) { done({ status: response.status, body }); return; }
  await pc.setRemoteDescription({ type: "answer", sdp: body });
  const callId = response.headers.get("Location").split("/").pop();
  const source = new EventSource("/webrtc/calls/" + callId + "/events");
  source.onmessage = (e) => {
    const m = JSON.parse(e.data);
    whip.events.push([m.event || m.type, performance.now()]);
  };
  source.onerror = () => source.close();  // the stream ends with the call: no reconnect
  done({ status: response.status, callId });
})().catch((err) => done({ error: String(err) }));
"""


@pytest.fixture
def quiet_microphone(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "quiet.wav", np.zeros(48000 * 30, dtype=np.int16), 48000)


def test_page_loads_with_a_favicon_and_no_console_errors(
    chrome: ChromeFactory, server: ServerProcess, quiet_microphone: Path
) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    with urllib.request.urlopen(f"{base}/favicon.ico", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("image/svg+xml")
        assert b"<svg" in response.read()
    driver = chrome(quiet_microphone)
    driver.get(f"{base}/")
    wait_until(driver, "return document.getElementById('route').options.length > 0")
    icon = driver.execute_script("return document.querySelector('link[rel=icon]').href")
    assert icon.endswith("/favicon.ico")
    time.sleep(1)  # the browser fetches the icon after the page: let a 404 reach the console
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def test_plain_whip_client_learns_of_the_server_hangup_at_once(
    chrome: ChromeFactory, server: ServerProcess, quiet_microphone: Path
) -> None:
    driver = chrome(quiet_microphone)
    driver.get(f"http://127.0.0.1:{server.http_port}/")
    started = driver.execute_async_script(WHIP_CALL, "greeting")
    assert started.get("status") == 201, started
    # The greeting route speaks for a few seconds, then its SWML hangs up.
    wait_until(driver, "return whip.events.some(([name]) => name === 'hangup_requested')", timeout=40)
    deadline = time.monotonic() + 25
    while True:
        states = driver.execute_script("return whip.states")
        after = [s for s in states if s[0] in ("disconnected", "failed", "closed")]
        if after or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    events = driver.execute_script("return whip.events")
    hangup_at = next(at for name, at in events if name == "hangup_requested")
    assert any(state == "connected" for state, _ in states), states  # the call was up
    assert after, f"the browser still thinks the call is up 25 s after the hangup: {states}"
    noticed_s = (after[0][1] - hangup_at) / 1000
    print(json.dumps({"whip_hangup_noticed_s": round(noticed_s, 3), "states": states}))
    assert noticed_s < HANGUP_NOTICED_S, (noticed_s, states)
    # The server's side closed cleanly too (the revocation leaves aiortc nothing to fail on).
    deadline = time.monotonic() + 5
    while server.get("/health").get("webrtc_sessions"):
        assert time.monotonic() < deadline, "the session was not closed"
        time.sleep(0.1)
    time.sleep(0.5)  # the close runs in a task after the session is forgotten
    failures = [r for r in server.records() if r.get("msg") == "peer connection close failed"]
    assert failures == [] and not any("Traceback" in line for line in server.lines), failures
