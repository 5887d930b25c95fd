from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.server import ServerProcess

# An untyped or misspelt call event raises in the tests (and in the servers they start), instead
# of being logged and dropped as in production (mediaserver/logs.py CallEventLog.record).
os.environ.setdefault("MEDIASERVER_STRICT_EVENTS", "1")


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    """One real `mediaserver serve` process for the whole session (the voice loads once)."""
    proc = ServerProcess().start()
    try:
        yield proc
    finally:
        proc.stop()
