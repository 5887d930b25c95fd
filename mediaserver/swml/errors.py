"""Errors of the SWML layer, in one leaf module so every other swml module can raise them.

Theory of operation: a bad document is the remote party's mistake (whoever served the SWML),
so `SwmlError` carries the JSON path of the offending value and the boundary (executor, HTTP
API) turns it into a log line with the call id and a clean hangup. `SwmlLoopError` is the step
budget running out (a runaway `goto`/`execute` loop). `SwmlStateError` is our own misuse of the
interpreter API (resuming a finished script) and so is a programming error, not a document one.
`SwmlErrors` is every problem one load found (`mediaserver validate` prints them all); it is a
`SwmlError` whose own path and message are the first one's, so a boundary that logs one line
still names a path.
"""

from __future__ import annotations

from collections.abc import Iterable


class SwmlError(Exception):
    """A document is invalid, or cannot be run; `path` is like `sections.main[3].play.urls[1]`."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        # An empty path means the document as a whole (unparsable text, not an object).
        return f"{self.path}: {self.message}" if self.path else self.message


class SwmlErrors(SwmlError):
    """Several document errors from one load, in document order (nested groups flattened)."""

    def __init__(self, errors: Iterable[SwmlError]) -> None:
        flat: list[SwmlError] = []
        for error in errors:
            flat.extend(error.errors if isinstance(error, SwmlErrors) else [error])
        if not flat:
            raise ValueError("SwmlErrors needs at least one error")
        super().__init__(flat[0].path, flat[0].message)
        self.errors: list[SwmlError] = flat

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def raise_all(errors: list[SwmlError]) -> None:
    """Raise nothing, the one error, or `SwmlErrors` of them all."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SwmlErrors(errors)


class SwmlLoopError(SwmlError):
    """The interpreter took `step_budget` control steps without producing an effect."""


class SwmlStateError(RuntimeError):
    """The interpreter was driven out of order (resume before start, resume after the end)."""
