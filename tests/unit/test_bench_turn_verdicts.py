"""benchmarks/turn_verdicts: the speech span it judges, and its separability summary (no models)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from benchmarks.turn_verdicts import auc, heard, summarize
from benchmarks.turns import make_paused, make_whole


def test_auc_is_one_when_whole_sentences_score_higher_half_on_ties_and_none_without_a_side() -> None:
    assert auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auc([0.1], [0.9]) == 0.0
    assert auc([0.5], [0.5]) == 0.5
    assert auc([], [0.5]) is None


def test_summary_counts_text_signals_per_kind_and_voice() -> None:
    rows = [
        {"kind": "whole", "voice": "a", "text_signal": 1, "model": {"250": 0.9, "500": 0.9}},
        {"kind": "paused", "voice": "a", "text_signal": -1, "model": {"250": 0.95, "500": 0.2}},
        {"kind": "paused", "voice": "b", "text_signal": 0, "model": {"250": 0.1, "500": 0.1}},
    ]
    s = summarize(rows)
    assert s["a"]["model_auc"] == {"250ms": 0.0, "500ms": 1.0}
    assert s["b"]["model_auc"]["250ms"] is None  # no whole sentence in that voice
    assert s["all"]["n"] == {"whole": 1, "paused": 2}
    assert s["all"]["text_signal"]["paused"] == {"1": 0, "0": 1, "-1": 1}


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_the_judged_speech_ends_where_the_inserted_pause_begins() -> None:
    u = make_paused("I would like to speak with", "someone in billing.", "en-us", 1.0)
    pcm, onset, end = heard(u)
    pause_at = round(u.meta["cut_at_s"] * 16000)
    assert 0 <= pause_at - end < 16000 * 0.2  # the last loud frame is just before the pause
    assert not np.any(np.abs(pcm[end + 320 : end + 16000 * 8 // 10].astype(np.int32)) > 300)  # then silence
    whole = make_whole("What time do you close today?", "en-us")
    pcm, onset, end = heard(whole)
    assert 0 <= onset < end <= len(pcm) and np.abs(pcm[end - 320 : end].astype(np.int32)).max() > 300
