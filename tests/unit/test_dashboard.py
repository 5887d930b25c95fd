"""The Grafana dashboard (deploy/grafana/dashboards/mediaserver.json) asks only for what /metrics
really exports: every metric name, label and label value in its PromQL is checked against a scrape
of the app's own `Metrics` (wired by `MediaServer._metrics`, fed call events on the event bus)."""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mediaserver.app import MediaServer
from mediaserver.events import (
    BargeFlushed,
    BargePaused,
    BargeResumed,
    CallEnded,
    CallEvent,
    TurnAsrFinal,
    TurnEndpoint,
    TurnFirstAgentFrame,
    TurnLlmFirstToken,
    TurnSpeechEnded,
    TurnSpeechStarted,
    TurnTtsFirstAudio,
)
from mediaserver.kernel.eventbus import EventBus
from mediaserver.settings import load_settings

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/mediaserver.json"
TARGET_LABELS = {"instance", "job"}  # added by Prometheus to every scraped series
FUNCTIONS = {
    "abs",
    "avg",
    "avg_over_time",
    "ceil",
    "clamp_min",
    "count",
    "delta",
    "deriv",
    "floor",
    "histogram_quantile",
    "increase",
    "irate",
    "label_values",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "quantile",
    "rate",
    "round",
    "sum",
    "sum_over_time",
    "topk",
    "vector",
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
Exported = dict[str, dict[str, set[str]]]  # sample name -> label -> values seen


class FakeKernel:
    def __init__(self) -> None:
        self.events = EventBus()
        self.calls: dict[str, object] = {"c1": object()}
        self.calls_started = 3


def scrape() -> Exported:
    """The live registry's samples after a turn and three barge-ins went through the event bus."""
    server = MediaServer(load_settings(environ={}), tts=object())  # type: ignore[arg-type]
    kernel = FakeKernel()
    metrics = server._metrics(kernel)  # type: ignore[arg-type]  # the app's own wiring: bus listener, gauges

    def emit(ts: float, event: CallEvent) -> None:
        kernel.events.publish_call_event("c1", event, event.to_dict(ts))

    emit(100.0, TurnSpeechStarted(caller_sample=16000, decided_at=16480))
    emit(101.2, TurnSpeechEnded(caller_sample=32000))
    emit(101.5, TurnAsrFinal(caller_sample=32000, text="are you open"))
    emit(101.9, TurnEndpoint(caller_sample=43200, speech_end=32000, reason="silence", preemptive=False))
    emit(102.3, TurnLlmFirstToken())
    emit(102.5, TurnTtsFirstAudio(start_mark=0))
    emit(102.6, TurnFirstAgentFrame(caller_sample=52000, cursor=320))
    emit(104.0, TurnSpeechStarted(caller_sample=64000, decided_at=65440))
    emit(104.1, BargePaused(caller_sample=65600, cursor=48000))
    emit(104.3, BargeResumed(caller_sample=68000, cursor=48000))
    emit(105.0, BargePaused(caller_sample=80000, cursor=50000))
    emit(105.4, BargeFlushed(caller_sample=86000, cursor=50000, heard_text="Yes", heard_words=1, total_words=4))
    emit(106.0, CallEnded(cause="normal", packets_in=1, packets_out=1))
    body, _ = metrics.render()
    exported: Exported = defaultdict(lambda: defaultdict(set))
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = exported[sample.name]
            for label, value in sample.labels.items():
                labels[label].add(value)
    return exported


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target (rows' nested panels too) and every query variable."""
    out = []
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop(0)
        panels.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            out.append((f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query))
    return out


def _bare(expr: str) -> str:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    return re.sub(r"\$\{?\w+\}?", "", expr)  # dashboard variables


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels left out)."""
    bare = _bare(expr)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    bare = re.sub(r"\{[^}]*\}", " ", bare)
    bare = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)", r"\1", bare)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][\w:]*", bare):
        word, after = match.group(), bare[match.end() :].lstrip()
        if after.startswith("(") or word in KEYWORDS or re.fullmatch(r"\d+\w*", word):
            continue
        names.add(word)
    return names


def problems(dashboard: dict[str, Any], exported: Exported) -> list[str]:
    """What in the dashboard's PromQL the scrape does not have: names, labels, label values."""
    found = []
    for where, expr in expressions(dashboard):
        names = metric_names(expr)
        if not names:
            found.append(f"{where}: selects no metric: {expr}")
        for name in sorted(names - set(exported)):
            found.append(f"{where}: {name} is not exported by mediaserver.metrics")
        known = set().union(*(exported[n] for n in names if n in exported)) | TARGET_LABELS
        for function in re.findall(r"([a-zA-Z_]\w*)\s*\(", _bare(expr)):
            if function not in FUNCTIONS | KEYWORDS:
                found.append(f"{where}: unknown function {function}")
        for name, matchers in re.findall(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}", expr):
            for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', matchers):
                if label in TARGET_LABELS:
                    continue
                values = exported.get(name, {}).get(label)
                if values is None:
                    found.append(f"{where}: {name} has no label {label}")
                elif op == "=" and value not in values:
                    found.append(f"{where}: {name}{{{label}}} is never {value!r} (seen: {sorted(values)})")
        for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            for label in (part.strip() for part in group.split(",")):
                if label and label not in known:
                    found.append(f"{where}: groups by {label}, a label none of {sorted(names)} has")
        for _, label in re.findall(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)", expr):
            if label not in known:
                found.append(f"{where}: label_values of {label}, which is not a label")
    return found


@pytest.fixture(scope="module")
def exported() -> Exported:
    return scrape()


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_every_dashboard_query_uses_only_exported_metrics_labels_and_values(
    dashboard: dict[str, Any], exported: Exported
) -> None:
    assert len(expressions(dashboard)) >= 20
    assert problems(dashboard, exported) == []


def test_the_dashboard_shows_turn_stages_barge_ins_calls_late_frames_and_loop_lag(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names(expr) for _, expr in expressions(dashboard)))
    for needed in (
        "mediaserver_turn_stage_seconds_bucket",
        "mediaserver_barge_ins_total",
        "mediaserver_barge_decision_seconds_bucket",
        "mediaserver_calls_active",
        "mediaserver_calls_started_total",
        "mediaserver_ticker_late_frames_total",
        "mediaserver_event_loop_lag_p99_seconds",
    ):
        assert needed in used, needed
    stages = set().union(*(re.findall(r'stage="(\w+)"', expr) for _, expr in expressions(dashboard)))
    assert stages == {"first_agent_frame"}  # the per-stage panels group by stage: every stage shows


