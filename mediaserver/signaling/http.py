"""HTTP API: health and a read-only view of the live calls (more control comes later)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from mediaserver import __version__
from mediaserver.kernel.call import Call
from mediaserver.kernel.registry import Kernel
from mediaserver.metrics import Metrics, turn_timings


def _call_view(call: Call, events: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "call_id": call.call_id,
        "state": call.state.value,
        "from": call.from_uri,
        "to": call.to_uri,
        "codec": call.media.codec_name,
        "played_samples": call.media.playout.played_samples,
        "sample_rate": call.media.sample_rate,
        **{k: v for k, v in call.info.items() if isinstance(v, str | int | float)},
    }
    if events:
        view["events"] = call.events.events
        view["timing"] = turn_timings(call.events.events)  # per-turn stage times (ms)
    return view


def build_http_app(
    kernel: Kernel,
    extra_health: Callable[[], dict[str, Any]] | None = None,
    mounts: Sequence[Callable[[web.Application], None]] = (),
) -> web.Application:
    """The HTTP API; each of `mounts` adds a front end's routes (WebRTC signalling, its page)."""
    app = web.Application()

    async def health(_: web.Request) -> web.Response:
        pacer = kernel.ticker.pacer.stats
        return web.json_response(
            {
                "status": "ok",
                "version": __version__,
                "calls": len(kernel.calls),
                "calls_started": kernel.calls_started,
                # state open / ai_full / full / draining, the AI sessions, limits and headroom
                "admission": kernel.admission.snapshot(draining=kernel.draining),
                "tick": {"late_frames": pacer.late_frames, "ticks": pacer.ticks},
                **(extra_health() if extra_health else {}),
            }
        )

    async def list_calls(_: web.Request) -> web.Response:
        return web.json_response({"calls": [_call_view(c, events=False) for c in kernel.calls.values()]})

    async def show_call(request: web.Request) -> web.Response:
        call = kernel.calls.get(request.match_info["call_id"])
        if call is None:
            return web.json_response({"error": "no such call"}, status=404)
        return web.json_response(_call_view(call, events=True))

    app.router.add_get("/health", health)
    app.router.add_get("/calls", list_calls)
    app.router.add_get("/calls/{call_id}", show_call)
    for mount in mounts:
        mount(app)
    return app


# The /dashboard page's files. grafana-dashboard.json links to deploy/grafana's dashboard, so
# the page draws the panels Grafana does (mediaserver/web/dashboard.js says how).
DASHBOARD_FILES = {
    "/dashboard": "dashboard.html",
    "/dashboard/dashboard.js": "dashboard.js",
    "/dashboard/dashboard.css": "dashboard.css",
    "/dashboard/grafana.json": "grafana-dashboard.json",
}
WEB_DIR = Path(__file__).resolve().parents[1] / "web"


def metrics_mount(metrics: Metrics) -> Callable[[web.Application], None]:
    """A `mounts` entry serving `GET /metrics` (Prometheus text exposition) and `GET /dashboard`,
    a page that draws it; both as open as /metrics (no token)."""

    async def scrape(_: web.Request) -> web.Response:
        body, content_type = metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    def dashboard_file(name: str) -> Callable[[web.Request], Any]:
        async def serve(_: web.Request) -> web.FileResponse:
            return web.FileResponse(WEB_DIR / name, headers={"Cache-Control": "no-cache"})

        return serve

    def mount(app: web.Application) -> None:
        app.router.add_get("/metrics", scrape)
        for path, name in DASHBOARD_FILES.items():
            app.router.add_get(path, dashboard_file(name))

    return mount
