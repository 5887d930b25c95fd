"""Playout pause/resume: the queue and the exact sample position survive a pause."""

from __future__ import annotations

import numpy as np

from mediaserver.audio.playout import Playout


def test_pause_sends_silence_and_resume_continues_from_the_exact_sample() -> None:
    playout = Playout(8000, 160)
    ramp = (np.arange(1000) % 30000).astype(np.int16)
    playout.enqueue(ramp)
    first = playout.next_frame()
    assert first.speech and first.pcm[0] == 0 and playout.played_samples == 160
    playout.pause()
    for _ in range(5):
        frame = playout.next_frame()
        assert not frame.speech and not frame.pcm.any()
    assert playout.played_samples == 160 and playout.queued_samples == 840 and playout.paused
    playout.resume()
    frame = playout.next_frame()
    assert frame.speech and frame.talkspurt_start  # a new talkspurt: RTP marker after the gap
    assert list(frame.pcm) == list(ramp[160:320])
    assert playout.played_samples == 320


def test_pause_inside_a_chunk_resumes_at_its_offset_and_clear_ends_the_pause() -> None:
    playout = Playout(8000, 160)
    playout.enqueue(np.full(100, 1, dtype=np.int16))
    playout.enqueue(np.full(300, 2, dtype=np.int16))
    playout.next_frame()  # 100 ones + 60 twos
    playout.pause()
    playout.next_frame()
    playout.resume()
    frame = playout.next_frame()
    assert list(frame.pcm) == [2] * 160 and playout.played_samples == 320
    playout.pause()
    assert playout.clear() == 80 and not playout.paused
    assert not playout.next_frame().speech
