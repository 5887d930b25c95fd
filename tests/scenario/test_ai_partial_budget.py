"""Partial ASR passes are capped by the load (`PartialBudget`, shared by every call); finals never are.

A caller speaks for 3 s (partials every 400 ms over the greeting, 700 ms after it) with a fake
recognizer that counts its passes; the budget's clock is a manual one, so the number of passes allowed is exact.
"""

from __future__ import annotations

import pytest

from mediaserver.clock import NS_PER_S, ManualClock
from mediaserver.pipeline.asr import PartialBudget
from tests.scenario.ai_fakes import Scenario, ScriptedLlm, tone

CALLER_HZ = 500
ASKED = "where is my parcel"


async def _speak(budget: PartialBudget) -> Scenario:
    s = Scenario(
        {"prompt": {"text": "You are a test."}}, llm=ScriptedLlm(["It ships today."]), phrases={CALLER_HZ: ASKED}
    )
    s.engines.partial_budget = budget
    await s.start()
    await s.play(ticks=10)
    await s.play(tone(CALLER_HZ, 3000), ticks=100)
    await s.finish()
    return s


async def test_without_a_cap_every_partial_runs_and_with_one_the_final_still_does() -> None:
    free = await _speak(PartialBudget(ManualClock()))  # per_s 0: no rate cap
    capped_budget = PartialBudget(ManualClock(), per_s=1.0, burst=1)  # the clock never moves: one pass
    capped = await _speak(capped_budget)

    assert free.engines.partial_budget.started >= 5 and free.engines.partial_budget.skipped == 0
    assert capped_budget.started == 1
    # The rest refused (not the same count: in the free run the partials' text feeds the
    # speech-event timer, which ends the 3 s tone early and changes what follows).
    assert capped_budget.skipped >= 3
    assert capped.asr.calls == capped_budget.started + len(capped.events("turn_asr_final"))  # one partial, the final
    for s in (free, capped):  # the final is never skipped: the turn is heard and answered the same
        finals = [e["text"] for e in s.events("turn_asr_final")]
        assert finals and set(finals) == {ASKED}
        assert s.llm.requests[-1][-1] == {"role": "user", "content": ASKED}


def test_the_budget_refills_with_time_and_bounds_passes_in_flight() -> None:
    clock = ManualClock()
    budget = PartialBudget(clock, per_s=2.0, burst=2, max_in_flight=2)
    assert budget.try_start() and budget.try_start()
    assert not budget.try_start()  # two in flight, and no token left
    budget.done()
    budget.done()
    assert not budget.try_start()  # none in flight, still no token
    clock.advance(NS_PER_S // 2)  # 0.5 s at 2 a second: one pass
    assert budget.try_start() and not budget.try_start()
    budget.done()
    clock.advance(10 * NS_PER_S)  # a long quiet spell saves at most `burst`
    assert budget.try_start() and budget.try_start() and not budget.try_start()
    assert (budget.started, budget.skipped) == (5, 4)


def test_in_flight_cap_alone_without_a_rate() -> None:
    budget = PartialBudget(ManualClock(), max_in_flight=1)
    assert budget.try_start() and not budget.try_start()
    budget.done()
    assert budget.try_start()
    with pytest.raises(ValueError):
        PartialBudget(ManualClock(), per_s=-1)
