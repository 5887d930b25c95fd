"""Headless Chromium shows /dashboard while a real AI call runs over loopback SIP.

The caller is the benchmarks' AiCaller (espeak-ng speech over PCMU, paced RTP), the LLM the
scripted server; the agent greets, the caller asks, the agent answers. Mid-call, the page must
show one active call and the caller's turn; every stat it renders must equal what the scrape it
rendered says (the page keeps that text), and after the hang-up its numbers must equal a fresh
/metrics. The screenshot goes to tests/artifacts/dashboard.png (and, with MS_UPDATE_DOCS=1,
to docs/dashboard.png).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.ai_harness import AiCaller, espeak_8k, write_config
from tests.browser.conftest import REPO, ChromeFactory
from tests.support.llm_server import ScriptedLlmServer, Turn
from tests.support.server import ServerProcess
from tests.support.speech import write_wav
from tests.unit.test_dashboard_panels import GRAFANA_JSON, buckets_of, grafana_panels, histogram_quantile

pytestmark = [
    pytest.mark.interop,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng"),
]

GREETING = "Hello, this is the test line."
ANSWER = "We are open from nine in the morning until five in the evening."


def stat_ids() -> dict[str, int]:
    """The Grafana stat panels by title: the page draws each under the same id."""
    panels = grafana_panels(json.loads(GRAFANA_JSON.read_text()))
    return {p["title"]: p["id"] for p in panels if p["type"] == "stat"}


def scrape(server: ServerProcess) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


def sample(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                return float(s.value)
    raise AssertionError(f"{name} not in the scrape")


def page_state(driver: Any) -> dict[str, Any]:
    """The stats as rendered and the scrape they came from, read in one go (no poll between)."""
    state: dict[str, Any] = driver.execute_script(
        """
        const stats = {};
        for (const card of document.querySelectorAll('section.panel.stat')) {
          const big = card.querySelector('.stat');
          stats[card.dataset.panelId] = big ? {text: big.textContent, value: big.dataset.value} : null;
        }
        const errors = [...document.querySelectorAll('.panel .error')].map(e => e.textContent);
        const d = msDashboard.dashboard;
        return {polls: msDashboard.polls, error: msDashboard.error, stats, errors,
                text: d ? d.lastText : '', panels: d ? d.panels.length : 0};
        """
    )
    return state


def rendered(state: dict[str, Any], panel_id: int) -> float | None:
    stat = state["stats"].get(str(panel_id))
    return float(stat["value"]) if stat and stat["value"] not in ("", "NaN") else None


def wait_for_page(driver: Any, ok: Any, what: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll the page until `ok(state)`; runs in a thread so the call's media keeps flowing."""
    deadline = time.monotonic() + timeout
    while True:
        state = page_state(driver)
        if state["polls"] and ok(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"page never showed {what}: {state['stats']} error={state['error']}")
        time.sleep(0.2)


async def test_dashboard_follows_a_live_ai_call(chrome: ChromeFactory, tmp_path: Path, artifacts: Path) -> None:
    ids = stat_ids()
    active, started, turns = ids["Active calls"], ids["Calls started (range)"], ids["Caller turns (range)"]
    late, lag, v2v = ids["Late media frames (range)"], ids["Event loop lag p99"], ids["Voice-to-voice p95"]
    script = [Turn(text=t, ttft_s=0.1, token_delay_s=0.01) for t in (GREETING, ANSWER)]
    async with ScriptedLlmServer(script, loop_script=True) as llm:
        server = ServerProcess(config=write_config(tmp_path, llm.base_url, eos_ms=800)).start()
        caller = AiCaller(("127.0.0.1", server.sip_port), user="ai")
        try:
            # The page does not use the microphone; Chromium's fake capture still wants a file.
            driver = chrome(write_wav(tmp_path / "silence.wav", np.zeros(4800, dtype=np.int16), 48000))
            driver.get(f"http://127.0.0.1:{server.http_port}/dashboard?every=1")
            idle = wait_for_page(driver, lambda s: rendered(s, started) is not None, "the idle server")
            assert rendered(idle, active) == 0 and rendered(idle, started) == 0
            assert idle["panels"] == len(grafana_panels(json.loads(GRAFANA_JSON.read_text())))

            await caller.open()
            assert (await caller.call()).status == 200
            await caller.start_media()
            # Generous waits: this is about the page, not the agent's speed on a busy machine.
            await caller.wait_agent(speaking_ms=600, silent_ms=800, timeout_s=120)  # the greeting
            caller.say(espeak_8k("What are your opening hours"))
            await caller.until_said()
            await caller.wait_agent(speaking_ms=400, since_ns=time.monotonic_ns(), timeout_s=120)  # the answer

            live = await asyncio.to_thread(
                wait_for_page,
                driver,
                lambda s: rendered(s, active) == 1 and (rendered(s, turns) or 0) >= 1 and rendered(s, v2v),
                "one active call with a committed turn",
                60.0,
            )
            # Every stat equals what the scrape it was drawn from says.
            text = live["text"]
            assert rendered(live, active) == sample(text, "mediaserver_calls_active") == 1
            assert rendered(live, started) == sample(text, "mediaserver_calls_started_total") == 1
            assert rendered(live, turns) == sample(text, "mediaserver_turns_total") >= 1
            assert rendered(live, late) == sample(text, "mediaserver_ticker_late_frames_total")
            assert rendered(live, lag) == pytest.approx(sample(text, "mediaserver_event_loop_lag_p99_seconds"))
            frames = buckets_of(text, "mediaserver_turn_stage_seconds_bucket", stage="first_agent_frame")
            assert rendered(live, v2v) == pytest.approx(histogram_quantile(0.95, frames))
            assert live["errors"] == [], live["errors"]  # every Grafana query was read and evaluated
            legends = driver.execute_script(
                "return [...document.querySelectorAll('[data-title=\"Turn stages p50\"] td.name')]"
                ".map(e => e.textContent)"
            )
            assert {"endpoint", "first_agent_frame", "asr_final", "llm_first_token"} <= set(legends), legends
            bars = driver.execute_script("return document.querySelectorAll('.heatmap .bar').length")
            assert bars == len(frames)

            shot = artifacts / "dashboard.png"
            # The whole page, every panel: the window grows by what the page overflows its viewport.
            overflow = driver.execute_script("return document.documentElement.scrollHeight - window.innerHeight")
            driver.set_window_size(1280, driver.get_window_size()["height"] + max(0, overflow))
            assert driver.save_screenshot(str(shot))
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000  # a real picture
            if os.environ.get("MS_UPDATE_DOCS") == "1":  # refresh the documentation picture on request only
                shutil.copyfile(shot, REPO / "docs" / "dashboard.png")

            await caller.stop_media()
            await caller.hangup()
        finally:
            caller.close()
        try:
            await asyncio.to_thread(server.wait_idle)
            after = await asyncio.to_thread(wait_for_page, driver, lambda s: rendered(s, active) == 0, "the call ended")
            now = scrape(server)  # the server is idle: these no longer move
            assert rendered(after, active) == sample(now, "mediaserver_calls_active") == 0
            assert rendered(after, started) == sample(now, "mediaserver_calls_started_total") == 1
            assert rendered(after, turns) == sample(now, "mediaserver_turns_total")
        finally:
            server.stop()
