"""`close_peer` against a real aiortc peer: the last data channel messages arrive, the peer sees
the close at once (close_notify), and the libwebrtc-only renegotiation is left out for it."""

from __future__ import annotations

import asyncio

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcdatachannel import RTCDataChannel

from mediaserver.transport.webrtc import close_peer, dtls_transports, is_libwebrtc_peer


async def connected_pair() -> tuple[RTCPeerConnection, RTCPeerConnection, list[str], list[RTCDataChannel]]:
    caller = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    server = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    server_channel: list[RTCDataChannel] = []
    server.on("datachannel", server_channel.append)
    caller.addTransceiver("audio")
    received: list[str] = []
    channel = caller.createDataChannel("events")
    channel.on("message", received.append)
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await caller.setLocalDescription(await caller.createOffer())
    await server.setRemoteDescription(caller.localDescription)
    await server.setLocalDescription(await server.createAnswer())
    await caller.setRemoteDescription(server.localDescription)
    await asyncio.wait_for(opened.wait(), 10)
    for _ in range(500):
        if server_channel and server_channel[0].readyState == "open":
            break
        await asyncio.sleep(0.01)
    return caller, server, received, server_channel


async def test_the_last_messages_arrive_and_the_peer_sees_the_close() -> None:
    caller, server, received, server_channel = await connected_pair()
    states: list[str] = []
    caller.on("connectionstatechange", lambda: states.append(caller.connectionState))
    [dtls] = dtls_transports(server)  # BUNDLE: audio and SCTP share one
    assert not is_libwebrtc_peer(dtls)  # aiortc's certificate has a random name
    last = [f'{{"type": "event", "n": {n}}}' for n in range(200)] + ['{"type": "hangup"}']
    for message in last:
        server_channel[0].send(message)
    await close_peer(server)
    for _ in range(200):
        if "closed" in states:
            break
        await asyncio.sleep(0.01)
    assert received == last  # queued just before the close, every one delivered, in order
    assert "closed" in states  # the peer learnt from the close_notify, not from a timeout
    await caller.close()


async def test_closing_a_closed_connection_is_a_no_op() -> None:
    caller, server, _, _ = await connected_pair()
    await close_peer(server)
    await close_peer(server)
    await caller.close()
