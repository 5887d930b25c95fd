"""Typed call events (mediaserver.events), the kernel's one bus, and the per-call JSONL writer."""

from __future__ import annotations

import ast
import importlib
import json
import logging
import threading
import time
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import pytest

import mediaserver
from mediaserver import events
from mediaserver.clock import MonotonicClock
from mediaserver.events import EVENTS, CallEnded, CallStarted, InvalidEvent, TurnEndpoint, from_fields
from mediaserver.kernel.eventbus import LOG, BusEvent, EventBus, Subscription
from mediaserver.kernel.registry import Kernel
from mediaserver.kernel.services import KernelServices
from mediaserver.kernel.tick import MediaTicker
from mediaserver.logs import STRICT_ENV, CallEventLog, CallLogWriter

PACKAGE = Path(mediaserver.__file__).parent
# Sites that emit a class chosen at run time (a parameter): the event names they can produce.
DYNAMIC = {
    "signaling/sip.py": {"sip_in", "sip_out"},
}


def _trees() -> list[tuple[str, ast.Module]]:
    return [(str(p.relative_to(PACKAGE)), ast.parse(p.read_text())) for p in sorted(PACKAGE.rglob("*.py"))]


def _event_classes() -> dict[str, type[events.CallEvent]]:
    """Every `@event` class in the package (importing its module registers it), by class name."""
    found: dict[str, type[events.CallEvent]] = {}
    for rel, tree in _trees():
        module = "mediaserver." + rel.removesuffix(".py").replace("/", ".")
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(ast.unparse(d) == "event" for d in node.decorator_list):
                found[node.name] = getattr(importlib.import_module(module), node.name)
    return found


def _classes_named(node: ast.expr, aliases: dict[str, str]) -> list[str] | None:
    """The class names an emitted expression builds: `X(…)`, `events.X(…)`, `(A if c else B)(…)`,
    `given or X()`; None where the class is a run-time value (a parameter)."""
    if isinstance(node, ast.Call):
        return _classes_named(node.func, aliases)
    if isinstance(node, ast.IfExp):
        body, orelse = _classes_named(node.body, aliases), _classes_named(node.orelse, aliases)
        return None if body is None or orelse is None else body + orelse
    if isinstance(node, ast.BoolOp):  # `started or CallStarted()`: the fallback's class
        built = [_classes_named(v, aliases) for v in node.values if isinstance(v, ast.Call)]
        return None if not built or None in built else [n for names in built if names for n in names]
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return [aliases.get(name, name)] if name[:1].isupper() else None


