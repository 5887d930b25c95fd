"""Smoke size of benchmarks/asr: the runner works and its numbers are sane (never a time bound)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import asr


@pytest.mark.slow
def test_asr_benchmark_writes_every_measurement(tmp_path: Path) -> None:
    assert asr.main(["--rounds", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "asr.json").read_text())
    latency = result["asr"]["latency_ms"]
    assert set(latency) == {"1s.window_10s", "1s.stock_30s", "3s.window_10s", "3s.stock_30s"}
    assert all(v["median"] > 0 for v in latency.values())
    assert result["asr"]["word_recall"]["window_10s"] >= 0.8
    assert result["vad"]["webrtc_us_per_frame"]["median"] > 0
    assert result["vad"]["silero_us_per_frame"]["median"] > 0
    assert result["tts"]["first_clause_text"] == "Sure,"
    assert result["tts"]["word_end_error_vs_whisper_ms"]["n"] >= 20
