"""Differential test: our DataMap engine against the SDK's own DataMap simulator.

Both run the same generated definitions and arguments (expressions, webhooks served by a local
aiohttp server, foreach, error_keys, templates with lc:/enc:/fmt_ph:, nested paths, redirects,
failures) and must give the same result. The SDK simulator is synchronous (requests), so it
runs in a worker thread while the test server answers on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from mediaserver.swaig.datamap import run_datamap
from tests.unit.swaig.datamap_gen import datamap_app, free_port, generate_case, normalise

datamap_exec = pytest.importorskip("signalwire.cli.execution.datamap_exec")

CASES = 600


@pytest.fixture
async def base_urls(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, str]]:
    # the SDK refuses private addresses unless told otherwise; the test server is on 127.0.0.1
    monkeypatch.setenv("SWML_ALLOW_PRIVATE_URLS", "true")
    runner = web.AppRunner(datamap_app())
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{free_port()}"
    finally:
        await runner.cleanup()


def _oracle(function: dict, args: dict, call_data: dict) -> object:
    with contextlib.redirect_stderr(io.StringIO()):  # the simulator prints notes on unresolved paths
        return datamap_exec.execute_datamap_function(function, args, call_data=call_data)


async def test_engine_matches_sdk_simulator(base_urls: tuple[str, str]) -> None:
    base, closed = base_urls
    mismatches = []
    outcomes: dict[str, int] = {}
    async with aiohttp.ClientSession() as http:
        for seed in range(CASES):
            function, args, call_data = generate_case(seed, base, closed)
            ours = await run_datamap(function, args, call_data, http)
            theirs = await asyncio.to_thread(_oracle, function, args, call_data)
            if normalise(ours) != normalise(theirs):
                mismatches.append((seed, normalise(ours), normalise(theirs)))
            kind = normalise(ours)[:40]
            outcomes[kind] = outcomes.get(kind, 0) + 1
    assert not mismatches, "\n".join(f"seed {s}:\n ours   {o}\n theirs {t}" for s, o, t in mismatches[:5])
    # the generator must exercise more than one path (a constant result would prove nothing)
    assert len(outcomes) > 30


async def test_generator_covers_the_pipeline(base_urls: tuple[str, str]) -> None:
    """The generated set reaches webhooks, foreach, error keys and invalid outputs."""
    base, closed = base_urls
    seen = set()
    async with aiohttp.ClientSession() as http:
        for seed in range(CASES):
            function, args, call_data = generate_case(seed, base, closed)
            dm = function["data_map"]
            hooks = dm.get("webhooks", [])
            if any("foreach" in h for h in hooks):
                seen.add("foreach")
            if any("error_keys" in h for h in hooks):
                seen.add("error_keys")
            result = await run_datamap(function, args, call_data, http)
            text = normalise(result)
            if "<invalid output>" in text:
                seen.add("invalid")
            if "There was an error" in text:
                seen.add("generic error")
            if "Method POST" in text:
                seen.add("post")
            if "Method GET" in text:
                seen.add("get")
    assert {"foreach", "error_keys", "invalid", "generic error", "post", "get"} <= seen
