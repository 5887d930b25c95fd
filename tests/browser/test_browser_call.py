"""Headless Chromium places calls from the served page, with a synthesized caller on its microphone.

The page records the remote audio with WebAudio (`msCall.recordingWav()`, base64 WAV); the
test transcribes it. A screenshot of the page at the end of the call (the greeting in the
transcript, the event list down to `call_ended`) goes to tests/artifacts/ (and, with
MS_UPDATE_DOCS=1, to docs/webrtc-page.png as the documentation picture).
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import REPO, ChromeFactory
from tests.support.server import ServerProcess
from tests.support.speech import contains_words, synthesize_espeak, transcribe

GREETING = "Hello, thank you for calling. This is your voice media server speaking. Goodbye."
QUESTION = "Hello, what are your opening hours on Saturday?"

pytestmark = pytest.mark.interop


def wait_until(driver: Any, script: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            state = driver.execute_script(
                "return {phase: msCall.phase, error: msCall.error, events: msCall.events.map(e => e.event)}"
            )
            raise AssertionError(f"timed out waiting for `{script}`; page state: {state}")
        time.sleep(0.1)


def open_page(chrome: ChromeFactory, server: ServerProcess, microphone: Path, route: str) -> Any:
    driver = chrome(microphone)
    driver.get(f"http://127.0.0.1:{server.http_port}/?route={route}")
    wait_until(driver, f"return document.getElementById('route').value === '{route}'")
    return driver


def click(driver: Any, css: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, css).click()


@pytest.fixture
def microphone(tmp_path: Path) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    return synthesize_espeak(QUESTION, tmp_path / "question.wav", 48000)


@pytest.mark.slow
def test_browser_hears_the_greeting(
    chrome: ChromeFactory, server: ServerProcess, microphone: Path, tmp_path: Path, artifacts: Path
) -> None:
    driver = open_page(chrome, server, microphone, "greeting")
    click(driver, "#call")
    wait_until(driver, "return msCall.phase === 'live'")
    call_id = driver.execute_script("return msCall.callId")
    wait_until(driver, "return msCall.phase === 'ended'", timeout=40)  # the server hangs up
    # The page got the call's last events before the server closed the connection.
    names = driver.execute_script("return msCall.events.map(e => e.event)")
    assert names[-1] == "call_ended" and "hangup_requested" in names, names
    listed = driver.execute_script("return document.querySelector('#events li:last-child .n').textContent")
    assert listed == "call_ended"
    assert driver.execute_script("return document.getElementById('status').textContent") == "ended by server"
    shot = artifacts / "webrtc-page.png"
    assert driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000  # a real picture
    if os.environ.get("MS_UPDATE_DOCS") == "1":  # refresh the documentation picture on request only
        shutil.copyfile(shot, REPO / "docs" / "webrtc-page.png")
    wav = tmp_path / "heard.wav"
    wav.write_bytes(base64.b64decode(driver.execute_script("return msCall.recordingWav()")))
    text = transcribe(wav)
    assert contains_words(text, GREETING), text
    transcript = driver.execute_script("return document.getElementById('transcript').innerText")
    assert "thank you for calling" in transcript
    ended = next(e for e in server.records(call_id) if e.get("event") == "call_ended")
    assert ended["cause"] == "NORMAL_CLEARING" and ended["packets_in"] > 0  # the microphone reached us
    assert shot.stat().st_size > 10_000


def test_keypad_sends_dtmf_to_the_call(chrome: ChromeFactory, server: ServerProcess, microphone: Path) -> None:
    driver = open_page(chrome, server, microphone, "long")
    click(driver, "#call")
    wait_until(driver, "return msCall.phase === 'live'")
    call_id = driver.execute_script("return msCall.callId")
    for digit in "42#":
        click(driver, f"#keypad button[data-digit='{digit}']")
    got: Callable[[], Any] = lambda: driver.execute_script(  # noqa: E731
        "return msCall.events.filter(e => e.event === 'dtmf_received').map(e => e.digit).join('')"
    )
    wait_until(driver, "return msCall.events.filter(e => e.event === 'dtmf_received').length === 3")
    assert got() == "42#"
    assert driver.execute_script("return document.getElementById('digits').textContent") == "42#"
    click(driver, "#hangup")
    wait_until(driver, "return msCall.phase === 'ended'")
    # The page waited for the server's last word: its event list ends with the call's end.
    assert driver.execute_script("return msCall.events.at(-1).event") == "call_ended"
    deadline = time.monotonic() + 10
    while not any(e.get("event") == "call_ended" for e in server.records(call_id)):
        assert time.monotonic() < deadline, "the call did not end after the page hung up"
        time.sleep(0.1)
    digits = [e["digit"] for e in server.records(call_id) if e.get("event") == "dtmf_received"]
    assert digits == ["4", "2", "#"]
    hangup = next(e for e in server.records(call_id) if e.get("event") == "remote_hangup")
    assert hangup["reason"] == "hangup from the page"
