"""WebRTC front end: WHIP and JSON offer/answer signalling, the call page, the events channel.

Theory of operation
-------------------
A browser (or any WHIP client) POSTs an SDP offer to a URL that names a SWML route:

- WHIP (RFC 9725): `POST /whip/{route}` with `application/sdp` -> `201 Created`, the answer as
  `application/sdp` and `Location: /whip/{route}/{call_id}`; `DELETE` on that URL hangs up.
- JSON: `POST /webrtc/{route}/offer` with `{"sdp", "type": "offer"}` -> `{"sdp", "type":
  "answer", "call_id"}`; `DELETE /webrtc/calls/{call_id}` hangs up.

Signalling is not trickled: aiortc gathers every candidate before the answer is returned,
and the page waits for its own gathering to finish before it posts the offer. The route name
must be `default` or one of `[routes.users]`, otherwise 404: a typo in a URL should be an
error, not a silent call to the default document (SIP, where the dialled user is free text,
falls back to the default instead).

Per call a `_Session` ties an aiortc `RTCPeerConnection` to a kernel `Call` built with
`WebRtcMedia` (mediaserver.transport.webrtc). The kernel starts the SWML exactly as for SIP;
`_Signal` is the call's `CallSignal`: the SDP answer already went out in the HTTP response,
so ring/answer only log; hangup ends the call's signalling a moment later (the last frames
still in aiortc's encoder get out first), and the call's end closes the peer connection.

A data channel (`events`, opened by the page) carries JSON both ways: the server forwards the
call's event log (state changes, audio started/stopped, DTMF, transcript and turn events from
the AI engine, with their latency fields) as it grows, a subscription to the kernel's event
bus for the call (kind "log"), and the agent's side of the
transcript as the AI agent's conversation grows (its `AgentHandle` events from
`kernel.agents.watch`, pushed, not polled), word by word as the played cursor passes each
word's end (`HeardTranscript`, heard_transcript.py); the page sends
`{"type": "dtmf", "digit": "5"}` and `{"type": "hangup"}`. A WHIP client without a data
channel can read the same events as server-sent events at `/webrtc/calls/{call_id}/events`.

Anything that ends the peer connection (DELETE, the page's hangup, ICE failure, the caller's
tab closing, no connection within `CONNECT_TIMEOUT_S`) becomes `Call.remote_hung_up`; the
leg lifecycle's teardown (kernel/legs.py, through `Kernel.start_call`, exactly once) then
sends the call's last events (`call_ended` included: it is logged before the teardown) and
`{"type": "hangup"}` on the data channel, closes the connection so that the peer sees it at
once (`transport.webrtc.close_peer`: a plain WHIP client's peer connection goes "failed"
instead of waiting out ICE consent) and forgets the session. The page's own hangup waits for
that last word before it closes its side, so its event list ends with `call_ended`.

An offer answered without a single ICE candidate (a loopback-only host with the default
`host_addresses`, which leaves out loopback; `relay` policy without a TURN server) could
never connect: it gets a 503 that names the settings to change, not an answer.

The front end reads no settings: app.py gives it a `WebRtcOptions` (its routes and the ICE
configuration, typed by `transport.webrtc.IceConfig`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdatachannel import RTCDataChannel

from mediaserver.events import DtmfReceived, WebrtcState
from mediaserver.kernel.agent import AgentEvent, AgentFeed
from mediaserver.kernel.call import Call
from mediaserver.kernel.eventbus import LOG, Subscription
from mediaserver.kernel.registry import Kernel
from mediaserver.signaling.heard_transcript import HeardTranscript
from mediaserver.swml.errors import SwmlError
from mediaserver.transport.webrtc import (
    IceConfig,
    WebRtcMedia,
    close_peer,
    restrict_host_addresses,
    rtc_configuration,
)

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
CONNECT_TIMEOUT_S = 20.0  # no ICE/DTLS connection by then: the caller is gone
CLOSE_GRACE_S = 0.3  # after our hangup, let the last frames and events out before closing
NO_CANDIDATE = (
    "the server has no ICE candidate to offer, so this call could never connect: set [webrtc] "
    'host_addresses to an address the browser can reach (e.g. ["127.0.0.1"] for a browser on this '
    "machine; the default leaves out loopback), or give [webrtc] ice_servers a STUN/TURN server"
)
MAX_OFFER_BYTES = 64 * 1024


@dataclass(frozen=True)
class WebRtcOptions:
    """What the WebRTC front end reads of the settings (built by app.py)."""

    ice: IceConfig  # STUN/TURN servers and the transport policy ([webrtc])
    routes: Sequence[str] = ()  # the named routes ([routes.users]); "default" is always there
    host_addresses: Sequence[str] = ()  # host candidates only on these (empty: every interface)


class OfferError(Exception):
    """An offer we cannot answer; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Signal:
    """The kernel's `CallSignal` for one peer connection."""

    def __init__(self, session: _Session) -> None:
        self._session = session

    def ring(self) -> None:
        pass  # the answer SDP is already on its way; there is no ringing state in WebRTC

    def answer(self) -> None:
        pass  # media flows as soon as ICE and DTLS are up; the kernel gates it until now

    def hangup(self) -> None:
        self._session.server_hangup()


