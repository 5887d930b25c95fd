"""Smoke size of benchmarks/floods: three live calls, a short REGISTER/OPTIONS and garbage flood.

Asserts real facts, not timing: a flood far beyond the shipped per-source limit (20/s, burst 40)
is mostly answered 503, requests within the limit are served, garbage gets no SIP answer, and
no live call is dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import floods


def test_floods_smoke_answers_an_over_limit_flood_with_503(tmp_path: Path) -> None:
    argv = ["--live-calls", "3", "--seconds", "3", "--rate", "500", "--phases", "register_options,garbage"]
    assert floods.main([*argv, "--name", "smoke", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "smoke.json").read_text())
    assert result["benchmark"] == "floods" and result["commit"]
    register, garbage = result["phases"]
    assert register["phase"] == "register_options" and garbage["phase"] == "garbage"
    flood = register["flood"]
    assert flood["sent"] > 500 and flood["source"] == "127.0.0.2"
    # 1500 requests in 3 s from one source: beyond the burst and the refill, 503 + Retry-After.
    assert flood["final_status"].get("503", 0) > 0 and flood["share_503"] > 0.3
    # Within the limit, requests are served: OPTIONS 200, REGISTER with no registrar 405.
    assert set(flood["final_status"]) - {"503"}
    assert garbage["flood"]["sent"] > 500 and garbage["flood"]["answered_final"] == 0
    for phase in result["phases"]:
        assert phase["live_calls"] == 3 and phase["dropped_live_calls"] == 0
        assert phase["live_calls_wire"]["calls"] == 3 and phase["live_calls_wire"]["packets"] > 0
    assert set(result["goal"]) == {"register_options", "garbage"}
    assert (tmp_path / "smoke.png").stat().st_size > 10_000
