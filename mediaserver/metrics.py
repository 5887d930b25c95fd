"""Per-turn timing views and Prometheus metrics, built from the calls' event logs.

Theory of operation: the AI session already logs every turn's milestones on the call's event
log (`turn_speech_ended`, `turn_endpoint`, `turn_asr_final`, `turn_llm_first_token`,
`turn_tts_first_audio`, `turn_first_agent_frame`, `barge_paused/resumed/flushed`). This module
does not add timers to the media path: `TurnTimeline` is a pure fold over those events that
yields one record per turn and per barge-in, and `Metrics.observe` listens to every call's events
on the kernel's event bus (the app wires it, kind "log") and feeds the same fold into histograms.

Two clocks, chosen per stage:

* events with `caller_sample` are positions on the caller's 16 kHz media clock (one sample per
  received sample, advanced in the 20 ms tick), so differences of them are exact media time with
  no scheduler noise: caller's last voiced sample -> endpoint decision, -> first agent frame
  sent (the in-server voice-to-voice), endpoint -> first agent frame, barge onset -> decision;
* LLM and TTS events happen off the tick and carry only their log time (`ts`, wall seconds);
  they are measured from the `turn_speech_ended` event's own log time, which is positive even
  when a preemptive reply started before the endpoint.

Gauges that describe the process (calls active/started, ticker late frames and deviation, event
loop lag) are read at scrape time from callables the app binds, so the media path pays nothing.
This module imports only the standard library, `prometheus_client` and `mediaserver.rates` (lowest layer).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from mediaserver.rates import PIPELINE_RATE

CALLER_RATE = PIPELINE_RATE  # Hz: the AI listener's media clock that `caller_sample` counts
STAGE_BUCKETS = (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
SAMPLE_STAGES = ("endpoint", "first_agent_frame", "after_endpoint")  # exact, from the media clock
WALL_STAGES = ("asr_final", "llm_first_token", "tts_first_audio")  # from log time, after speech end
MAX_TRACKED_CALLS = 2000  # timelines of calls whose end we never saw are dropped oldest first

Observation = tuple[str, str, float]  # (metric, label, seconds)


def _ms(samples: float) -> float:
    return round(samples * 1000 / CALLER_RATE, 1)


class TurnTimeline:
    """Folds one call's events into per-turn and per-barge-in timing records (all times in ms)."""

    def __init__(self) -> None:
        self.turns: list[dict[str, Any]] = []
        self.barges: list[dict[str, Any]] = []
        self._speech_end: dict[str, Any] | None = None  # the turn_speech_ended of the open turn
        self._onset: int | None = None  # caller_sample of the last speech onset
        self._turn: dict[str, Any] | None = None  # the turn whose reply has not started yet
        self._early: dict[str, Any] = {}  # stage times logged between speech end and the endpoint
        self._barge: dict[str, Any] | None = None

    def feed(self, entry: dict[str, Any]) -> list[Observation]:
        """Take one event (a `CallEventLog` entry); return the stage times it completed."""
        name = entry.get("event", "")
        sample = entry.get("caller_sample")
        out: list[Observation] = []
        if name == "turn_speech_started" and isinstance(sample, int):
            self._onset = sample
        elif name == "turn_speech_ended" and isinstance(sample, int):
            self._speech_end = entry
            self._early = {"_ended_ts": entry.get("ts")}
        elif name == "turn_endpoint" and isinstance(sample, int):
            end = entry.get("speech_end")
            if not isinstance(end, int):
                end = self._speech_end["caller_sample"] if self._speech_end else sample
            self._turn = {
                "turn": len(self.turns) + 1,
                "speech_end_sample": end,
                "endpoint_sample": sample,
                "endpoint_ms": _ms(sample - end),
                "preemptive": bool(entry.get("preemptive")),
                "reason": entry.get("reason"),
                "_ended_ts": (self._speech_end or entry).get("ts"),
                **{k: v for k, v in self._early.items() if k.endswith("_ms")},
            }
            self._early = {}
            self.turns.append(self._turn)
            out.append(("turn_stage", "endpoint", (sample - end) / CALLER_RATE))
        elif name in ("turn_asr_final", "turn_llm_first_token", "turn_tts_first_audio"):
            stage = name.removeprefix("turn_")
            # The ASR final and a preemptive reply can come before the endpoint; they belong to
            # the utterance whose end was logged last.
            target = self._turn if self._turn is not None else self._early
            ended = target.get("_ended_ts") if target else None
            if target is not None and stage + "_ms" not in target and isinstance(ended, float | int):
                seconds = max(0.0, float(entry["ts"]) - float(ended))
                target[stage + "_ms"] = round(seconds * 1000, 1)
                out.append(("turn_stage", stage, seconds))
        elif name == "turn_first_agent_frame" and isinstance(sample, int) and self._turn is not None:
            turn, self._turn = self._turn, None
            turn["first_agent_frame_sample"] = sample
            turn["first_agent_frame_ms"] = _ms(sample - turn["speech_end_sample"])
            turn["after_endpoint_ms"] = _ms(sample - turn["endpoint_sample"])
            out.append(("turn_stage", "first_agent_frame", (sample - turn["speech_end_sample"]) / CALLER_RATE))
            out.append(("turn_stage", "after_endpoint", (sample - turn["endpoint_sample"]) / CALLER_RATE))
        elif name == "barge_paused" and isinstance(sample, int):
            onset = self._onset if self._onset is not None else sample
            self._barge = {
                "barge": len(self.barges) + 1,
                "onset_sample": onset,
                "decision_sample": sample,
                "decision_ms": _ms(sample - onset),
                "cursor": entry.get("cursor"),
                "outcome": "paused",
            }
            self.barges.append(self._barge)
            out.append(("barge_decision", "", (sample - onset) / CALLER_RATE))
            out.append(("barge", "paused", 0.0))
        elif name in ("barge_resumed", "barge_flushed") and self._barge is not None:
            outcome = name.removeprefix("barge_")
            self._barge["outcome"] = outcome
            if outcome == "flushed":
                self._barge["heard_text"] = entry.get("heard_text", "")
                self._barge["heard_words"] = entry.get("heard_words")
            self._barge = None
            out.append(("barge", outcome, 0.0))
        return out

    def view(self) -> dict[str, Any]:
        """The JSON view: turns and barge-ins, private fields left out."""
        turns = [{k: v for k, v in turn.items() if not k.startswith("_")} for turn in self.turns]
        return {"caller_rate": CALLER_RATE, "turns": turns, "barge_ins": list(self.barges)}


