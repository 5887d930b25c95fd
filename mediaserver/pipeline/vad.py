"""Voice activity detection: a cheap per-frame gate and an expensive second opinion.

Theory of operation: the kernel asks two questions of the caller's audio (16 kHz mono int16):

* `VoiceActivityDetector.is_speech(frame)` on every 20 ms frame (320 samples). webrtcvad costs
  ~3 µs per frame and reacts within one frame, but it is an energy/GMM detector that fires on
  every noise onset (docs/costs.md §3: gated noise bursts flagged on 38-51 % of frames). It is gated
  by an energy floor in dBFS (frame RMS relative to int16 full scale), so quiet background never
  counts as speech whatever the GMM says; the floor comes from the `ai` param `energy_level`.
* `SpeechConfirmer.speech_probability(chunk)` where a decision matters (barge-in, end of turn):
  silero's ONNX model, ~200 µs per 32 ms, rejects the bursts webrtcvad accepts. It takes chunks
  of any length and returns the highest speech probability seen in the chunk.

Both are stateful and belong to one call; `reset()` forgets the call's history (e.g. between
turns). The turn manager counts frames; these classes only classify. Engines live in
`pipeline.engines` and are imported lazily, so importing this module loads no native code.
"""

from __future__ import annotations

import logging
from typing import Protocol

from mediaserver.audio.frame import Pcm, samples_per_frame
from mediaserver.rates import PIPELINE_RATE

__all__ = [
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "SpeechConfirmer",
    "VoiceActivityDetector",
    "energy_floor_from_level",
    "make_confirmer",
    "make_vad",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = PIPELINE_RATE  # defined once in mediaserver.rates
FRAME_SAMPLES = samples_per_frame(SAMPLE_RATE)  # 20 ms: 320 samples

# energy_level 0..100 maps linearly onto this dBFS range: 0 hears everything above -71 dBFS
# (near the int16 noise floor of a G.711 line), 100 only speech louder than -21 dBFS (shouting
# into the handset). The default 52 gives -45 dBFS: a normal talker on a phone is at -20..-30
# dBFS, quiet room noise through a handset at -55..-65 dBFS.
_LEVEL_AT_0_DBFS = -71.0
_DB_PER_LEVEL = 0.5


class VoiceActivityDetector(Protocol):
    def is_speech(self, pcm: Pcm) -> bool: ...

    def reset(self) -> None: ...


class SpeechConfirmer(Protocol):
    def speech_probability(self, pcm: Pcm) -> float: ...

    def reset(self) -> None: ...


def energy_floor_from_level(energy_level: int) -> float:
    """`ai` param energy_level (0..100, default 52) -> energy floor in dBFS: -71 + level / 2.

    0 -> -71 dBFS, 52 -> -45 dBFS, 100 -> -21 dBFS.
    """
    if isinstance(energy_level, bool) or not isinstance(energy_level, int | float):
        raise ValueError(f"energy_level must be a number 0..100, got {energy_level!r}")
    if not 0 <= energy_level <= 100:
        raise ValueError(f"energy_level must be 0..100, got {energy_level}")
    return _LEVEL_AT_0_DBFS + _DB_PER_LEVEL * float(energy_level)


def make_vad(mode: int = 3, energy_floor_dbfs: float = -45.0) -> VoiceActivityDetector:
    """webrtcvad (aggressiveness `mode` 0..3) gated by an energy floor; 16 kHz, 10/20/30 ms frames."""
    from mediaserver.pipeline.engines.webrtc_vad import WebRtcVad

    return WebRtcVad(mode=mode, energy_floor_dbfs=energy_floor_dbfs)


def make_confirmer() -> SpeechConfirmer | None:
    """silero VAD (ONNX, torch-free), or None with a log line when its model cannot be loaded."""
    try:
        from mediaserver.pipeline.engines.silero_vad import SileroConfirmer

        return SileroConfirmer()
    except (ImportError, OSError, RuntimeError) as error:
        log.warning("silero VAD unavailable, speech decisions rest on webrtcvad alone: %s", error)
        return None
