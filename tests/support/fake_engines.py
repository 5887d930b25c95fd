"""Engines for the worker-process tests (tests/unit/pipeline/test_engine_process.py): importable
by a spawned child, each a factory taking its options."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any


class Counter:
    """`count(n)` yields 0..n-1; `fail()` raises; `die()` ends the process without a word."""

    sample_rate = 8000
    voice_id = "counter"

    def synthesize(self, text: str) -> Iterator[int]:
        yield from range(int(text))

    def fail(self) -> None:
        raise ValueError("no such thing")

    def die(self) -> None:
        os._exit(3)

    def echo(self, value: Any) -> Any:
        return value


def counter(options: Any) -> Counter:
    return Counter()


def broken(options: Any) -> Counter:
    raise FileNotFoundError(f"no model at {options}")
