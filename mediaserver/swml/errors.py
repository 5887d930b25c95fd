"""Errors of the SWML layer, in one leaf module so every other swml module can raise them.

Theory of operation: a bad document is the remote party's mistake (whoever served the SWML),
so `SwmlError` carries the JSON path of the offending value and the boundary (executor, HTTP
API) turns it into a log line with the call id and a clean hangup. `SwmlLoopError` is the step
budget running out (a runaway `goto`/`execute` loop). `SwmlStateError` is our own misuse of the
interpreter API (resuming a finished script) and so is a programming error, not a document one.
"""

from __future__ import annotations


class SwmlError(Exception):
    """A document is invalid, or cannot be run; `path` is like `sections.main[3].play.urls[1]`."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        # An empty path means the document as a whole (unparsable text, not an object).
        return f"{self.path}: {self.message}" if self.path else self.message


class SwmlLoopError(SwmlError):
    """The interpreter took `step_budget` control steps without producing an effect."""


class SwmlStateError(RuntimeError):
    """The interpreter was driven out of order (resume before start, resume after the end)."""
