"""The outbound audio queue and its played-sample cursor (docs/design.md §4).

Theory of operation
-------------------
Inputs: `enqueue(pcm)` with mono int16 audio of any length (TTS chunks, prompts), and
`next_frame()` once per pacer frame. Output: a `PlayoutFrame` of exactly `frame_samples`
samples every call: queued audio (the last partial frame of the queue is zero-padded at its
tail) or silence when the queue is empty.

Positions are counted in queued samples only: `played_samples` is how many queued samples have
left in frames (silence between utterances and tail padding do not count), `queued_samples` how
many wait. `enqueue` returns a mark, `played_samples + queued_samples` after the append: the
position of the end of that audio, so `reached(mark)` (`played_samples >= mark`) says the audio
has been handed to the wire in full. Word offsets from TTS are added to the mark of their chunk's
start to decide what the caller heard (docs/design.md §4, "Heard text").

`clear()` (barge-in) drops everything queued, leaves `played_samples` alone and returns the
number of samples dropped. Positions then continue from `played_samples`, so marks handed out
before a `clear()` for audio it dropped are void and must be discarded by the caller.

`talkspurt_start` is True on the first frame of queued audio after a silent frame, and on the
very first frame of audio: the caller sets the RTP marker bit there. `speech` is True on every
frame carrying queued audio.

`pause()` (a barge-in being confirmed) makes `next_frame()` return silence without taking
anything from the queue: the queue, the offset into its first chunk and `played_samples` stay
exactly where they were, so `resume()` continues from the very sample that would have gone
next (reversible barge-in, docs/design.md §4); the first frame after a resume starts a new talkspurt.
`clear()` also ends a pause. Word positions: a word that ends `k` samples into audio enqueued
when `end_mark` was `m` has left on the wire once `reached(m + k)`.

Cost per frame is O(1) in the queue length: chunks sit in a deque with an offset into the
first one; a frame that lies inside one chunk is a read-only view, not a copy, and the queue is
never concatenated as a whole.

`bed` (optional, `audio/mix.py`) is mixed into every frame handed out, speech or silence, paused
or not: background audio under the agent at the played cursor. It never counts in
`played_samples`, and a frame with only the bed in it is not `speech`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from mediaserver.audio.frame import Pcm
from mediaserver.audio.mix import BedMixer


@dataclass(frozen=True, slots=True)
class PlayoutFrame:
    pcm: Pcm  # exactly frame_samples samples, read-only
    talkspurt_start: bool
    speech: bool


class Playout:
    def __init__(self, sample_rate: int, frame_samples: int) -> None:
        if sample_rate <= 0 or frame_samples <= 0:
            raise ValueError(f"sample_rate and frame_samples must be > 0: {sample_rate}, {frame_samples}")
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self._chunks: deque[Pcm] = deque()
        self._offset = 0  # samples of _chunks[0] already played
        self._queued = 0
        self._played = 0
        self._previous_silent = True
        self._paused = False
        silence = np.zeros(frame_samples, dtype=np.int16)
        silence.flags.writeable = False
        self._silence = silence
        self.bed: BedMixer | None = None  # background layers mixed under every frame

    @property
    def played_samples(self) -> int:
        return self._played

    @property
    def queued_samples(self) -> int:
        return self._queued

    @property
    def end_mark(self) -> int:
        """The mark of the end of everything queued so far."""
        return self._played + self._queued

    @property
    def idle(self) -> bool:
        return self._queued == 0

    def enqueue(self, pcm: Pcm) -> int:
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"Playout needs mono int16 PCM, got {pcm.dtype} shape {pcm.shape}")
        if pcm.shape[0]:
            # Our own read-only copy: the caller may reuse its buffer, and frames we hand out
            # as views must not change under the RTP sender.
            chunk = pcm.copy()
            chunk.flags.writeable = False
            self._chunks.append(chunk)
            self._queued += int(chunk.shape[0])
        return self.end_mark

    @property
    def silence(self) -> Pcm:
        """The read-only frame of silence `next_frame` hands out while nothing plays (the same
        object every time, so a sender can reuse its encoding)."""
        return self._silence

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Hold the queue where it is; frames are silence until `resume()` or `clear()`."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def reached(self, mark: int) -> bool:
        return self._played >= mark

    def clear(self) -> int:
        dropped = self._queued
        self._chunks.clear()
        self._offset = 0
        self._queued = 0
        self._paused = False
        return dropped

    def next_frame(self) -> PlayoutFrame:
        frame = self._next_frame()
        if self.bed:
            return PlayoutFrame(self.bed.mix(frame.pcm), frame.talkspurt_start, frame.speech)
        return frame

    def _next_frame(self) -> PlayoutFrame:
        if self._queued == 0 or self._paused:
            self._previous_silent = True
            return PlayoutFrame(self._silence, talkspurt_start=False, speech=False)
        n = self.frame_samples
        first = self._chunks[0]
        if first.shape[0] - self._offset >= n:
            # Fast path: the whole frame lies inside one chunk.
            pcm = first[self._offset : self._offset + n]
            self._offset += n
            if self._offset == first.shape[0]:
                self._chunks.popleft()
                self._offset = 0
            taken = n
        else:
            out = np.zeros(n, dtype=np.int16)
            taken = 0
            while taken < n and self._chunks:
                chunk = self._chunks[0]
                k = min(n - taken, int(chunk.shape[0]) - self._offset)
                out[taken : taken + k] = chunk[self._offset : self._offset + k]
                taken += k
                self._offset += k
                if self._offset == chunk.shape[0]:
                    self._chunks.popleft()
                    self._offset = 0
            out.flags.writeable = False
            pcm = out
        self._queued -= taken
        self._played += taken
        start = self._previous_silent
        self._previous_silent = False
        return PlayoutFrame(pcm, talkspurt_start=start, speech=True)
