"""A URL that cannot be parsed ("http://h:99999/", "http://[::1/x") fails its verb the way any
failed request or fetch does, never the call script (found by fuzzing, issue 17)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from mediaserver.errors import HangupCause
from tests.scenario.test_swml_executor import Harness

BAD_URLS = ["http://127.0.0.1:99999/x", "http://[::1/x"]


@pytest.mark.parametrize("url", BAD_URLS)
async def test_request_with_a_bad_url_fails_and_the_call_goes_on(tmp_path: Path, url: str) -> None:
    harness = Harness(tmp_path)
    async with aiohttp.ClientSession() as http:
        await harness.run(
            {"main": [{"request": {"url": url, "method": "GET"}}, {"play": {"url": "say:${request_result}"}}]},
            http=http,
        )
    assert harness.tts.spoken == ["failed"]
    assert harness.call.cause is HangupCause.NORMAL_CLEARING
    [failed] = harness.events("request_failed")
    assert "bad URL" in failed["error"] or "InvalidUrl" in failed["error"], failed


@pytest.mark.parametrize("url", BAD_URLS)
async def test_execute_with_a_bad_url_is_a_failed_fetch(tmp_path: Path, url: str) -> None:
    harness = Harness(tmp_path)
    async with aiohttp.ClientSession() as http:
        await harness.run({"main": [{"execute": {"dest": url}}, {"play": {"url": "say:never"}}]}, http=http)
    assert harness.tts.spoken == ["Sorry, goodbye."]  # the apology of any failed fetch
    assert harness.call.cause is HangupCause.SWML_ERROR
    [failed] = harness.events("swml_fetch_failed")
    assert failed["error"].startswith("bad URL: "), failed
