"""`call_started` names the call's route, never the server path of its SWML file (issue 17, item 6):
in the call's event log (what `GET /calls/{id}` and the call page show) and on the event bus
(what `/api/events` and the page's feed carry)."""

from __future__ import annotations

import asyncio
import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from mediaserver.kernel.call import Call
from mediaserver.kernel.eventbus import LOG
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.registry import Kernel, document_label
from mediaserver.kernel.services import KernelServices
from mediaserver.signaling.http import build_http_app
from mediaserver.swml.document import document_from_data
from tests.support.fakes import FakeSignal


class Ticker:
    """The kernel's ticker, idle: these calls only sleep."""

    def add(self, call: Any) -> None:
        pass

    def remove(self, call: Any) -> None:
        pass


def kernel_for(flows: Path, pool: ThreadPoolExecutor) -> Kernel:
    routes = {"greeting": flows / "greeting.yaml"}
    return Kernel(Ticker(), KernelServices(None, pool), lambda user: routes.get(user, flows / "default.yaml"))  # type: ignore[arg-type]


def start(kernel: Kernel, call_id: str, user: str, route: str = "") -> Call:
    signal = FakeSignal()
    media = MediaStream(MediaParams("PCMU", 0, 8000, 101), "t", rng=random.Random(1))
    call = kernel.start_call(
        call_id,
        from_uri="sip:caller@x",
        to_uri=f"sip:{user}@y",
        document=kernel.load_route(user),
        media=media,
        signal=signal,
        send_media=lambda _: None,
        on_ended=lambda _: None,
        route=route,
    )
    return call


async def end(call: Call) -> None:
    call.hangup(reason="test over")
    call.signaling_ended("test")
    await asyncio.wait_for(call.ended.wait(), 5)


async def test_call_started_shows_the_route_name_in_the_log_the_api_and_the_bus(tmp_path: Path) -> None:
    flows = tmp_path / "srv" / "flows"
    flows.mkdir(parents=True)
    for name in ("greeting", "default"):
        (flows / f"{name}.yaml").write_text("sections:\n  main:\n    - sleep: 30000\n")
    with ThreadPoolExecutor(1) as pool:
        kernel = kernel_for(flows, pool)
        feed = kernel.events.subscribe("c-route", kinds=[LOG])  # what /api/events?kinds=log and the page get
        call = start(kernel, "c-route", "greeting", route="greeting")
        other = start(kernel, "c-default", "nobody", route="default")
        client = TestClient(TestServer(build_http_app(kernel)))
        await client.start_server()
        try:
            response = await client.get("/calls/c-route")
            assert response.status == 200
            text = await response.text()
            shown = json.loads(text)
            default_view = await (await client.get("/calls/c-default")).json()
        finally:
            await client.close()
        published = feed.get_nowait()
        await end(call)
        await end(other)

    started = call.events.events[0]
    assert started["event"] == "call_started" and started["document"] == "greeting"
    assert shown["events"][0]["document"] == "greeting"
    assert default_view["events"][0]["document"] == "default"
    assert published is not None and published.data["event"] == "call_started"
    assert published.data["document"] == "greeting"
    for seen in (text, json.dumps(call.events.events), json.dumps(published.data), json.dumps(default_view)):
        assert str(tmp_path) not in seen and "greeting.yaml" not in seen and "/flows/" not in seen


async def test_without_a_route_name_the_document_is_shown_by_name_alone(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "greeting.yaml").write_text("sections:\n  main:\n    - sleep: 30000\n")
    with ThreadPoolExecutor(1) as pool:
        kernel = kernel_for(flows, pool)
        call = start(kernel, "c-bare", "greeting")
        await end(call)
    assert call.events.events[0]["document"] == "greeting.yaml"


def test_document_labels_hide_paths_and_passwords() -> None:
    def label(source: str) -> str:
        return document_label(document_from_data({"sections": {"main": []}}, source=source))

    assert label("/etc/mediaserver/swml/secret-flow.yaml") == "secret-flow.yaml"
    assert label("http://u:pw@agent.example.com/swml?x=1") == "http://agent.example.com/swml?x=1"
    assert label("<inline>") == "<inline>"
