from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaserver.audio.frame import Pcm
from mediaserver.audio.playout import Playout

FS = 160


def ramp(start: int, n: int) -> Pcm:
    return np.arange(start, start + n, dtype=np.int16)


def test_empty_queue_gives_silence() -> None:
    p = Playout(8000, FS)
    frame = p.next_frame()
    assert frame.pcm.shape == (FS,) and not frame.pcm.any()
    assert (frame.speech, frame.talkspurt_start, p.played_samples, p.idle) == (False, False, 0, True)
    assert not frame.pcm.flags.writeable


def test_queue_plays_in_frames_with_tail_padding_and_marks() -> None:
    p = Playout(8000, FS)
    mark = p.enqueue(ramp(0, 400))
    assert (mark, p.queued_samples, p.idle) == (400, 400, False)
    frames = [p.next_frame() for _ in range(4)]
    assert [(f.speech, f.talkspurt_start) for f in frames] == [
        (True, True),
        (True, False),
        (True, False),
        (False, False),
    ]
    assert np.array_equal(frames[0].pcm, ramp(0, 160))
    assert np.array_equal(frames[1].pcm, ramp(160, 160))
    assert np.array_equal(frames[2].pcm[:80], ramp(320, 80)) and not frames[2].pcm[80:].any()
    assert all(f.pcm.shape == (FS,) for f in frames)
    assert (p.played_samples, p.queued_samples) == (400, 0)
    assert p.reached(mark) and not p.reached(401)


def test_marks_progress_frame_by_frame() -> None:
    p = Playout(8000, FS)
    first = p.enqueue(ramp(0, 200))
    second = p.enqueue(ramp(200, 200))
    assert (first, second, p.end_mark) == (200, 400, 400)
    p.next_frame()
    assert not p.reached(first)
    p.next_frame()
    assert p.reached(first) and not p.reached(second)


def test_frame_spanning_chunks_is_assembled_in_order() -> None:
    p = Playout(8000, FS)
    for start in (0, 100, 200):
        p.enqueue(ramp(start, 100))
    assert np.array_equal(p.next_frame().pcm, ramp(0, 160))
    assert np.array_equal(p.next_frame().pcm, np.concatenate([ramp(160, 140), np.zeros(20, np.int16)]))
    assert p.played_samples == 300


def test_talkspurt_starts_after_silence() -> None:
    p = Playout(8000, FS)
    p.enqueue(ramp(0, 160))
    assert p.next_frame().talkspurt_start
    p.enqueue(ramp(0, 160))  # queued before the queue ran dry: same talkspurt
    assert not p.next_frame().talkspurt_start
    assert not p.next_frame().speech
    p.enqueue(ramp(0, 160))
    assert p.next_frame().talkspurt_start


def test_clear_drops_the_queue_but_keeps_the_cursor() -> None:
    p = Playout(8000, FS)
    old_mark = p.enqueue(ramp(0, 1000))
    p.next_frame()
    assert p.clear() == 840
    assert (p.played_samples, p.queued_samples, p.idle) == (160, 0, True)
    assert not p.next_frame().speech
    assert p.enqueue(ramp(0, 100)) == 260  # positions continue from the cursor
    assert not p.reached(old_mark)
    assert p.next_frame().talkspurt_start


def test_enqueue_copies_the_input() -> None:
    p = Playout(8000, FS)
    pcm = ramp(0, 320)
    p.enqueue(pcm)
    pcm[:] = 0
    frame = p.next_frame()
    assert np.array_equal(frame.pcm, ramp(0, 160))
    assert not frame.pcm.flags.writeable


def test_enqueue_checks_and_ignores_empty_audio() -> None:
    p = Playout(8000, FS)
    assert p.enqueue(np.zeros(0, np.int16)) == 0 and p.idle
    with pytest.raises(ValueError, match="int16"):
        p.enqueue(np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="> 0"):
        Playout(8000, 0)


@given(st.lists(st.integers(0, 700), max_size=12), st.sampled_from([80, 160, 320]))
def test_everything_queued_comes_out_in_order(sizes: list[int], frame_samples: int) -> None:
    p = Playout(16000, frame_samples)
    chunks = []
    pos = 0
    marks = []
    for n in sizes:
        chunks.append(ramp(pos % 30000, n) if n else np.zeros(0, np.int16))
        pos += n
        marks.append(p.enqueue(chunks[-1]))
    total = sum(sizes)
    assert marks == list(np.cumsum(sizes)) if sizes else marks == []
    out = []
    while not p.idle:
        before = p.played_samples
        frame = p.next_frame()
        assert frame.pcm.shape == (frame_samples,) and frame.speech
        out.append(frame.pcm[: p.played_samples - before])
    assert p.played_samples == total
    expected = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    got = np.concatenate(out) if out else np.zeros(0, np.int16)
    assert np.array_equal(got, expected)
    assert len(out) == -(-total // frame_samples)
