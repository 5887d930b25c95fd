from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import ServerProcess


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    """One real `mediaserver serve` process for the whole session (the voice loads once)."""
    proc = ServerProcess().start()
    try:
        yield proc
    finally:
        proc.stop()
