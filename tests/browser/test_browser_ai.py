"""Headless Chromium talks to the AI agent (scripted LLM) and barges in on it.

The fake microphone plays a WAV built here: silence while the call connects, an espeak
question, and for the barge-in test an interruption placed in the middle of the agent's long
answer. The server runs with tests/browser/fixtures/ai.toml, whose `ai` route sends the caller
to the `ai` verb; the LLM is tests/support/llm_server.py, every request answered the same way.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.browser.conftest import REPO, ChromeFactory
from tests.browser.test_browser_call import click, open_page, wait_until
from tests.support.llm_server import ScriptedLlmServer, Turn
from tests.support.server import ServerProcess
from tests.support.speech import contains_words, read_wav, synthesize_espeak, transcribe, words, write_wav

pytestmark = [pytest.mark.interop, pytest.mark.slow]

CONFIG = Path(__file__).parent / "fixtures" / "ai.toml"
RATE = 48000
QUESTION = "Hello, what are your opening hours on Saturday?"
ANSWER = "On Saturday we are open from nine in the morning until five in the afternoon."
LONG_ANSWER = (
    "On Saturday we open at nine in the morning. The first loaves come out of the oven at seven, "
    "so the shelves are full when the doors open. Around eleven we bake a second batch of rye. "
    "We close at five in the afternoon, and whatever is left goes to the food bank down the street."
)
INTERRUPTION = "Sorry, stop please. Do you also bake on Sunday?"


def speech(text: str, path: Path) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    samples, _ = read_wav(synthesize_espeak(text, path, RATE))
    return (samples[:, 0] * 32767).astype(np.int16)


def microphone_wav(path: Path, *parts: tuple[float, np.ndarray], total_s: float) -> Path:
    """Speech placed at given seconds from the start of capture, silence elsewhere."""
    pcm = np.zeros(int(total_s * RATE), dtype=np.int16)
    for at_s, clip in parts:
        start = int(at_s * RATE)
        pcm[start : start + len(clip)] = clip[: len(pcm) - start]
    return write_wav(path, pcm, RATE)


@pytest.fixture
def ai_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, ScriptedLlmServer]]:
    llm = ScriptedLlmServer([Turn(text=ANSWER)], loop_script=True)
    with llm.running():
        old = os.environ.get("MS_LLM_BASE_URL")
        os.environ["MS_LLM_BASE_URL"] = llm.base_url
        try:
            server = ServerProcess(config=CONFIG).start()
        finally:
            if old is None:
                del os.environ["MS_LLM_BASE_URL"]
            else:
                os.environ["MS_LLM_BASE_URL"] = old
        try:
            yield server, llm
        finally:
            server.stop()


# Every text the page's agent lines show, in order (a line's text as it grows, word by word).
WATCH_AGENT_LINES = """
window.agentTexts = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll('#transcript li.agent .text')) {
    const last = agentTexts.filter(t => t.line === el).at(-1);
    if (!last || last.text !== el.textContent) agentTexts.push({ line: el, text: el.textContent });
  }
}).observe(document.getElementById('transcript'), { subtree: true, childList: true, characterData: true });
"""


def recording(driver: Any, path: Path) -> str:
    path.write_bytes(base64.b64decode(driver.execute_script("return msCall.recordingWav()")))
    return transcribe(path)


def events(driver: Any, name: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = driver.execute_script(f"return msCall.events.filter(e => e.event === '{name}')")
    return result


def test_browser_asks_and_hears_the_agents_answer(
    chrome: ChromeFactory, ai_server: tuple[ServerProcess, Any], tmp_path: Path, artifacts: Path
) -> None:
    server, llm = ai_server
    mic = microphone_wav(tmp_path / "mic.wav", (2.0, speech(QUESTION, tmp_path / "q.wav")), total_s=30)
    driver = open_page(chrome, server, mic, "ai")
    driver.execute_script(WATCH_AGENT_LINES)
    click(driver, "#call")
    wait_until(driver, "return msCall.phase === 'live'")
    wait_until(driver, "return msCall.events.some(e => e.event === 'turn_first_agent_frame')", timeout=40)
    # Mid-answer: the agent's line holds the words heard so far, with more to come.
    wait_until(
        driver,
        "const line = document.querySelector('#transcript li.agent.speaking .text');"
        "return line !== null && line.textContent.split(' ').length >= 5",
        timeout=40,
    )
    shot = artifacts / "webrtc-ai-page.png"
    assert driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000  # a real picture
    if os.environ.get("MS_UPDATE_DOCS") == "1":  # refresh the documentation picture on request only
        shutil.copyfile(shot, REPO / "docs" / "webrtc-page.png")
    wait_until(
        driver,
        "return msCall.events.some(e => e.event === 'audio_stopped' && "
        "msCall.events.some(f => f.event === 'turn_first_agent_frame' && f.ts < e.ts))",
        timeout=40,
    )
    time.sleep(0.5)
    # The answer was shown as it was heard: a word or two first, growing with the playout, the
    # LLM's whole text only at the end (never the whole reply when its audio starts).
    shown = driver.execute_script("return agentTexts.filter(t => t.line === agentTexts[0].line).map(t => t.text)")
    counts = [len(t.split()) for t in shown]
    assert shown[-1] == ANSWER and counts[0] <= 2 and len(shown) >= 5, shown
    assert counts == sorted(counts) and all(ANSWER.startswith(t.rstrip(",.")) or t == ANSWER for t in shown), shown
    text = recording(driver, tmp_path / "heard.wav")
    assert contains_words(text, ANSWER), text
    # What the caller said reached the LLM through the browser, the WebRTC media and the ASR.
    asked = [m["content"] for r in llm.requests for m in r.messages if m["role"] == "user"]
    assert any(contains_words(q, "what are your opening hours on saturday") for q in asked), asked
    callers = driver.execute_script(
        "return [...document.querySelectorAll('#transcript li.caller .text')].map(e => e.textContent)"
    )
    agents = driver.execute_script(
        "return [...document.querySelectorAll('#transcript li.agent .text')].map(e => e.textContent)"
    )
    endpoints = events(driver, "turn_endpoint")
    # One caller line per completed turn (later final passes of an utterance replace earlier
    # ones), showing what the ASR gave the LLM; the agent's side shows the scripted answer.
    assert len(callers) == len(endpoints) and callers[-1] == asked[-1], (callers, asked)
    assert ANSWER in agents, agents
    latency = driver.execute_script("return document.getElementById('latency').innerText")
    assert "end of speech → agent audio" in latency
    click(driver, "#hangup")
    wait_until(driver, "return msCall.phase === 'ended'")


def test_browser_barges_in_and_the_reply_is_cut_to_what_was_heard(
    chrome: ChromeFactory, ai_server: tuple[ServerProcess, ScriptedLlmServer], tmp_path: Path
) -> None:
    server, llm = ai_server
    llm.script = [Turn(text=LONG_ANSWER)]
    mic = microphone_wav(
        tmp_path / "mic.wav",
        (2.0, speech(QUESTION, tmp_path / "q.wav")),
        (13.0, speech(INTERRUPTION, tmp_path / "i.wav")),
        total_s=40,
    )
    driver = open_page(chrome, server, mic, "ai")
    click(driver, "#call")
    wait_until(driver, "return msCall.phase === 'live'")
    # The interruption's flush: one that cut words the caller heard. (espeak pauses after "Hello,";
    # when the end-of-turn detector takes that for the end, the caller's going on flushes the
    # reply to it before its first frame, a flush with nothing heard.)
    heard_flush = "msCall.events.some(e => e.event === 'barge_flushed' && e.heard_words > 0)"
    wait_until(driver, f"return {heard_flush}", timeout=40)
    heard_until = driver.execute_script("return msCall.recordedSamples")  # the page's audio up to the flush
    flushes = events(driver, "barge_flushed")
    flushed = next(f for f in flushes if f["heard_words"] > 0)
    assert all(f["heard_words"] == 0 for f in flushes[: flushes.index(flushed)])
    heard = flushed["heard_text"]
    assert 0 < flushed["heard_words"] < flushed["total_words"] == len(LONG_ANSWER.split())
    assert LONG_ANSWER.startswith(heard.rstrip(".,")), heard  # a prefix, cut at a word
    # The interrupted turn in the LLM's history is exactly what the caller heard.
    wait_until(driver, "return msCall.events.filter(e => e.event === 'turn_endpoint').length >= 2", timeout=30)
    deadline = time.monotonic() + 20
    while not any(m["role"] == "assistant" for r in llm.requests for m in r.messages):
        assert time.monotonic() < deadline, "no LLM request after the barge-in"
        time.sleep(0.1)
    assistant = [m["content"] for r in llm.requests for m in r.messages if m["role"] == "assistant"]
    assert assistant[0] == heard
    wait_until(driver, "return document.querySelector('#transcript li.agent.cut') !== null")
    cut = driver.execute_script("return document.querySelector('#transcript li.agent.cut .text').textContent")
    assert cut == heard  # the page shows the reply cut to what was heard
    click(driver, "#hangup")
    wait_until(driver, "return msCall.phase === 'ended'")
    # Up to the flush (the agent answers the interruption afterwards, from the same script):
    # the start of the long answer was heard, its end never was.
    path = tmp_path / "all.wav"
    path.write_bytes(base64.b64decode(driver.execute_script("return msCall.recordingWav()")))
    samples, rate = read_wav(path)
    text = transcribe(write_wav(tmp_path / "until-flush.wav", samples[:heard_until, 0], rate))
    assert contains_words(text, "On Saturday we open at nine in the morning"), text
    assert "food" not in words(text) and "bank" not in words(text), text
