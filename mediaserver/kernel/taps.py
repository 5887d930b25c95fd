"""Media taps: any number of consumers watch one call leg's media; none of them owns it.

Theory of operation: a leg (`MediaStream` for RTP, `WebRtcMedia` for browsers) has one
`MediaTaps` and emits into it from its tick: `inbound` gets each decoded 20 ms frame at the leg
rate, `outbound` each frame as it is handed to the wire (with the played cursor after it),
`dtmf` each digit with what carried it. `inbound16` is one shared 16 kHz view of `inbound`
(320-sample frames); it exists only while someone subscribes to it, so a leg nobody listens to
resamples nothing.

The leg's audio front end: `listen(callback, vad=...)` subscribes to `VoiceFrame`s, each 16 kHz
frame with its level and the verdict of the leg's one voice activity detector, so the AI
listener, the sidecar's transcriber and `detect_machine` share one resampler and one VAD pass
per frame. The VAD carries no energy floor: each listener applies its own (the `ai` verb's
`energy_level`, the sidecar's fixed floor). The first listener's factory makes the VAD; it
lives while anyone listens.

`tap.subscribe(callback, name=...)` returns a `Subscription`; closing it (or leaving its `with`
block) removes that subscriber only. Subscribers are called in the order they subscribed. An
emit walks a snapshot: a subscriber that closes itself or another one during an emit never makes
the tap skip or repeat anyone else, and one that subscribes during an emit first hears the next
item. A subscriber that raises is logged and does not stop the others: a recorder's bug must not
silence the agent. Everything runs on the event loop, inside the tick.

A tap may carry one `transform`, applied to each item before its subscribers see it: the
`denoise` verb sets one on `inbound` (kernel/verbs/denoise.py), so every consumer of the
caller's audio hears it denoised while it is on. A transform that raises is logged and removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

import numpy as np

from mediaserver.audio.dsp import rms_dbfs
from mediaserver.audio.frame import AudioFrame, Pcm
from mscodecs import Resampler

log = logging.getLogger(__name__)

LISTEN_RATE = 16000  # the speech pipeline's rate: VAD, ASR, end of turn
LISTEN_FRAME = LISTEN_RATE // 50  # 20 ms

T = TypeVar("T")


class DigitSource(StrEnum):
    RFC4733 = "rfc4733"  # telephone-event RTP packets
    SIP_INFO = "sip_info"  # application/dtmf-relay or application/dtmf INFO bodies
    INBAND = "inband"  # tones in the audio (Goertzel detector)
    DATA_CHANNEL = "data_channel"  # the WebRTC page's keypad


@dataclass(frozen=True, slots=True)
class Digit:
    digit: str
    source: DigitSource


@dataclass(frozen=True, slots=True)
class SentFrame:
    """One outbound frame as it left: leg-rate PCM, and the played cursor after it."""

    pcm: Pcm
    sample_rate: int
    played_samples: int
    speech: bool  # it carried queued audio (not the silence between utterances)


@dataclass(frozen=True, slots=True)
class VoiceFrame:
    """One 20 ms frame of the leg's 16 kHz view, analysed once for every listener."""

    frame: AudioFrame
    level_dbfs: float  # RMS re int16 full scale; SILENCE_DBFS for digital silence
    voiced: bool  # the leg's VAD, before any listener's energy floor or echo gate


class VoiceDetector(Protocol):
    def is_speech(self, pcm: Pcm) -> bool: ...


SILENCE_DBFS = -120.0