class _Session:
    def __init__(self, front: WebRtcFrontEnd, call_id: str, route: str, pc: RTCPeerConnection) -> None:
        self.front = front
        self.call_id = call_id
        self.route = route
        self.pc = pc
        self.media = WebRtcMedia()
        self.call: Call | None = None
        self.channel: RTCDataChannel | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.sent_events = 0
        self.heard = HeardTranscript()  # the agent's words, as the played cursor passes them
        self.media.on_played = self._played
        self.media.on_playout_cleared = self._playout_cleared
        self.agent_feed: AgentFeed | None = None
        self.closing = False
        self.timer: asyncio.TimerHandle | None = None
        # SSE readers and how many of the call's events each has been given
        self.subscribers: dict[asyncio.Queue[dict[str, Any] | None], int] = {}

    def spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{name}:{self.call_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- from the peer -------------------------------------------------------------------
    def on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self.spawn(self._read_inbound(track), "webrtc-in")

    async def _read_inbound(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                self.remote_gone("remote track ended")
                return
            try:
                self.media.push_inbound(frame)  # type: ignore[arg-type]
            except ValueError as exc:
                log.warning("bad inbound audio frame", extra={"call_id": self.call_id, "error": str(exc)})

    def on_channel(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        channel.on("message", self._on_message)
        if channel.readyState == "open":
            self._hello()
        else:
            channel.on("open", self._hello)

    def _hello(self) -> None:
        self.send({"type": "call", "call_id": self.call_id, "route": self.route})
        self.flush_events()

    def _on_message(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
            kind = data["type"]
        except (ValueError, TypeError, KeyError):
            self.send({"type": "error", "error": "expected JSON with a 'type' field"})
            return
        if kind == "dtmf":
            digit = str(data.get("digit", ""))
            if self.call is None or self.call.is_over:
                return
            if self.media.receive_dtmf(digit):
                self.call.events.emit(DtmfReceived(digit=digit.upper(), via="datachannel"))
            else:
                self.send({"type": "error", "error": f"not a DTMF digit: {digit!r}"})
        elif kind == "hangup":
            self.remote_gone("hangup from the page")
        else:
            self.send({"type": "error", "error": f"unknown message type {kind!r}"})

    def on_connection_state(self) -> None:
        state = self.pc.connectionState
        if self.call is not None:
            self.call.events.emit(WebrtcState(state=state))
        if state in ("failed", "closed"):
            self.remote_gone(f"peer connection {state}")

    def connect_timeout(self) -> None:
        if self.pc.connectionState not in ("connected", "closed"):
            self.remote_gone("no ICE/DTLS connection")

    def remote_gone(self, reason: str) -> None:
        if self.call is not None and not self.closing and not self.call.ended.is_set():
            self.call.remote_hung_up(reason)

    # -- to the peer ---------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(json.dumps(message, default=str))

    def flush_events(self) -> None:
        """Send the call's new events to the page and to SSE readers, each from its own index."""
        if self.call is None:
            return
        events = self.call.events.events
        if self.channel is not None and self.channel.readyState == "open":
            for entry in events[self.sent_events :]:
                self.send({"type": "event", **entry})
            self.sent_events = len(events)
        for queue, index in list(self.subscribers.items()):
            for entry in events[index:]:
                queue.put_nowait({"type": "event", **entry})
            self.subscribers[queue] = len(events)

    def agent_said(self, event: AgentEvent) -> None:
        """The agent's side of the transcript, from its conversation events.

        The AI engine logs what the caller said (`turn_asr_final`) but not what the agent says:
        its words come from the agent's "speaking" events and show as they are played
        (`_played`); its conversation entries (OpenAI-style {"role", "content"}) give each line
        its final text, cut to the words the caller heard after a barge-in.
        """
        entry = event.entry
        if event.kind == "speaking":
            words = [(str(text), int(mark)) for text, mark in entry.get("words", ())]
            self.tell_page(self.heard.speaking(event.key, words))
        else:
            self.tell_page(self.heard.entry(event.kind, event.key, entry))

    def _played(self, cursor: int) -> None:
        self.tell_page(self.heard.played(cursor))

    def _playout_cleared(self) -> None:
        # Words queued before the clear may still wait in the feed: they go first, then are dropped.
        if self.agent_feed is not None:
            while (event := self.agent_feed.get_nowait()) is not None:
                self.agent_said(event)
        self.tell_page(self.heard.playout_cleared())

    def tell_page(self, messages: list[dict[str, Any]]) -> None:
        """Send transcript messages on the data channel and to SSE readers."""
        for message in messages:
            self.send(message)
            for queue in self.subscribers:
                queue.put_nowait(message)

    async def forward_events(self, sub: Subscription) -> None:
        """Push the call's events as they are logged: every event the kernel's bus publishes for
        the call wakes this, and everything logged since the last push goes out (the log itself
        gives the order and the catch-up for whatever came before the page's channel opened)."""
        async with sub:
            async for _ in sub:
                while sub.get_nowait() is not None:
                    pass  # a burst of events is one push
                self.flush_events()

    async def forward_agent(self, feed: AgentFeed) -> None:
        """Push the agent's transcript as it grows (whichever `ai` verb runs on the call)."""
        async for event in feed:
            self.agent_said(event)

    def flush_agent(self) -> None:
        """At the call's end: forward what the agent feed still holds, then stop watching."""
        feed, self.agent_feed = self.agent_feed, None
        if feed is not None:
            while (event := feed.get_nowait()) is not None:
                self.agent_said(event)
            feed.close()

    def server_hangup(self) -> None:
        if self.closing:
            return
        self.closing = True
        asyncio.get_running_loop().call_later(CLOSE_GRACE_S, self._end_signalling)

    def _end_signalling(self) -> None:
        """The call ends now; its teardown (`WebRtcFrontEnd._call_ended`) tells the page and closes."""
        if self.call is not None and not self.call.ended.is_set():
            self.call.signaling_ended("hangup: closing the peer connection")

    async def close(self) -> None:
        self.closing = True
        if self.timer is not None:
            self.timer.cancel()
        self.media.close()
        try:
            await close_peer(self.pc)
        except Exception:  # it reaches into aiortc: a surprise there is logged, not lost in a task
            log.exception("peer connection close failed", extra={"call_id": self.call_id})


class WebRtcFrontEnd:
    def __init__(self, options: WebRtcOptions, kernel: Kernel) -> None:
        self.options = options
        self.kernel = kernel
        self.sessions: dict[str, _Session] = {}
        self._closing: set[asyncio.Task[None]] = set()
        restrict_host_addresses(options.host_addresses)

    @property
    def route_names(self) -> list[str]:
        return ["default", *(u for u in self.options.routes if u != "default")]

    def mount(self, app: web.Application) -> None:
        app.router.add_get("/", self._index)
        app.router.add_get("/favicon.ico", self._favicon)
        app.router.add_static("/web/", WEB_DIR, show_index=False)
        app.router.add_get("/webrtc/routes", self._routes)
        app.router.add_post("/webrtc/{route}/offer", self._json_offer)
        app.router.add_delete("/webrtc/calls/{call_id}", self._delete)
        app.router.add_get("/webrtc/calls/{call_id}/events", self._sse)
        app.router.add_post("/whip/{route}", self._whip_offer)
        app.router.add_delete("/whip/{route}/{call_id}", self._delete)

    def health(self) -> dict[str, Any]:
        return {"webrtc_sessions": len(self.sessions)}

    async def stop(self) -> None:
        for session in list(self.sessions.values()):
            await session.close()
        if self._closing:
            await asyncio.wait(self._closing, timeout=3)

    # -- HTTP ----------------------------------------------------------------------------
    async def _index(self, _: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / "index.html")

    async def _favicon(self, _: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / "favicon.svg", headers={"Content-Type": "image/svg+xml"})

    async def _routes(self, _: web.Request) -> web.Response:
        ice = [
            {"urls": list(s.urls), **({"username": s.username, "credential": s.credential} if s.username else {})}
            for s in self.options.ice.ice_servers
        ]
        return web.json_response(
            {
                "routes": self.route_names,
                "ice_servers": ice,
                "ice_transport_policy": self.options.ice.ice_transport_policy,
            }
        )

    async def _json_offer(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": 'body is not JSON; expected {"sdp": ..., "type": "offer"}'}, status=400)
        if not isinstance(body, dict) or not isinstance(body.get("sdp"), str) or body.get("type") != "offer":
            return web.json_response({"error": 'expected {"sdp": <string>, "type": "offer"}'}, status=400)
        try:
            session = await self._answer(request.match_info["route"], body["sdp"], request, "json")
        except OfferError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        answer = session.pc.localDescription
        return web.json_response({"sdp": answer.sdp, "type": answer.type, "call_id": session.call_id})

    async def _whip_offer(self, request: web.Request) -> web.Response:
        if request.content_type != "application/sdp":
            return web.Response(status=415, text=f"WHIP needs Content-Type application/sdp, got {request.content_type}")
        if (request.content_length or 0) > MAX_OFFER_BYTES:
            return web.Response(status=413, text="offer too large")
        route = request.match_info["route"]
        try:
            session = await self._answer(route, await request.text(), request, "whip")
        except OfferError as exc:
            return web.Response(status=exc.status, text=str(exc))
        return web.Response(
            status=201,
            text=session.pc.localDescription.sdp,
            content_type="application/sdp",
            headers={"Location": f"/whip/{route}/{session.call_id}"},
        )

    async def _delete(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["call_id"])
        if session is None:
            return web.json_response({"error": "no such call"}, status=404)
        session.remote_gone("DELETE from the client")
        return web.json_response({"call_id": session.call_id, "state": "ended"})

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        session = self.sessions.get(request.match_info["call_id"])
        if session is None:
            return web.json_response({"error": "no such call"}, status=404)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        session.subscribers[queue] = 0
        session.flush_events()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        try:
            while (message := await queue.get()) is not None:
                await response.write(f"data: {json.dumps(message, default=str)}\n\n".encode())
        finally:
            session.subscribers.pop(queue, None)
        return response

    # -- offer/answer --------------------------------------------------------------------
    async def _answer(self, route: str, offer_sdp: str, request: web.Request, signalling: str) -> _Session:
        if self.kernel.draining:
            raise OfferError(503, "the server is draining: no new calls")
        if route not in self.route_names:
            raise OfferError(404, f"no route {route!r} (routes: {', '.join(self.route_names)})")
        try:
            document = self.kernel.load_route(route)
        except (SwmlError, OSError) as exc:
            log.error("cannot load SWML for call", extra={"route": route, "error": str(exc)})
            raise OfferError(500, f"route {route!r}: the call flow cannot be loaded") from exc
        if "m=audio" not in offer_sdp:
            raise OfferError(400, "the offer has no audio m-line")
        call_id = f"webrtc-{uuid.uuid4().hex[:16]}"
        if (refusal := self.kernel.admission.admit(call_id, document, front_end="webrtc")) is not None:
            body = json.dumps({"error": f"over capacity: {refusal.detail}", "reason": refusal.reason.value})
            raise web.HTTPServiceUnavailable(text=body, content_type="application/json", headers=dict(refusal.headers))
        pc = RTCPeerConnection(rtc_configuration(self.options.ice))
        session = _Session(self, call_id, route, pc)
        pc.on("track", session.on_track)
        pc.on("datachannel", session.on_channel)
        pc.on("connectionstatechange", session.on_connection_state)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            transceiver = next(t for t in pc.getTransceivers() if t.kind == "audio")
            transceiver.sender.replaceTrack(session.media.outbound)
            transceiver.direction = "sendrecv"
            opus = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType.lower() == "audio/opus"]
            if "opus/48000" in offer_sdp.lower():
                transceiver.setCodecPreferences(opus)  # 48 kHz end to end: no inbound resampling
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError, KeyError... on a malformed offer
            self.kernel.admission.release(call_id)
            await pc.close()
            raise OfferError(400, f"cannot answer this offer: {exc or type(exc).__name__}") from exc
        if "\na=candidate:" not in pc.localDescription.sdp:
            self.kernel.admission.release(call_id)
            await pc.close()
            log.error(
                "WebRTC offer refused: no ICE candidate to answer with",
                extra={"call_id": call_id, "route": route, "host_addresses": list(self.options.host_addresses)},
            )
            raise OfferError(503, NO_CANDIDATE)
        call = self.kernel.start_call(
            call_id,
            from_uri=f"webrtc:{request.remote or 'unknown'}",
            to_uri=f"webrtc:{route}",
            document=document,
            media=session.media,
            signal=_Signal(session),
            send_media=lambda _: None,  # aiortc sends by itself; tick() returns no datagrams
            on_ended=self._call_ended,
            info={"type": "webrtc", "signalling": signalling, "route": route, "remote": request.remote or ""},
            route=route,
        )
        session.call = call
        self.sessions[call_id] = session
        session.spawn(session.forward_events(self.kernel.events.subscribe(call_id, kinds=[LOG])), "webrtc-events")
        session.agent_feed = self.kernel.agents.watch(call_id)
        session.spawn(session.forward_agent(session.agent_feed), "webrtc-agent")
        session.timer = asyncio.get_running_loop().call_later(CONNECT_TIMEOUT_S, session.connect_timeout)
        call.ring()
        return session

    def _call_ended(self, call: Call) -> None:
        session = self.sessions.pop(call.call_id, None)
        if session is None:
            return
        session.flush_events()
        session.flush_agent()
        session.send({"type": "hangup"})
        for queue in session.subscribers:
            queue.put_nowait(None)
        for task in list(session.tasks):
            if task.get_name().startswith(("webrtc-in", "webrtc-events", "webrtc-agent")):
                task.cancel()
        task = asyncio.get_running_loop().create_task(session.close(), name=f"webrtc-close:{call.call_id}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
