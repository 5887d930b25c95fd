"""A WebRTC caller built on aiortc (no browser): offers over WHIP or JSON, records what it hears.

Public API::

    client = AiortcCaller(base_url, wav=None)       # wav: 48 kHz-resampled mono to send, else silence
    await client.call_json(route) -> dict            # {"sdp", "type", "call_id"} (raises HttpError)
    await client.call_whip(route) -> str             # the Location URL
    await client.hangup_json() / client.hangup_whip()
    await client.wait_server_hangup(timeout)         # the data channel's {"type": "hangup"} or close
    client.send_dtmf(digit); client.messages; client.recording() -> int16 48 kHz mono
    await client.close()
"""

from __future__ import annotations

import asyncio
import fractions
import json
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

RATE = 48000
FRAME = 960


class HttpError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class PcmTrack(MediaStreamTrack):
    """Plays int16 mono 48 kHz audio, then silence, paced in real time."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray | None) -> None:
        super().__init__()
        self._pcm = pcm if pcm is not None else np.zeros(0, dtype=np.int16)
        self._pos = 0
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        wait = self._start + self._pts / RATE - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = np.zeros(FRAME, dtype=np.int16)
        part = self._pcm[self._pos : self._pos + FRAME]
        chunk[: len(part)] = part
        self._pos += FRAME
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        frame.pts = self._pts
        self._pts += FRAME
        return frame


class AiortcCaller:
    def __init__(self, base_url: str, pcm: np.ndarray | None = None) -> None:
        self.base_url = base_url
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(PcmTrack(pcm))
        self.channel = self.pc.createDataChannel("events")
        self.messages: list[dict[str, Any]] = []
        self.hung_up = asyncio.Event()
        self.opened = asyncio.Event()
        self.frames: list[np.ndarray] = []
        self.heard_audio = asyncio.Event()  # set at the first frame louder than near-silence
        self.location: str | None = None
        self.call_id: str | None = None
        self._reader: asyncio.Task[None] | None = None
        self.channel.on("message", self._on_message)
        self.channel.on("open", self.opened.set)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_message(self, message: str) -> None:
        data = json.loads(message)
        self.messages.append(data)
        if data.get("type") == "hangup":
            self.hung_up.set()

    def _on_state(self) -> None:
        if self.pc.connectionState in ("closed", "failed"):
            self.hung_up.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            data = frame.to_ndarray().reshape(-1, len(frame.layout.channels))  # type: ignore[union-attr]
            mono = data[:, 0].astype(np.int16)
            self.frames.append(mono)
            if not self.heard_audio.is_set() and int(np.abs(mono).max(initial=0)) > 500:
                self.heard_audio.set()

    def recording(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, dtype=np.int16)

    async def _offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def call_json(self, route: str) -> dict[str, Any]:
        offer = await self._offer()
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.base_url}/webrtc/{route}/offer", json={"sdp": offer, "type": "offer"}) as response,
        ):
            body = await response.text()
            if response.status != 200:
                raise HttpError(response.status, body)
        answer = json.loads(body)
        self.call_id = answer["call_id"]
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        return answer

    async def call_whip(self, route: str, content_type: str = "application/sdp") -> str:
        offer = await self._offer()
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.base_url}/whip/{route}", data=offer, headers={"Content-Type": content_type}) as response,
        ):
            body = await response.text()
            if response.status != 201:
                raise HttpError(response.status, body)
            assert response.content_type == "application/sdp"
            self.location = response.headers["Location"]
        self.call_id = self.location.rsplit("/", 1)[1]
        await self.pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
        return self.location

    async def delete(self, path: str) -> int:
        async with aiohttp.ClientSession() as http, http.delete(f"{self.base_url}{path}") as response:
            return response.status

    def send_dtmf(self, digit: str) -> None:
        self.channel.send(json.dumps({"type": "dtmf", "digit": digit}))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == "event" and m.get("event") == name]

    async def close(self) -> None:
        await self.pc.close()
        if self._reader:
            self._reader.cancel()
