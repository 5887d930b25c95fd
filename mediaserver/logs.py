"""Structured logging: one JSON object per line, the call id on every line of a call.

Theory of operation: the call id lives in a context variable that each call's tasks set once;
asyncio copies context into tasks, so every log record made on behalf of a call carries it
without passing it around. `CallEventLog` is the per-call event record (SIP messages, verbs,
audio started/stopped), typed events of mediaserver/events.py: each event is kept in memory for
the HTTP API, logged as a JSON line and published to the kernel's event bus; `CallLogWriter`,
a bus listener, appends it to `<call_log_dir>/<call_id>.jsonl` from a writer thread.

Secrets never reach the log output: `RedactSecrets`, a filter on the one handler, masks in
every record's message, fields (nested dicts and lists too) and traceback the password of
`scheme://user:password@host` URLs, `Authorization` / `Proxy-Authorization` credentials (Basic,
Bearer, a digest's `response=`), query parameters named like tokens, passwords, secrets, keys
or signatures (`?token=`, `?__token=`, `api_key=`…), `password=` / `"secret": …` pairs, and the
value of any field whose name is one of `SECRET_FIELDS`; `JsonFormatter` applies the same
`redact` to the finished line, so a handler without the filter leaks nothing either. The code
also keeps secrets out of records in the first place (`public_url`): this is the safety net.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import queue
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from mediaserver.events import CallEvent, EventSink, InvalidEvent, from_fields

current_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_id", default=None)

STRICT_ENV = "MEDIASERVER_STRICT_EVENTS"  # set: an invalid `CallEventLog.record` raises (the tests)
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


MASK = "***"
SECRET_FIELDS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "proxy-authorization",
        "proxy_authorization",
        "credential",
        "credentials",
        "signing_key",
        "access_token",
        "auth_token",
        "client_secret",
        "bearer",
    }
)
_SECRET_NAME = r"[A-Za-z0-9_.-]*(?:token|password|passwd|secret|api_?key|signature|credential)[A-Za-z0-9_.-]*"
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host -> scheme://user:***@host (the user stays: it says which account)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/?#@:\"']*):[^\s/?#@\"']*@"), rf"\1:{MASK}@"),
    # Authorization: Basic|Bearer <token68> (as a header line, a dict entry or a JSON field)
    (
        re.compile(
            r"(?i)(\b(?:proxy-)?authorization\\?[\"']?\s*[:=]\s*\\?[\"']?\s*(?:basic|bearer)\s+)[A-Za-z0-9._~+/=-]+"
        ),
        rf"\1{MASK}",
    ),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/-]{16,}=*"), rf"\1 {MASK}"),  # a bare long credential
    # a digest answer: the response hash can be brute-forced offline to the password
    (re.compile(r"(?i)(\bresponse\s*=\s*\\?\"?)[0-9a-f]{16,}"), rf"\1{MASK}"),
    # ?token=… &__token=… &api_key=… &password=… &signature=…
    (re.compile(rf"(?i)([?&;]{_SECRET_NAME}=)[^&\s\"'#<>]+"), rf"\1{MASK}"),
    # password=… / "secret": "…" / 'token': '…' as text
    (
        re.compile(
            r"(?i)(\b(?:password|passwd|secret|token|api_?key|client_secret|signing_key|access_token|auth_token)"
            r"\\?[\"']?\s*[:=]\s*\\?[\"']?)(?!\*\*\*)[^\s\"'\\,&}]+"
        ),
        rf"\1{MASK}",
    ),
)


def redact(text: str) -> str:
    """`text` with credentials masked (see the module doc); text without any is returned as is."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any, name: str = "", depth: int = 0) -> Any:
    """A log field's value with secrets masked: the whole value under a secret field name,
    the credentials inside strings, dicts and lists elsewhere (to a bounded depth)."""
    if name.lower() in SECRET_FIELDS and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return redact(value)
    if depth < 6 and isinstance(value, dict):
        return {k: redact_value(v, str(k), depth + 1) for k, v in value.items()}
    if depth < 6 and isinstance(value, list | tuple):
        return type(value)(redact_value(v, "", depth + 1) for v in value)
    return value


class RedactSecrets(logging.Filter):
    """Masks credentials in a record's message, fields and traceback (installed on the handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself when it formats
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        for key, value in list(record.__dict__.items()):
            if key not in _RESERVED and not key.startswith("_") and key != "call_id":
                record.__dict__[key] = redact_value(value, key)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


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
        if record.exc_text:
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


def setup_logging(level: str = "INFO", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets())
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
