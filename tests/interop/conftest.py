"""Fixtures for tests that talk to real SIP peers (Debian baresip) over loopback."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.baresip import Baresip, require_baresip


class BaresipFactory:
    """``factory(name, **Baresip kwargs) -> started Baresip`` with its workdir under the test's tmp_path.

    Every instance is stopped when the test ends; when the test fails, each instance's log is
    attached to the failure report (section "baresip <name> log").
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.instances: list[Baresip] = []

    def __call__(self, name: str, **kwargs: Any) -> Baresip:
        kwargs.setdefault("workdir", self.base / f"baresip-{len(self.instances)}-{name}")
        peer = Baresip(name, **kwargs)
        self.instances.append(peer)
        return peer.start()

    def stop_all(self) -> None:
        for peer in reversed(self.instances):
            peer.stop()


@pytest.fixture
def baresip_factory(tmp_path: Path) -> Iterator[BaresipFactory]:
    require_baresip()
    factory = BaresipFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        factory = getattr(item, "funcargs", {}).get("baresip_factory")
        if isinstance(factory, BaresipFactory):
            for peer in factory.instances:
                text = peer.log_text
                if len(text) > 20000:
                    text = "[... earlier output cut ...]\n" + text[-20000:]
                report.sections.append((f"baresip {peer.name} log ({peer.log_path})", text))
    return report
