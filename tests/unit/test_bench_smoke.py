"""Smoke size of benchmarks/media: the runner works and its numbers are sane (never a time bound)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from benchmarks import media


def test_codec_costs_cover_every_codec() -> None:
    costs = media.codec_costs(rounds=1)
    for name, _ in media.CODECS:
        for op in ("encode", "decode"):
            assert costs[f"{name}.{op}"]["median_us"] > 0
    assert costs["jitter.push+pop"]["median_us"] > 0


def test_pacing_run_sends_every_frame_of_every_call() -> None:
    result = asyncio.run(media.pacing(calls=3, seconds=0.4))
    assert result["calls"] == 3 and result["ticks"] >= 15
    # Every tick sends one packet per call (the sink may also see the first RTCP reports).
    assert result["packets_received_by_sink"] >= 3 * result["ticks"] - 3
    assert result["deviation_ms_p50"] is not None and result["deviation_ms_p50"] >= 0


def test_main_writes_json_and_png(tmp_path: Path) -> None:
    assert media.main(["--seconds", "0.3", "--calls", "2", "--rounds", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "media.json").read_text())
    assert result["benchmark"] == "media" and len(result["pacing"]) == 1
    assert (tmp_path / "media.png").stat().st_size > 10_000
