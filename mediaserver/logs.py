"""Structured logging: one JSON object per line, the call id on every line of a call.

Theory of operation: the call id lives in a context variable that each call's tasks set once;
asyncio copies context into tasks, so every log record made on behalf of a call carries it
without passing it around. `CallEventLog` is the per-call event record (SIP messages, verbs,
audio started/stopped): each event is kept in memory for the HTTP API, logged as a JSON line,
and optionally appended to `<call_log_dir>/<call_id>.jsonl`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

current_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_id", default=None)

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
    """Everything that happened on one call, in order, with monotonic and wall times."""

    # Process-wide subscribers to every call's events, `(call_id, entry)` (the /metrics histograms).
    observers: ClassVar[list[Callable[[str, dict[str, Any]], None]]] = []

    def __init__(self, call_id: str, directory: str = "", limit: int = 2000) -> None:
        self.call_id = call_id
        self.events: list[dict[str, Any]] = []
        self._limit = limit
        self._logger = logging.getLogger("mediaserver.call")
        self._path = Path(directory) / f"{_safe_name(call_id)}.jsonl" if directory else None
        if self._path:
            self._path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        entry = {"ts": round(time.time(), 6), "event": event, **fields}
        if len(self.events) < self._limit:
            self.events.append(entry)
        extra = {(k if k not in _RESERVED else f"{k}_"): v for k, v in fields.items()}
        self._logger.log(level, event, extra={"call_id": self.call_id, "event": event, **extra})
        if self._path:
            with self._path.open("a") as fh:
                fh.write(json.dumps({"call_id": self.call_id, **entry}, default=str) + "\n")
        for observer in CallEventLog.observers:
            try:
                observer(self.call_id, entry)
            except Exception:  # an observer's bug must not break the call that logged the event
                self._logger.exception("call event observer failed", extra={"call_id": self.call_id})


def _safe_name(call_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in call_id)[:120]