def test_the_check_catches_a_drifted_dashboard(dashboard: dict[str, Any], exported: Exported) -> None:
    assert metric_names(
        'histogram_quantile(0.95, sum by (le, stage) (rate(x_bucket{instance=~"$instance",stage="a"}[5m]))) / y'
    ) == {"x_bucket", "y"}
    assert metric_names("label_values(mediaserver_calls_active, instance)") == {"mediaserver_calls_active"}
    drifted = copy.deepcopy(dashboard)
    target = next(p for p in drifted["panels"] if p.get("targets"))["targets"][0]
    target["expr"] = target["expr"].replace("mediaserver_calls_active", "mediaserver_active_calls")
    assert any("mediaserver_active_calls is not exported" in p for p in problems(drifted, exported))
    target["expr"] = 'sum by (outcome) (rate(mediaserver_turn_stage_seconds_count{stage="llm"}[5m]))'
    found = problems(drifted, exported)
    assert len(found) == 2, found
    assert "groups by outcome, a label none of ['mediaserver_turn_stage_seconds_count'] has" in found[1]
    assert "mediaserver_turn_stage_seconds_count{stage} is never 'llm'" in found[0]


def test_the_scrape_has_the_stages_and_outcomes_the_events_produced(exported: Exported) -> None:
    stages = exported["mediaserver_turn_stage_seconds_count"]["stage"]
    assert stages == {
        "endpoint",
        "asr_final",
        "llm_first_token",
        "tts_first_audio",
        "first_agent_frame",
        "after_endpoint",
    }
    assert exported["mediaserver_barge_ins_total"]["outcome"] == {"paused", "resumed", "flushed"}
    assert "mediaserver_calls_active" in exported and "mediaserver_event_loop_lag_max_seconds" in exported
