"""The /dashboard page and deploy/grafana's dashboard cannot drift apart.

The Grafana JSON's queries must name metrics our /metrics serves (checked in Python, from the
exposition of a `Metrics` wired exactly as the app wires it). The page's panels come from that
same JSON: its PromQL subset (mediaserver/web/dashboard.js, run here under node) must read every
query, yield the same panel list, and compute what Prometheus would from the same scrapes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from mediaserver.app import MediaServer
from mediaserver.kernel.eventbus import LOG
from mediaserver.kernel.registry import Kernel
from mediaserver.kernel.services import KernelServices
from mediaserver.metrics import Metrics
from mediaserver.settings import load_settings
from mediaserver.signaling.http import DASHBOARD_FILES, WEB_DIR, metrics_mount
from tests.unit.test_metrics import BARGE, TURN

REPO = Path(__file__).resolve().parents[2]
GRAFANA_JSON = REPO / "deploy" / "grafana" / "dashboards" / "mediaserver.json"
DASHBOARD_JS = WEB_DIR / "dashboard.js"

# Reads {"dashboard": ..., "scrapes": [[t, text], ...]} on stdin; prints the page's panels, the
# metric names of their queries and the latest value of every series.
NODE_HARNESS = """
const core = require(process.argv[1]);
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const { dashboard, scrapes } = JSON.parse(input);
  const page = new core.Dashboard(dashboard);
  for (const [t, text] of scrapes) page.addScrape(t, text);
  const latest = page.latest();
  const nums = (v) => (Number.isFinite(v) ? v : String(v));
  console.log(JSON.stringify(page.panels.map((p) => ({
    id: p.id, title: p.title, type: p.type, row: p.row,
    targets: p.targets.map((t) => ({
      refId: t.refId, error: t.error, metrics: t.ast ? [...core.metricNames(t.ast)] : [],
    })),
    latest: Object.fromEntries(Object.entries(latest[p.id]).map(([k, v]) => [k, nums(v)])),
  }))));
});
"""


def grafana() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GRAFANA_JSON.read_text())
    return data


def grafana_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        out.extend(grafana_panels(panel) if panel["type"] == "row" else [panel])
    return out


class Server:
    """The app's metrics wiring (`MediaServer._metrics`) over a real, idle kernel we can steer.
    Some gauges read the running loop, so the tests that scrape are async."""

    def __init__(self) -> None:
        owner = MediaServer(load_settings(environ={}))  # not started: no sockets, no engines
        owner.blocking.shutdown()
        self.kernel = Kernel(owner.ticker, KernelServices(None, owner.blocking), lambda user: "x.yaml")  # type: ignore[arg-type]
        self.bus = self.kernel.events
        self.metrics: Metrics = owner._metrics(self.kernel)

    def calls(self, active: int, started: int) -> None:
        self.kernel.calls = {f"c{i}": object() for i in range(active)}  # type: ignore[misc]  # counted only
        self.kernel.calls_started = started

    def events(self, call_id: str, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            self.bus.publish(call_id, entry, kind=LOG)

    def scrape(self) -> str:
        return self.metrics.render()[0].decode()


def served_names(text: str) -> set[str]:
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def run_page(scrapes: list[tuple[float, str]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Debian package nodejs)")
    result = subprocess.run(
        [node, "-e", NODE_HARNESS, str(DASHBOARD_JS)],
        input=json.dumps({"dashboard": grafana(), "scrapes": scrapes}),
        capture_output=True,
        text=True,
        check=True,
    )
    panels: list[dict[str, Any]] = json.loads(result.stdout)
    return panels


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's algorithm, for the reference values: (upper bound, cumulative count) pairs."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    rank = q * total
    for i, (le, count) in enumerate(buckets):
        if count >= rank:
            if le == float("inf"):
                return buckets[-2][0]
            lower, below = (0.0, 0.0) if i == 0 else buckets[i - 1]
            return lower + (le - lower) * (rank - below) / (count - below)
    raise AssertionError("unreachable")


def buckets_of(text: str, name: str, **labels: str) -> list[tuple[float, float]]:
    return [
        (float(s.labels["le"]), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


async def test_every_metric_the_grafana_dashboard_queries_is_served() -> None:
    server = Server()
    server.events("c1", TURN + BARGE)  # labelled series appear once observed
    names = served_names(server.scrape())
    queried = {
        name
        for panel in grafana_panels(grafana())
        for target in panel["targets"]
        for name in re.findall(r"\b(mediaserver_[a-z0-9_]+)", target["expr"])
    }
    assert queried, "the dashboard queries no metric"
    assert queried <= names, f"queried but not served: {sorted(queried - names)}"


async def test_every_page_panel_is_a_grafana_panel_and_every_query_is_read() -> None:
    server = Server()
    server.events("c1", TURN + BARGE)
    text = server.scrape()
    panels = run_page([(0.0, text)])
    expected = [(p["id"], p["title"], p["type"]) for p in grafana_panels(grafana())]
    assert [(p["id"], p["title"], p["type"]) for p in panels] == expected
    names = served_names(text)
    for panel in panels:
        for target in panel["targets"]:
            assert target["error"] is None, (panel["title"], target)
            assert target["metrics"] and set(target["metrics"]) <= names, (panel["title"], target)
    assert [p["row"] for p in panels if p["id"] in (2, 12, 18, 23)] == [
        "Calls",
        "Turn latency",
        "Barge-ins",
        "Media clock and event loop",
    ]


async def test_page_values_are_what_prometheus_computes_from_the_same_scrapes() -> None:
    server = Server()
    first = server.scrape()  # the page opens on an idle server
    server.calls(active=2, started=3)
    server.events("c1", TURN + BARGE)
    # The same turn 200000 samples later, its first agent frame 100 ms later than the first's.
    later = {"caller_sample": 200_000, "speech_end": 200_000}
    second_turn = [{**e, **{k: e[k] + n for k, n in later.items() if k in e}} for e in TURN]
    second_turn[-1]["caller_sample"] += 1600
    server.events("c2", second_turn)
    second = server.scrape()
    panels: dict[str, dict[str, Any]] = {}
    for panel in run_page([(0.0, first), (10.0, second)]):
        panels.setdefault(panel["title"], panel)  # "Active calls": the stat, not the time series

    def value(title: str, legend: str) -> Any:
        return panels[title]["latest"][legend]

    assert value("Active calls", "active") == 2
    assert value("Calls started (range)", "started") == 3  # the range is the process's life
    assert value("Caller turns (range)", "turns") == 2
    assert value("Calls started per minute", "") == pytest.approx(3 / 10 * 60)
    assert value("Turns and call events per minute", "caller turns") == pytest.approx(2 / 10 * 60)
    # Quantiles: the cumulative buckets over the range, the deltas between polls per interval
    # (here the same: nothing had been observed before the first poll).
    frames = buckets_of(second, "mediaserver_turn_stage_seconds_bucket", stage="first_agent_frame")
    assert value("Voice-to-voice p95", "p95") == pytest.approx(histogram_quantile(0.95, frames))
    assert value("Voice-to-voice (first agent frame)", "p50") == pytest.approx(histogram_quantile(0.5, frames))
    endpoint = buckets_of(second, "mediaserver_turn_stage_seconds_bucket", stage="endpoint")
    assert value("Turn stages p50", "endpoint") == pytest.approx(histogram_quantile(0.5, endpoint))
    assert set(panels["Turn stages p95"]["latest"]) == {
        "endpoint",
        "first_agent_frame",
        "after_endpoint",
        "asr_final",
        "llm_first_token",
        "tts_first_audio",
    }
    assert value("Mean stage time", "first_agent_frame") == pytest.approx((0.76 + 0.86) / 2)
    assert value("Barge-ins by outcome", "flushed") == 1 and value("Barge-ins by outcome", "paused") == 1
    assert value("Barge-in decision time", "p50") == pytest.approx(
        histogram_quantile(0.5, buckets_of(second, "mediaserver_barge_decision_seconds_bucket"))
    )
    # The heatmap: observations per bucket bound, cumulative as exposed.
    heat = panels["Voice-to-voice distribution"]["latest"]
    assert heat["+Inf"] == 2 and heat["0.75"] == 0 and heat["1.0"] == 2


async def test_a_counter_reset_between_polls_counts_from_zero() -> None:
    server = Server()
    scrapes = []
    for t, started in ((0.0, 5), (5.0, 7), (10.0, 1)):  # the server restarted before the last poll
        server.calls(active=0, started=started)
        scrapes.append((t, server.scrape()))
    panels = {p["title"]: p for p in run_page(scrapes)}
    assert panels["Calls started per minute"]["latest"][""] == pytest.approx((2 + 1) / 10 * 60)


def test_the_page_serves_the_grafana_dashboard_file() -> None:
    assert json.loads((WEB_DIR / DASHBOARD_FILES["/dashboard/grafana.json"]).read_text()) == grafana()


async def test_dashboard_routes_are_served_beside_metrics() -> None:
    app = web.Application()
    metrics_mount(Metrics())(app)
    async with TestClient(TestServer(app)) as client:
        page = await client.get("/dashboard")
        assert page.status == 200 and 'src="/dashboard/dashboard.js"' in await page.text()
        script = await client.get("/dashboard/dashboard.js")
        assert script.status == 200 and "parseExposition" in await script.text()
        assert (await client.get("/dashboard/dashboard.css")).status == 200
        served = await client.get("/dashboard/grafana.json")
        assert served.status == 200 and json.loads(await served.text()) == grafana()
        assert (await client.get("/metrics")).status == 200


async def test_rates_use_the_polls_of_the_last_minute() -> None:
    server = Server()
    scrapes = []
    for t, started in ((0.0, 0), (100.0, 5), (130.0, 6), (160.0, 8)):
        server.calls(active=0, started=started)
        scrapes.append((t, server.scrape()))
    panels = {p["title"]: p for p in run_page(scrapes)}
    assert panels["Calls started per minute"]["latest"][""] == pytest.approx((8 - 5) / 60 * 60)
    # Polls further apart than the window: the rate over the last two.
    panels = {p["title"]: p for p in run_page(scrapes[:2])}
    assert panels["Calls started per minute"]["latest"][""] == pytest.approx(5 / 100 * 60)
