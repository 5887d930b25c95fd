"""An ended SIP call is freed by reference counting, not left for the cyclic collector.

Why it matters: every ended call whose parts point back at it (tap subscribers, the socket's
handler, the script's `play`) waited in the oldest GC generation for a full collection, and a
full collection walks every live object: under 100 calls/s of churn one ran every ~6 s and
stopped the event loop, so every call's media, for 55-90 ms (kernel/call.py `release`)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.loadgen import LoadGenerator
from mediaserver.app import MediaServer
from mediaserver.settings import load_settings

CONFIG = Path(__file__).parents[2] / "benchmarks" / "config" / "capacity.toml"  # answer + hold


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_an_ended_call_and_its_parts_are_freed_without_a_gc_pass(no_cyclic_gc: None) -> None:
    settings = load_settings(CONFIG, environ={}, overrides={"sip.port": 0, "http.port": 0})
    server = MediaServer(settings, tts=object())  # type: ignore[arg-type] - idle calls speak no TTS
    await server.start()
    assert server.sip is not None and server.kernel is not None
    gen = LoadGenerator(("127.0.0.1", server.sip.port), user="idle")
    await gen.start()
    try:
        calls = [await gen.place() for _ in range(3)]
        await asyncio.sleep(0.5)  # media flows both ways, the script holds
        live = list(server.kernel.legs.live.values())
        assert len(live) == 3
        refs = [weakref.ref(obj) for call in live for obj in (call, call.media, call.media.taps, call.events)]
        del live
        await gen.hang_up_all(calls)
        for call in calls:
            gen.forget(call)
        for _ in range(50):  # the teardown runs in the call's task
            if not server.kernel.legs.live:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        alive = [type(obj).__name__ for ref in refs if (obj := ref()) is not None]
        assert alive == [], f"still alive without a GC pass: {alive}"
    finally:
        await gen.stop()
        await server.stop()
