"""benchmarks/llm_request_cost: both clients really stream from the scripted server, and the summary."""

from __future__ import annotations

from benchmarks.llm_request_cost import measure, summarize


async def test_both_clients_complete_their_requests_and_each_first_step_costs_some_cpu() -> None:
    costs = await measure(2)
    assert [len(costs["engine"]), len(costs["openai_sdk"])] == [2, 2]
    assert all(c > 0 for c in costs["engine"] + costs["openai_sdk"])


def test_summary_reports_the_median_the_max_and_the_ratio_of_medians() -> None:
    s = summarize({"engine": [0.3, 0.5, 0.4], "openai_sdk": [1.2, 1.0, 1.4]})
    assert s["engine"] == {"n": 3, "p50_ms": 0.4, "max_ms": 0.5}
    assert s["openai_sdk"]["p50_ms"] == 1.2
    assert s["sdk_over_engine_p50"] == 3.0
