"""Background layers mixed under the outbound playout: hold music, SWAIG `playback_bg`.

Theory of operation: a `BedMixer` holds named layers, each a whole mono int16 clip at the
playout's rate with a read position and a loop count (None: forever). The playout calls
`mix(frame)` once per outbound frame, whatever the frame carries (agent speech, or the silence
between utterances, or a paused reply), so a layer advances exactly one frame per tick: it is
heard at the played cursor, under the agent's voice and alone in the gaps. The agent's own
queue, its played-sample cursor and its word marks are untouched (barge-in and heard-text stay
exact). A layer that reaches its end and has no loops left is dropped; `on_end(name)` is told
(synchronously, inside the tick: it must not block). Sums saturate to int16: two loud sources
clip rather than wrap around into a click.

Pure: no clock, no I/O. The AI session owns one mixer per call and attaches it to the leg's
playout (`Playout.bed`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mediaserver.audio.frame import Pcm

__all__ = ["BedMixer"]


@dataclass
class _Layer:
    pcm: Pcm
    loops: int | None  # plays left after this one; None: forever
    gain: float
    position: int = 0


class BedMixer:
    def __init__(self, on_end: Callable[[str], None] | None = None) -> None:
        self._layers: dict[str, _Layer] = {}
        self.on_end = on_end

    def play(self, name: str, pcm: Pcm, *, loops: int | None = 1, gain_db: float = 0.0) -> None:
        """Start (or restart) layer `name`: `loops` plays in all (None: until stopped)."""
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"a layer needs mono int16 PCM, got {pcm.dtype} shape {pcm.shape}")
        if not len(pcm):
            return
        left = None if loops is None else max(0, loops - 1)
        self._layers[name] = _Layer(pcm, left, 10 ** (gain_db / 20))

    def stop(self, name: str) -> bool:
        """Drop layer `name` at once; False when it was not playing."""
        return self._layers.pop(name, None) is not None

    def playing(self, name: str) -> bool:
        return name in self._layers

    def __bool__(self) -> bool:
        return bool(self._layers)

    def mix(self, frame: Pcm) -> Pcm:
        """`frame` with every layer's next `len(frame)` samples added (a new read-only array)."""
        if not self._layers:
            return frame
        n = len(frame)
        total = frame.astype(np.int32)
        for name in list(self._layers):
            layer = self._layers[name]
            total += (self._take(layer, n) * layer.gain).astype(np.int32)
            if layer.position >= len(layer.pcm) and layer.loops == 0:
                del self._layers[name]
                if self.on_end is not None:
                    self.on_end(name)
        out = np.clip(total, -32768, 32767).astype(np.int16)
        out.flags.writeable = False
        return out

    @staticmethod
    def _take(layer: _Layer, n: int) -> Pcm:
        parts: list[Pcm] = []
        want = n
        while want > 0:
            if layer.position >= len(layer.pcm):
                if layer.loops == 0:
                    break
                if layer.loops is not None:
                    layer.loops -= 1
                layer.position = 0
            piece = layer.pcm[layer.position : layer.position + want]
            layer.position += len(piece)
            want -= len(piece)
            parts.append(piece)
        out = np.zeros(n, dtype=np.int16)
        if parts:
            joined = np.concatenate(parts) if len(parts) > 1 else parts[0]
            out[: len(joined)] = joined
        return out
