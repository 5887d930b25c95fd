"""The harness itself: the time bound fails an input that is slow every time, not a one-off stall."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.support import DEADLINE_S, budget

STALL_S = DEADLINE_S * 0.1 * 1.5  # over the bound of budget(..., deadline_factor=0.1)


def test_an_input_slow_every_time_fails() -> None:
    @budget(1, deadline_factor=0.1)
    @given(st.just(0))
    def slow(_: int) -> None:
        time.sleep(STALL_S)

    with pytest.raises(AssertionError, match="bound"):
        slow()


def test_a_one_off_stall_passes() -> None:
    runs: list[int] = []

    @budget(1, deadline_factor=0.1)
    @given(st.just(0))
    def stalls_once(_: int) -> None:
        runs.append(1)
        if len(runs) == 1:
            time.sleep(STALL_S)

    stalls_once()
    assert len(runs) >= 2  # it was run again, and passed
