"""Progress bars for benchmark runs: a thin wrapper over tqdm, on stderr so the JSON on stdout stays clean.

Bars show when stderr is a terminal; `MS_PROGRESS=1` forces them on (a log file, a test),
`MS_PROGRESS=0` turns them off. Use it as an iterable wrapper or as a bar you update:

    for level in progress(levels, desc="levels"):
        ...
    with progress(total=n, desc="calls") as bar:
        bar.update(1)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def _disabled() -> bool | None:
    """tqdm's `disable`: None means 'only on a terminal'."""
    forced = os.environ.get("MS_PROGRESS", "").strip()
    if forced in ("1", "true", "yes", "on"):
        return False
    if forced in ("0", "false", "no", "off"):
        return True
    return None


def progress(
    iterable: Iterable[T] | None = None, *, desc: str = "", total: float | None = None, unit: str = "it"
) -> Any:
    """A tqdm bar over `iterable` (or a bar to `update()` when there is none), on stderr."""
    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        file=sys.stderr,
        disable=_disabled(),
        dynamic_ncols=True,
        leave=True,  # the finished bar stays: a log of the run shows what ran
    )


def seconds(duration_s: float, *, desc: str) -> Any:
    """A bar counting the seconds of a timed phase (a hold, a soak): call `update(dt)` as time passes."""
    return progress(total=round(duration_s, 1), desc=desc, unit="s")
