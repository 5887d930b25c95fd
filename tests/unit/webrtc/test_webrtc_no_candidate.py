"""An offer the server can answer only without ICE candidates gets a clear error, not a dead 200.

A host whose only interface is loopback, with the default `host_addresses` (every interface but
loopback), gathers no candidate: aioice's address lookup is made to find none, as it would there.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import aioice.ice
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCConfiguration, RTCPeerConnection

from mediaserver.signaling.webrtc import WebRtcFrontEnd, WebRtcOptions


class FakeAdmission:
    def __init__(self) -> None:
        self.admitted: list[str] = []
        self.released: list[str] = []

    def admit(self, call_id: str, document: Any, front_end: str) -> None:
        self.admitted.append(call_id)
        return None

    def release(self, call_id: str) -> None:
        self.released.append(call_id)


class FakeKernel:
    """Only what an offer touches before a call starts; starting one fails the test."""

    draining = False

    def __init__(self) -> None:
        self.admission = FakeAdmission()

    def load_route(self, route: str) -> dict[str, Any]:
        return {"sections": {"main": []}}

    def start_call(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("a call was started for an offer that cannot connect")


async def offer_sdp() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio")
    pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


@pytest.fixture
def loopback_only_host(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # after the front end is built: it installs the lookup that `host_addresses` asks for
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: [])


@pytest.fixture
async def client() -> Any:
    kernel = FakeKernel()
    front = WebRtcFrontEnd(WebRtcOptions(ice=SimpleNamespace(ice_servers=(), ice_transport_policy="all")), kernel)  # type: ignore[arg-type]
    app = web.Application()
    front.mount(app)
    async with TestClient(TestServer(app)) as test_client:
        test_client.kernel = kernel
        yield test_client


async def test_json_offer_without_candidates_is_a_503_naming_host_addresses(
    loopback_only_host: None, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sdp = await offer_sdp()
    with caplog.at_level(logging.ERROR, logger="mediaserver.signaling.webrtc"):
        response = await client.post("/webrtc/default/offer", json={"sdp": sdp, "type": "offer"})
    assert response.status == 503
    error = (await response.json())["error"]
    assert "no ICE candidate" in error and "host_addresses" in error and "127.0.0.1" in error
    assert client.kernel.admission.released == client.kernel.admission.admitted  # nothing held
    [record] = [r for r in caplog.records if "no ICE candidate" in r.getMessage()]
    assert record.call_id == client.kernel.admission.admitted[0]  # type: ignore[attr-defined]


async def test_whip_offer_without_candidates_is_a_503_with_a_text_reason(loopback_only_host: None, client: Any) -> None:
    sdp = await offer_sdp()
    response = await client.post("/whip/default", data=sdp, headers={"Content-Type": "application/sdp"})
    assert response.status == 503
    assert "host_addresses" in await response.text()


async def test_favicon_is_an_svg(client: Any) -> None:
    response = await client.get("/favicon.ico")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("image/svg+xml")
    assert (await response.text()).lstrip().startswith("<svg")