def turn_timings(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per-turn and per-barge-in timings of one call, from its event list (`GET /calls/{id}`)."""
    timeline = TurnTimeline()
    for entry in events:
        timeline.feed(entry)
    return timeline.view()


class RtpDrops:
    """RTP packets the transport dropped, process-wide: bumped on the media path (an int add each),
    read at scrape time by every `Metrics` as `mediaserver_rtp_dropped_packets_total{reason}`."""

    def __init__(self) -> None:
        self.foreign_source = 0  # from an address other than the call's negotiated/latched one
        self.srtp = 0  # failed the SRTP check


RTP_DROPS = RtpDrops()


class _RtpDropCounter(Collector):
    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(
            "mediaserver_rtp_dropped_packets", "RTP packets dropped before the media path", labels=["reason"]
        )
        family.add_metric(["foreign_source"], RTP_DROPS.foreign_source)
        family.add_metric(["srtp"], RTP_DROPS.srtp)
        yield family


class Metrics:
    """The process's Prometheus registry: turn histograms fed from call events, bound gauges."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # `*_created` timestamps on every series only add noise here
        self.registry = CollectorRegistry(auto_describe=True)
        self.stage = Histogram(
            "mediaserver_turn_stage_seconds",
            "Per-turn stage time: endpoint, first_agent_frame and after_endpoint from the "
            "caller's media clock (exact); asr_final, llm_first_token, tts_first_audio from "
            "log time after the caller's speech ended",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.barge_decision = Histogram(
            "mediaserver_barge_decision_seconds",
            "Caller speech onset to the barge-in pause decision (media clock)",
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.barges = Counter(
            "mediaserver_barge_ins",
            "Barge-in decisions by outcome (paused, resumed, flushed)",
            ["outcome"],
            registry=self.registry,
        )
        self.turns = Counter("mediaserver_turns", "Caller turns committed (endpoint decisions)", registry=self.registry)
        self.events = Counter("mediaserver_call_events", "Call events logged", registry=self.registry)
        self.media_timeouts = Counter(
            "mediaserver_calls_media_timeout",
            "Calls ended because the peer sent no RTP for [rtp] timeout_s (or hold_timeout_s): a lost BYE",
            registry=self.registry,
        )
        self.registry.register(_RtpDropCounter())
        self._timelines: OrderedDict[str, TurnTimeline] = OrderedDict()

    def observe(self, call_id: str, entry: dict[str, Any]) -> None:
        """A listener of call events (`entry` is the JSON entry): fold it into the call's timeline
        and the histograms."""
        self.events.inc()
        name = entry.get("event", "")
        if name == "call_ended":
            self._timelines.pop(call_id, None)
            if entry.get("cause") == "MEDIA_TIMEOUT":
                self.media_timeouts.inc()
            return
        if not name.startswith(("turn_", "barge_")):
            return
        timeline = self._timelines.get(call_id)
        if timeline is None:
            timeline = self._timelines[call_id] = TurnTimeline()
            while len(self._timelines) > MAX_TRACKED_CALLS:
                self._timelines.popitem(last=False)
        for metric, label, seconds in timeline.feed(entry):
            if metric == "turn_stage":
                self.stage.labels(label).observe(seconds)
                if label == "endpoint":
                    self.turns.inc()
            elif metric == "barge_decision":
                self.barge_decision.observe(seconds)
            else:
                self.barges.labels(label).inc()

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """A gauge read at scrape time (calls active, late frames, loop lag...)."""
        Gauge(name, doc, registry=self.registry).set_function(read)

    def counter(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """A counter the process already keeps (calls started, late frames), read at scrape time."""
        self.registry.register(_ReadCounter(name, doc, read))

    def labelled_counter(self, name: str, doc: str, label: str, read: Callable[[], Mapping[str, float]]) -> None:
        """Counters the process keeps by one label (calls refused by reason), read at scrape time."""
        self.registry.register(_ReadLabelledCounter(name, doc, label, read))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _ReadCounter(Collector):
    def __init__(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self.name, self.doc, self.read = name, doc, read

    def collect(self) -> Iterable[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.doc, value=self.read())


class _ReadLabelledCounter(Collector):
    def __init__(self, name: str, doc: str, label: str, read: Callable[[], Mapping[str, float]]) -> None:
        self.name, self.doc, self.label, self.read = name, doc, label, read

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.doc, labels=[self.label])
        for value, count in sorted(self.read().items()):
            family.add_metric([value], count)
        yield family
