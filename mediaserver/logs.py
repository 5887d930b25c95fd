"""Structured logging: one JSON object per line, the call id on every line of a call.

Theory of operation: the call id lives in a context variable that each call's tasks set once;
asyncio copies context into tasks, so every log record made on behalf of a call carries it
without passing it around. `CallEventLog` is the per-call event record (SIP messages, verbs,
audio started/stopped), typed events of mediaserver/events.py: each event is kept in memory for
the HTTP API, logged as a JSON line and published to the kernel's event bus; `CallLogWriter`,
a bus listener, appends it to `<call_log_dir>/<call_id>.jsonl` from a writer thread.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from mediaserver.events import CallEvent, EventSink, InvalidEvent, from_fields

current_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_id", default=None)

STRICT_ENV = "MEDIASERVER_STRICT_EVENTS"  # set: an invalid `CallEventLog.record` raises (the tests)
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        call_id = getattr(record, "call_id", None) or current_call_id.get()
        if call_id:
            entry["call_id"] = call_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key != "call_id" and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str = "INFO", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiortc/aioice are chatty at INFO; their warnings still show.
    for noisy in ("aioice", "aiortc", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class CallEventLog:
    """Everything that happened on one call, in order, as typed events (mediaserver/events.py).

    `emit(event)` stamps the event with the wall time, keeps its JSON entry (`events`, the HTTP
    API's view, up to `limit`), logs it as a JSON line and publishes it to `bus` (the kernel's
    event bus, whose listeners are /metrics and the JSONL writer, and whose subscribers are
    /api/events and the call page). `record(name, **fields)` is the deprecated untyped path,
    kept for tests that replay JSON entries (the package emits typed events only, as
    tests/unit/test_events.py checks): it builds the typed event from the registry, so an
    unknown name or field is an error (raised when `MEDIASERVER_STRICT_EVENTS` is set, as the
    tests set it; logged and dropped otherwise, so that a typo cannot end a call).
    """

    def __init__(self, call_id: str, *, bus: EventSink | None = None, limit: int = 2000) -> None:
        self.call_id = call_id
        self.events: list[dict[str, Any]] = []
        self._limit = limit
        self._bus = bus
        self._logger = logging.getLogger("mediaserver.call")

    def emit(self, event: CallEvent, level: int | None = None) -> None:
        entry = event.to_dict(round(time.time(), 6))
        if len(self.events) < self._limit:
            self.events.append(entry)
        extra = {(k if k not in _RESERVED else f"{k}_"): v for k, v in entry.items() if k not in ("ts", "event")}
        self._logger.log(
            event.LEVEL if level is None else level,
            event.EVENT,
            extra={"call_id": self.call_id, "event": event.EVENT, **extra},
        )
        if self._bus is not None:
            self._bus.publish_call_event(self.call_id, event, entry)

    def record(self, event: str, level: int | None = None, **fields: Any) -> None:
        """Deprecated: `emit(TheEvent(**fields))`; validated against the registry (see the class doc)."""
        try:
            typed = from_fields(event, **fields)
        except InvalidEvent:
            if os.environ.get(STRICT_ENV):
                raise
            self._logger.exception("invalid call event", extra={"call_id": self.call_id, "event_name": event})
            return
        self.emit(typed, level)


class CallLogWriter:
    """Appends every call event to `<directory>/<call_id>.jsonl` from a writer thread.

    `write(call_id, entry)` runs on the event loop (an event-bus listener): it serialises the
    entry and enqueues the line, nothing more, so a slow disk never delays a call. The thread
    writes in arrival order, flushes whenever the queue runs dry and closes a call's file after
    its `call_ended` (a later event reopens it for append). `flush()` waits until everything
    written so far is on disk; `close()` does that and stops the thread (kernel shutdown).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._queue: queue.SimpleQueue[tuple[str, str, bool] | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.written = 0
        self.failed = 0

    def path(self, call_id: str) -> Path:
        return self.directory / f"{_safe_name(call_id)}.jsonl"

    def write(self, call_id: str, entry: dict[str, Any]) -> None:
        line = json.dumps({"call_id": call_id, **entry}, default=str) + "\n"
        self._start()
        self._queue.put((call_id, line, entry.get("event") == "call_ended"))

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every line written before this call is on disk; False on timeout."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout_s)

    def close(self, timeout_s: float | None = 5.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout_s)

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="call-log-writer", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        files: dict[str, TextIO] = {}
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                if isinstance(item, threading.Event):
                    for fh in files.values():
                        fh.flush()
                    item.set()
                    continue
                call_id, line, last = item
                try:
                    if call_id not in files:
                        files[call_id] = self.path(call_id).open("a")
                    fh = files[call_id]
                    fh.write(line)
                    self.written += 1
                    if last:
                        files.pop(call_id).close()
                    elif self._queue.empty():
                        fh.flush()
                except OSError:
                    self.failed += 1
                    if self.failed == 1:
                        logging.getLogger(__name__).exception("cannot write the call log", extra={"call_id": call_id})
        finally:
            for fh in files.values():
                fh.close()


def _safe_name(call_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in call_id)[:120]
