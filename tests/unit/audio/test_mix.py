"""Background layers under the playout: one frame per tick, loops, stop, saturation, end callback."""

from __future__ import annotations

import numpy as np

from mediaserver.audio.mix import BedMixer
from mediaserver.audio.playout import Playout


def ramp(n: int, start: int = 1) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.int16)


def test_a_layer_plays_once_then_ends_and_says_so() -> None:
    ended: list[str] = []
    mixer = BedMixer(on_end=ended.append)
    mixer.play("bg", ramp(5))
    silence = np.zeros(3, dtype=np.int16)
    assert mixer.mix(silence).tolist() == [1, 2, 3]
    assert mixer.mix(silence).tolist() == [4, 5, 0] and ended == ["bg"] and not mixer
    assert mixer.mix(silence).tolist() == [0, 0, 0]


def test_loops_and_forever_and_stop() -> None:
    mixer = BedMixer()
    mixer.play("twice", ramp(2), loops=2)
    mixer.play("music", ramp(3, 10), loops=None)
    silence = np.zeros(4, dtype=np.int16)
    assert mixer.mix(silence).tolist() == [11, 13, 13, 12]  # twice: 1 2 1 2; music: 10 11 12 10
    assert not mixer.playing("twice") and mixer.playing("music")
    assert mixer.mix(silence).tolist() == [11, 12, 10, 11]
    assert mixer.stop("music") and not mixer.stop("music") and not mixer


def test_sums_saturate_instead_of_wrapping() -> None:
    mixer = BedMixer()
    mixer.play("loud", np.full(2, 30000, dtype=np.int16))
    assert mixer.mix(np.full(2, 30000, dtype=np.int16)).tolist() == [32767, 32767]


def test_the_playout_mixes_the_bed_under_speech_and_silence_without_moving_the_cursor() -> None:
    playout = Playout(8000, 4)
    playout.bed = BedMixer()
    playout.bed.play("bg", np.full(12, 100, dtype=np.int16))
    playout.enqueue(np.full(4, 1000, dtype=np.int16))
    speech = playout.next_frame()
    assert speech.pcm.tolist() == [1100] * 4 and speech.speech
    gap = playout.next_frame()
    assert gap.pcm.tolist() == [100] * 4 and not gap.speech
    assert playout.played_samples == 4  # the bed never counts as played agent audio
    playout.enqueue(np.full(4, 1000, dtype=np.int16))
    playout.pause()
    assert playout.next_frame().pcm.tolist() == [100] * 4  # a paused reply: the bed goes on