class Subscription(Generic[T]):
    def __init__(self, tap: Tap[T], callback: Callable[[T], None], name: str) -> None:
        self._tap: Tap[T] | None = tap
        self.callback = callback
        self.name = name

    @property
    def active(self) -> bool:
        return self._tap is not None

    def close(self) -> None:
        tap, self._tap = self._tap, None
        if tap is not None:
            tap._remove(self)

    def __enter__(self) -> Subscription[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Subscription({self.name!r}, active={self.active})"


class Tap(Generic[T]):
    def __init__(
        self,
        name: str,
        *,
        on_first: Callable[[], None] | None = None,
        on_last: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._subs: tuple[Subscription[T], ...] = ()
        self._on_first = on_first
        self._on_last = on_last
        # Rewrites each item before any subscriber sees it (`inbound` under the `denoise` verb:
        # every consumer, the 16 kHz view and its VAD included, hears the denoised caller).
        self.transform: Callable[[T], T] | None = None

    def subscribe(self, callback: Callable[[T], None], *, name: str = "") -> Subscription[T]:
        sub = Subscription(self, callback, name or getattr(callback, "__qualname__", "subscriber"))
        first = not self._subs
        self._subs = (*self._subs, sub)  # a new tuple: an emit in progress keeps its snapshot
        if first and self._on_first is not None:
            self._on_first()
        return sub

    def _remove(self, sub: Subscription[T]) -> None:
        self._subs = tuple(s for s in self._subs if s is not sub)
        if not self._subs and self._on_last is not None:
            self._on_last()

    @property
    def subscribers(self) -> list[str]:
        return [s.name for s in self._subs]

    def close(self) -> None:
        """Drop every subscriber and hook (the leg ended): what they hold, often the call
        itself, no longer forms a cycle with the tap, so reference counting frees the leg."""
        for sub in self._subs:
            sub._tap = None  # noqa: SLF001 - a closed subscription no longer points back
        self._subs = ()
        self._on_first = self._on_last = None
        self.transform = None

    def __bool__(self) -> bool:
        return bool(self._subs)

    def emit(self, item: T) -> None:
        if self.transform is not None:
            try:
                item = self.transform(item)
            except Exception:
                # Like a failing subscriber: logged, and the listeners keep the raw audio.
                log.exception("media tap transform failed; removed", extra={"tap": self.name})
                self.transform = None
        for sub in self._subs:
            if not sub.active:
                continue  # closed by an earlier subscriber during this very emit
            try:
                sub.callback(item)
            except Exception:
                log.exception("media tap subscriber failed", extra={"tap": self.name, "subscriber": sub.name})


class MediaTaps:
    """The taps of one call leg (see the module docstring)."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.inbound: Tap[AudioFrame] = Tap("inbound")
        self.inbound16: Tap[AudioFrame] = Tap("inbound16", on_first=self._open_view, on_last=self._close_view)
        self.outbound: Tap[SentFrame] = Tap("outbound")
        self.dtmf: Tap[Digit] = Tap("dtmf")
        self._view: ListenView | None = None
        self._voice: Tap[VoiceFrame] = Tap("voice", on_first=self._open_voice, on_last=self._close_voice)
        self._vad: VoiceDetector | None = None
        self._voice_view: Subscription[AudioFrame] | None = None

    def close(self) -> None:
        """The leg ended: every tap drops its subscribers and hooks (see `Tap.close`)."""
        for tap in (self.inbound, self.inbound16, self.outbound, self.dtmf, self._voice):
            tap.close()
        self._view = None
        self._voice_view = None
        self._vad = None

    def listen(
        self, callback: Callable[[VoiceFrame], None], *, vad: Callable[[], VoiceDetector], name: str = ""
    ) -> Subscription[VoiceFrame]:
        """Subscribe to the leg's analysed 16 kHz frames; `vad` makes the leg's VAD if none runs yet."""
        if self._vad is None:
            self._vad = vad()
        return self._voice.subscribe(callback, name=name)

    @property
    def listeners(self) -> list[str]:
        return self._voice.subscribers

    def _open_voice(self) -> None:
        self._voice_view = self.inbound16.subscribe(self._analyse, name="voice")

    def _close_voice(self) -> None:
        if self._voice_view is not None:
            self._voice_view.close()
        self._voice_view = None
        self._vad = None  # its noise estimate belongs to this listening spell

    def _analyse(self, frame: AudioFrame) -> None:
        assert self._vad is not None
        level = max(rms_dbfs(frame.pcm), SILENCE_DBFS)
        self._voice.emit(VoiceFrame(frame, level, self._vad.is_speech(frame.pcm)))

    def _open_view(self) -> None:
        self._view = ListenView(self.inbound16.emit)
        self._view.subscription = self.inbound.subscribe(self._view.push, name="inbound16-view")

    def _close_view(self) -> None:
        if self._view is not None and self._view.subscription is not None:
            self._view.subscription.close()
        self._view = None


class ListenView:
    """Leg-rate frames in, 20 ms frames at 16 kHz out, with one resampler for every listener.

    The low-latency polyphase filter, not soxr: soxr holds 100+ ms back, which would be heard as
    that much later barge-in and endpointing. `start` of each output frame counts 16 kHz samples
    from the moment the view opened."""

    def __init__(self, emit: Callable[[AudioFrame], None]) -> None:
        self._emit = emit
        self._resampler: Resampler | None = None
        self._rate = 0
        self._pending = np.zeros(0, dtype=np.int16)
        self.samples = 0
        self.subscription: Subscription[AudioFrame] | None = None

    def push(self, frame: AudioFrame) -> None:
        if frame.sample_rate == LISTEN_RATE:
            pcm = frame.pcm
        else:
            if self._resampler is None or frame.sample_rate != self._rate:
                self._rate = frame.sample_rate
                self._resampler = Resampler(frame.sample_rate, LISTEN_RATE, low_latency=True)
            pcm = self._resampler.process(frame.pcm)
        self._pending = np.concatenate([self._pending, pcm]) if len(self._pending) else pcm
        while len(self._pending) >= LISTEN_FRAME:
            chunk = np.ascontiguousarray(self._pending[:LISTEN_FRAME], dtype=np.int16)
            self._pending = self._pending[LISTEN_FRAME:]
            out = AudioFrame(chunk, LISTEN_RATE, self.samples)
            self.samples += LISTEN_FRAME
            self._emit(out)
