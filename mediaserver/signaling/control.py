"""Live call control over HTTP: calls, hangup, say / user_input, the sidecar API, event streams.

Theory of operation: `control_routes(kernel, sidecars, bus, token)` returns a mount for
`build_http_app`; every route lives under `/api` and needs `Authorization: Bearer <token>` (or
`?token=` for browsers' EventSource, which cannot set headers). An empty token turns the API
off (403 for everyone) rather than leaving calls open to anyone who can reach the port. The
token is compared in constant time (`hmac.compare_digest` over SHA-256 digests, so not even its
length shows), and a client (by peer address) with `MAX_AUTH_FAILURES` failed attempts within
`AUTH_WINDOW_S` gets 429 with Retry-After, right token or not, until the oldest failure ages
out (`FailedAuthLimiter`). Failed attempts are logged with the peer and the path, never the
token or the query string.

Replies are JSON. The sidecar routes mirror the FS API of seed 002 and answer its text in
`reply` (`+OK started`, `+OK queued`, `+OK running=1 ticks=…`, `-ERR: Invalid Call`, `-ERR:
there is already a transcriber attached to this call`, `-ERR: lang is required`…), with `ok`
and an HTTP status that says the same (404 no call / no sidecar, 409 busy, 400 bad config,
503 engines). `status` also gives the counters as an object.

    GET  /api/calls                          live calls
    GET  /api/calls/{id}                     one call, its event log, its sidecar counters, its
                                             ai usage (`accounting`, with params.enable_accounting)
    POST /api/calls/{id}/hangup              {"reason"?}
    POST /api/calls/{id}/say                 {"text"}   the AI agent says it, or TTS straight to the call
    POST /api/calls/{id}/user_input          {"text"}   into the AI agent's (or the sidecar's) conversation
    POST /api/calls/{id}/sidecar/start       the ai_sidecar verb's JSON body
    GET  /api/calls/{id}/sidecar/status
    POST /api/calls/{id}/sidecar/poke        {"text"}
    POST /api/calls/{id}/sidecar/ask         {"question"}
    POST /api/calls/{id}/sidecar/stop
    GET  /api/events[?call_id=…&kinds=sidecar,call,transcribe,user_event,log]   server-sent events
    GET  /api/events/ws[?call_id=…&kinds=…]              the same as WebSocket text frames

Each streamed event is `{"call_id", "kind", "seq", "data"}` (SSE: `event: <kind>`, `id: <seq>`).
The streams are subscriptions to the kernel's one event bus (kernel/eventbus.py): kind "log"
is every call event-log entry (`data` is the entry, as `GET /api/calls/{id}` lists it), opt-in
(`kinds=log`); without `kinds` a stream gets the sidecar's, the transcriber's, the control
actions' ("call") and the application's `user_event` ("user_event") events.

The AI agent of a call is reached only through its `AgentHandle` in `kernel.agents`
(kernel/agent.py): `say`, `user_input`, `status`; nothing here reads the agent's state.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from mediaserver.agents.sidecar.runner import SidecarManager
from mediaserver.errors import HangupCause
from mediaserver.events import ApiSayFailed
from mediaserver.kernel.call import Call, CallEnded
from mediaserver.kernel.eventbus import BusEvent, EventBus
from mediaserver.kernel.registry import Kernel

__all__ = ["FailedAuthLimiter", "control_routes"]

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
MAX_AUTH_FAILURES = 10  # failed bearer tokens per client within AUTH_WINDOW_S; then 429
AUTH_WINDOW_S = 60.0
STATUS_OF = {
    "Invalid Call": 404,
    "no sidecar attached": 404,
    "there is already a transcriber attached to this call": 409,
    "failed to build sidecar app (model resolution failed?)": 503,
    "failed to start transcribe": 503,
}


class FailedAuthLimiter:
    """Failed authentication attempts per client in a sliding window.

    `blocked_for(client, now)` is how long the client must still wait (0: not blocked): it is
    blocked once it has `max_failures` failures within the last `window_s` seconds, until the
    oldest of them is that old. A success clears the client's record. At most `max_clients`
    clients are remembered (the stalest are forgotten first), so a scan from many addresses
    cannot grow it without bound."""

    def __init__(
        self,
        max_failures: int = MAX_AUTH_FAILURES,
        window_s: float = AUTH_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def blocked_for(self, client: str, now: float) -> float:
        times = self._recent(client, now)
        if times is None or len(times) < self.max_failures:
            return 0.0
        return times[-self.max_failures] + self.window_s - now

    def failed(self, client: str, now: float) -> int:
        """Count a failure; returns the client's failures within the window."""
        times = self._recent(client, now)
        if times is None:
            if len(self._failures) >= self.max_clients:
                stalest = min(self._failures, key=lambda c: self._failures[c][-1])
                del self._failures[stalest]
            times = self._failures[client] = deque(maxlen=self.max_failures)
        times.append(now)
        return len(times)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def _reply(text: str, **extra: Any) -> web.Response:
    ok = text.startswith("+OK")
    status = 200 if ok else STATUS_OF.get(text.removeprefix("-ERR: "), 400)
    return web.json_response({"ok": ok, "reply": text, **extra}, status=status)


