"""Sample rates every layer agrees on. Lowest layer: imports nothing.

`PIPELINE_RATE` is the speech pipeline's rate: what VAD, ASR (whisper), the end-of-turn model
and the turn manager consume, the rate of a leg's shared listening view, and the media clock
that `caller_sample` in the turn events counts. Legs run at their codec's rate and are resampled
once to this rate for listening.
"""

from __future__ import annotations

PIPELINE_RATE = 16_000  # Hz