def _emit_sites() -> list[tuple[str, int, list[str] | None, set[str], bool]]:
    """Every `….events.emit(Event(…))` on a call event log in the package."""
    sites = []
    for rel, tree in _trees():
        imports = (n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
        aliases = {a.asname: a.name for n in imports for a in n.names if a.asname}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = ast.unparse(node.func.value)
            if node.func.attr != "emit" or not receiver.endswith("events") or not node.args:
                continue
            built = node.args[0]
            call = built if isinstance(built, ast.Call) else None
            keywords = {k.arg for k in call.keywords if k.arg is not None} if call else set()
            spread = call is None or any(k.arg is None for k in call.keywords) or bool(call.args)
            sites.append((rel, node.lineno, _classes_named(built, aliases), keywords, spread))
    return sites


def test_no_call_event_is_recorded_by_name() -> None:
    """`record(name, **fields)` is the deprecated untyped path: the package emits typed events only."""
    for rel, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "record":
                receiver = ast.unparse(node.func.value)
                assert not receiver.endswith("events"), f"{rel}:{node.lineno}: emit a class from mediaserver/events.py"


def test_every_event_name_used_in_the_code_is_registered_with_its_fields() -> None:
    classes = _event_classes()
    for name, cls in classes.items():
        assert EVENTS.get(cls.EVENT) is cls, f"{name} is not registered"
    sites = _emit_sites()
    assert len(sites) >= 80, "the scan found too few emit() sites"
    for rel, line, names, keywords, spread in sites:
        where = f"{rel}:{line}"
        if names is None:
            assert rel in DYNAMIC, f"{where}: a computed event class; list what it can be in DYNAMIC"
            assert DYNAMIC[rel] <= EVENTS.keys(), where
            continue
        for name in names:
            assert name in classes, f"{where}: {name!r} is not an event class (mediaserver/events.py)"
            cls = classes[name]
            assert keywords <= set(cls._names), f"{where}: {name} has no field(s) {keywords - set(cls._names)}"
            if not spread:
                missing = {n for n in cls._names if _required(cls, n)} - keywords
                assert not missing, f"{where}: {name} needs {missing}"


def _required(cls: type[events.CallEvent], name: str) -> bool:
    field = next(f for f in fields(cls) if f.name == name)  # type: ignore[arg-type]
    return field.default is MISSING and field.default_factory is MISSING


def test_registry_names_are_the_class_names() -> None:
    for name, cls in EVENTS.items():
        assert name == cls.EVENT
        assert cls.__name__ == "".join(part.title() for part in name.split("_")), name
    assert len(EVENTS) >= 78


def test_to_dict_is_the_json_entry_shape_and_leaves_out_omitted_fields() -> None:
    event = TurnEndpoint(caller_sample=48000, speech_end=40000, reason="silence", preemptive=False)
    assert event.to_dict(12.5) == {
        "ts": 12.5,
        "event": "turn_endpoint",
        "caller_sample": 48000,
        "speech_end": 40000,
        "reason": "silence",
        "preemptive": False,
    }
    assert list(event.to_dict(1.0)) == ["ts", "event", "caller_sample", "speech_end", "reason", "preemptive"]
    leg = CallStarted(direction="outbound", to="sip:b@x", codec="PCMU", origin="c1")
    assert leg.to_dict() == {
        "event": "call_started",
        "codec": "PCMU",
        "direction": "outbound",
        "to": "sip:b@x",
        "origin": "c1",
    }
    ended = CallEnded(cause=None, packets_in=3, packets_out=4)
    assert ended.to_dict() == {"event": "call_ended", "cause": None, "packets_in": 3, "packets_out": 4}
    with pytest.raises(AttributeError):
        ended.cause = "x"  # type: ignore[misc]  # frozen


def test_from_fields_refuses_unknown_names_and_fields() -> None:
    assert from_fields("dtmf", digit="5", source="rfc4733") == events.Dtmf(digit="5", source="rfc4733")
    with pytest.raises(InvalidEvent, match="unknown call event 'dtmf_pressed'"):
        from_fields("dtmf_pressed", digit="5")
    with pytest.raises(InvalidEvent, match="unexpected keyword argument 'via'"):
        from_fields("dtmf", digit="5", source="rfc4733", via="x")
    with pytest.raises(InvalidEvent, match="missing"):
        from_fields("dtmf", digit="5")


def test_record_is_validated_strict_in_tests_logged_and_dropped_otherwise(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = CallEventLog("c1")
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(InvalidEvent):
        log.record("no_such_event", x=1)
    monkeypatch.delenv(STRICT_ENV)
    with caplog.at_level(logging.ERROR, logger="mediaserver.call"):
        log.record("no_such_event", x=1)
    assert log.events == [] and "invalid call event" in caplog.text
    log.record("remote_hangup", reason="bye")
    assert log.events[0]["event"] == "remote_hangup" and log.events[0]["reason"] == "bye"


def test_call_events_go_on_the_bus_as_opt_in_kind_log() -> None:
    bus = EventBus()
    seen: list[BusEvent] = []
    bus.listen(seen.append, call_id="c1", kinds=[LOG])
    others: list[BusEvent] = []
    bus.listen(others.append)  # no kinds: every kind but the opt-in "log"
    everything = bus.subscribe()  # no kinds: every kind but "log"
    logs = bus.subscribe("c1", kinds=[LOG])
    log = CallEventLog("c1", bus=bus)
    typed = events.StateChanged(old="new", new="ringing", trigger="ring")
    log.emit(typed)
    bus.publish("c1", {"type": "insight"}, kind="sidecar")
    assert [e.kind for e in seen] == [LOG] and [e.kind for e in others] == ["sidecar"]
    assert seen[0].event is typed and seen[0].data is log.events[0]
    assert seen[0].data == {
        "ts": seen[0].data["ts"],
        "event": "state_changed",
        "old": "new",
        "new": "ringing",
        "trigger": "ring",
    }
    got = logs.get_nowait()
    assert got is not None and got.event is typed and logs.get_nowait() is None
    first = everything.get_nowait()
    assert first is not None and first.kind == "sidecar" and everything.get_nowait() is None


def test_a_user_event_also_reaches_streams_without_kinds() -> None:
    bus = EventBus()
    default, logs = bus.subscribe(), bus.subscribe(kinds=[LOG])
    log = CallEventLog("c1", bus=bus)
    log.emit(events.UserEvent(path="ai.SWAIG.action", user_event={"order": 42}))
    log.emit(events.StateChanged(old="new", new="ringing", trigger="ring"))

    def drain(sub: Subscription) -> list[BusEvent]:
        out = []
        while (event := sub.get_nowait()) is not None:
            out.append(event)
        return out

    assert [(e.kind, e.data["event"]) for e in drain(default)] == [("user_event", "user_event")]
    assert [e.data["event"] for e in drain(logs)] == ["user_event", "state_changed"]


def test_a_listener_that_closes_itself_and_one_that_raises_do_not_disturb_publish() -> None:
    bus = EventBus()
    got: list[int] = []

    def once(event: BusEvent) -> None:
        got.append(event.seq)
        listener.close()

    def broken(event: BusEvent) -> None:
        raise RuntimeError("bug")

    listener = bus.listen(once)
    bus.listen(broken)
    later: list[int] = []
    bus.listen(lambda e: later.append(e.seq))
    bus.publish("c", {"a": 1})
    bus.publish("c", {"a": 2})
    assert got == [1] and later == [1, 2]


def _entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_writer_loses_nothing_and_closes_the_file_at_call_end(tmp_path: Path) -> None:
    writer = CallLogWriter(tmp_path)
    bus = EventBus()
    bus.listen(lambda e: writer.write(e.call_id, e.data), kinds=[LOG])
    logs = {cid: CallEventLog(cid, bus=bus) for cid in ("a", "b/c")}
    for i in range(500):
        for log in logs.values():
            log.emit(events.TurnSpeechEnded(caller_sample=i))
    for log in logs.values():
        log.emit(CallEnded(cause="NORMAL", packets_in=1, packets_out=2))
    assert writer.flush(5)
    for cid, log in logs.items():
        path = writer.path(cid)
        assert path.name in ("a.jsonl", "b_c.jsonl")
        assert _entries(path) == [{"call_id": cid, **entry} for entry in log.events]  # all, in order
    logs["a"].emit(events.RemoteHangup(reason="late"))  # after call_ended: the file reopens for append
    writer.close()
    assert _entries(writer.path("a"))[-1]["event"] == "remote_hangup"
    assert writer.written == 1003 and writer.failed == 0


def test_record_never_waits_for_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = CallLogWriter(tmp_path)
    gate = threading.Event()
    real_open = Path.open

    def slow_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, *args, **kwargs)
        real_write = handle.write

        def write(text: str) -> int:
            gate.wait(5)  # the disk is stuck until the test lets it go
            return real_write(text)

        handle.write = write  # type: ignore[method-assign]
        return handle

    monkeypatch.setattr(Path, "open", slow_open)
    bus = EventBus()
    bus.listen(lambda e: writer.write(e.call_id, e.data), kinds=[LOG])
    log = CallEventLog("slow", bus=bus)
    started = time.perf_counter()
    for i in range(200):
        log.record("turn_speech_ended", caller_sample=i)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"record() waited for the file: {elapsed:.3f} s for 200 events"
    assert writer.written == 0  # nothing on disk yet: the writer is the one waiting
    gate.set()
    writer.close()
    assert len(_entries(writer.path("slow"))) == 200


async def test_kernel_call_log_is_a_bus_listener_written_off_the_loop(tmp_path: Path) -> None:
    """The app's wiring: `KernelServices(call_log_dir=…)` gives every leg's events a JSONL file."""

    services = KernelServices(synthesizer=None, blocking=None, call_log_dir=str(tmp_path))  # type: ignore[arg-type]
    kernel = Kernel(MediaTicker(MonotonicClock()), services, lambda user: tmp_path / "none.swml")
    assert kernel.call_log is not None
    log = CallEventLog("k1", bus=services.events)
    log.emit(events.RemoteHangup(reason="bye"))
    log.emit(CallEnded(cause="NORMAL", packets_in=0, packets_out=0))
    writer = kernel.call_log._thread
    assert writer is not None and writer is not threading.current_thread()
    await kernel.shutdown()  # closes the writer: everything is on disk
    assert not writer.is_alive()
    assert [e["event"] for e in _entries(tmp_path / "k1.jsonl")] == ["remote_hangup", "call_ended"]