def _event_json(event: BusEvent) -> str:
    return json.dumps({"call_id": event.call_id, "kind": event.kind, "seq": event.seq, "data": event.data}, default=str)


def control_routes(
    kernel: Kernel,
    sidecars: SidecarManager | None,
    bus: EventBus,
    token: str,
    *,
    auth_limit: FailedAuthLimiter | None = None,
) -> Callable[[web.Application], None]:
    limiter = auth_limit or FailedAuthLimiter()
    expected = _digest(token)

    def authorized(request: web.Request) -> web.Response | None:
        if not token:
            return web.json_response(
                {
                    "error": "the control API is disabled: set [api] token in the config "
                    "(or the MS_API_TOKEN environment variable)"
                },
                status=403,
            )
        client, now = request.remote or "unknown", limiter.clock()
        wait = limiter.blocked_for(client, now)
        if wait > 0:
            return web.json_response(
                {"error": "too many failed attempts: retry later"},
                status=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        given = request.headers.get("Authorization", "")
        given = given[7:] if given.lower().startswith("bearer ") else request.query.get("token", "")
        if not hmac.compare_digest(_digest(given), expected):
            failures = limiter.failed(client, now)
            blocked = failures >= limiter.max_failures
            log.log(
                logging.WARNING if blocked else logging.INFO,
                "control API: too many failed attempts, client blocked" if blocked else "control API: bad token",
                extra={"peer": client, "method": request.method, "path": request.path, "failures": failures},
            )
            return web.json_response(
                {"error": "missing or wrong bearer token"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        limiter.succeeded(client)
        return None

    def guarded(handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            refused = authorized(request)
            if refused is not None:
                return refused
            result: web.StreamResponse = await handler(request)
            return result

        return wrapper

    def find(request: web.Request) -> Call | None:
        return kernel.calls.get(request.match_info["call_id"])

    async def body(request: web.Request) -> dict[str, Any] | None:
        try:
            data = await request.json() if request.can_read_body else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def text_of(data: dict[str, Any] | None, key: str) -> str | web.Response:
        value = (data or {}).get(key)
        if not isinstance(value, str) or not value.strip():
            return web.json_response({"ok": False, "error": f"{key}: expected a non-empty string"}, status=400)
        return value

    def view(call: Call, events: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "call_id": call.call_id,
            "state": call.state.value,
            "from": call.from_uri,
            "to": call.to_uri,
            "codec": call.media.codec_name,
            "answered": call.answered,
            "ai": call.call_id in kernel.agents,
            "transcriber": sidecars.transcribers.get(call.call_id) if sidecars else None,
        }
        agent = kernel.agents.get(call.call_id)
        if agent is not None and events:
            out["agent"] = agent.status()
        counters = sidecars.counters(call.call_id) if sidecars is not None else None
        if counters is not None:
            out["sidecar"] = counters
        if events:
            out["events"] = call.events.events
            # params.enable_accounting: the last ai verb's usage totals (agents/ai/accounting.py)
            usage = [e["totals"] for e in call.events.events if e.get("event") == "ai_accounting"]
            if usage:
                out["accounting"] = usage[-1]
        return out

    async def list_calls(_: web.Request) -> web.Response:
        return web.json_response({"calls": [view(c, False) for c in kernel.calls.values()]})

    async def show_call(request: web.Request) -> web.Response:
        call = find(request)
        return web.json_response(view(call, True)) if call else _reply("-ERR: Invalid Call")

    async def hangup(request: web.Request) -> web.Response:
        call = find(request)
        if call is None:
            return _reply("-ERR: Invalid Call")
        data = await body(request) or {}
        reason = str(data.get("reason") or "api")
        call.hangup(HangupCause.NORMAL_CLEARING, reason=f"control API: {reason}")
        bus.publish(call.call_id, {"event": "hangup_requested", "reason": reason}, kind="call")
        return _reply("+OK hung up")

    async def live_call_text(request: web.Request) -> tuple[Call, str] | web.Response:
        """The live call named in the path and the body's `text`, or the error reply to send."""
        call = find(request)
        if call is None or call.is_over:
            return _reply("-ERR: Invalid Call")
        text = text_of(await body(request), "text")
        return text if isinstance(text, web.Response) else (call, text)

    async def say(request: web.Request) -> web.Response:
        found = await live_call_text(request)
        if isinstance(found, web.Response):
            return found
        call, text = found
        agent = kernel.agents.get(call.call_id)
        if agent is not None:
            agent.say(text)
            how = "ai"
        else:
            if not call.answered:
                return _reply("-ERR: call not answered")
            task = asyncio.create_task(_speak(kernel, call, text), name=f"api-say:{call.call_id}")
            _background.add(task)
            task.add_done_callback(_background.discard)
            how = "tts"
        bus.publish(call.call_id, {"event": "say_injected", "text": text, "via": how}, kind="call")
        return _reply("+OK queued", via=how)

    async def user_input(request: web.Request) -> web.Response:
        found = await live_call_text(request)
        if isinstance(found, web.Response):
            return found
        call, text = found
        agent = kernel.agents.get(call.call_id)
        if agent is not None:
            agent.user_input(text)
            via = "ai"
        elif sidecars is not None and sidecars.user_input(call.call_id, text):
            via = "sidecar"
        else:
            return _reply("-ERR: no AI on this call")
        bus.publish(call.call_id, {"event": "user_input_injected", "text": text, "via": via}, kind="call")
        return _reply("+OK queued", via=via)

    def need_sidecars() -> SidecarManager:
        if sidecars is None:
            raise web.HTTPServiceUnavailable(
                text=json.dumps({"ok": False, "reply": "-ERR: sidecar not configured"}), content_type="application/json"
            )
        return sidecars

    async def sc_start(request: web.Request) -> web.Response:
        manager = need_sidecars()
        raw = await request.read()
        return _reply(await manager.start(find(request), raw.decode("utf-8", "replace") if raw else "{}"))

    async def sc_status(request: web.Request) -> web.Response:
        manager = need_sidecars()
        call_id = request.match_info["call_id"]
        if call_id not in kernel.calls and call_id not in manager.sidecars:
            return _reply("-ERR: Invalid Call")
        counters = manager.counters(call_id)
        return _reply(manager.status(call_id), **({"status": counters} if counters is not None else {}))

    async def sc_poke(request: web.Request) -> web.Response:
        manager = need_sidecars()
        if find(request) is None:
            return _reply("-ERR: Invalid Call")
        text = text_of(await body(request), "text")
        return text if isinstance(text, web.Response) else _reply(manager.poke(request.match_info["call_id"], text))

    async def sc_ask(request: web.Request) -> web.Response:
        manager = need_sidecars()
        if find(request) is None:
            return _reply("-ERR: Invalid Call")
        question = text_of(await body(request), "question")
        if isinstance(question, web.Response):
            return question
        return _reply(manager.ask(request.match_info["call_id"], question))

    async def sc_stop(request: web.Request) -> web.Response:
        manager = need_sidecars()
        call_id = request.match_info["call_id"]
        if call_id not in kernel.calls and call_id not in manager.sidecars:
            return _reply("-ERR: Invalid Call")
        return _reply(await manager.stop(call_id))

    def subscription_args(request: web.Request) -> tuple[str | None, list[str] | None]:
        kinds = request.query.get("kinds")
        return request.query.get("call_id") or None, [k for k in kinds.split(",") if k] if kinds else None

    async def sse(request: web.Request) -> web.StreamResponse:
        call_id, kinds = subscription_args(request)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        await response.write(b": subscribed\n\n")
        async with bus.subscribe(call_id, kinds) as sub:
            while True:
                event = await sub.get(timeout_s=HEARTBEAT_S)
                try:
                    if event is None:
                        await response.write(b": ping\n\n")
                        continue
                    chunk = f"event: {event.kind}\nid: {event.seq}\ndata: {_event_json(event)}\n\n"
                    await response.write(chunk.encode())
                except (ConnectionResetError, RuntimeError):
                    break  # the client went away
        return response

    async def ws(request: web.Request) -> web.StreamResponse:
        call_id, kinds = subscription_args(request)
        socket = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
        await socket.prepare(request)
        async with bus.subscribe(call_id, kinds) as sub:

            async def pump() -> None:
                async for event in sub:
                    await socket.send_str(_event_json(event))

            pumping = asyncio.create_task(pump())
            try:
                async for message in socket:  # the client only closes; anything it sends is ignored
                    if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                        break
            finally:
                pumping.cancel()
                await asyncio.gather(pumping, return_exceptions=True)
        return socket

    def mount(app: web.Application) -> None:
        routes = [
            ("GET", "/api/calls", list_calls),
            ("GET", "/api/calls/{call_id}", show_call),
            ("POST", "/api/calls/{call_id}/hangup", hangup),
            ("POST", "/api/calls/{call_id}/say", say),
            ("POST", "/api/calls/{call_id}/user_input", user_input),
            ("POST", "/api/calls/{call_id}/sidecar/start", sc_start),
            ("GET", "/api/calls/{call_id}/sidecar/status", sc_status),
            ("POST", "/api/calls/{call_id}/sidecar/status", sc_status),
            ("POST", "/api/calls/{call_id}/sidecar/poke", sc_poke),
            ("POST", "/api/calls/{call_id}/sidecar/ask", sc_ask),
            ("POST", "/api/calls/{call_id}/sidecar/stop", sc_stop),
            ("GET", "/api/events", sse),
            ("GET", "/api/events/ws", ws),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, guarded(handler))

    return mount


_background: set[asyncio.Task[None]] = set()


async def _speak(kernel: Kernel, call: Call, text: str) -> None:
    """TTS straight onto a call without an AI agent (e.g. a bridged call): an announcement."""
    try:
        async for chunk in kernel.synthesizer.stream(text):
            call.enqueue_audio(chunk.pcm, chunk.sample_rate, final=True)
    except CallEnded:
        pass
    except Exception as exc:
        call.events.emit(ApiSayFailed(error=repr(exc)))
