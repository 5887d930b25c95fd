"""`denoise` / `stop_denoise`: RNNoise noise suppression on the caller's audio, before VAD and ASR.

Theory of operation: `denoise` puts a `NoiseSuppressor` (mediaserver/audio/denoise.py, one per
call, at the leg's rate, with its -20 dB floor: noise down by up to 20 dB, because plain RNNoise
also mutes words Whisper would have heard) as the `transform` of the caller leg's `taps.inbound`
(kernel/taps.py). Every consumer of the caller's audio subscribes downstream of that tap: the
shared 16 kHz view and its VAD (so the `ai` listener, the sidecar transcriber and
`detect_machine`), `prompt`'s speech capture, `record`, `record_call`, `tap` and a bridge, so
all of them hear the denoised caller from the next frame on, whichever verb started first, until
`stop_denoise` (or the end of the call) takes it off. In-band DTMF detection (kernel/media.py)
runs on the raw frame before the tap, so suppression cannot eat key presses.

`record_call` records the denoised caller, on purpose: one hook in front of every consumer
means the recording is what the agent and the transcript heard, which is what one listens to
when a turn went wrong; keeping a raw copy as well would need a second tap for recorders only,
and a bridge would then also need choosing. The cost is the suppressor's fixed delay (about
31 ms at 16 kHz, 33 ms at 8 kHz, 20 ms at 48 kHz), by which the caller's channel of a stereo
`record_call` trails our channel.

It runs inside the tick, on the event loop, like the VAD: about 2.8 ms of CPU per 20 ms frame
(audio/denoise.py), which bounds how many calls can have it on at once.

Events: `denoise_started` (rate, latency) and `denoise_stopped` (RNNoise frames run). The
suppressor is built on the worker pool (loading the 14 MB library the first time, and RNNoise's
state each time, should not stall every call's tick). Without the library (the wheel missing or
not loading) `denoise` is logged as `verb_unsupported` with the reason and `denoise_result` is
`unsupported`; a second `denoise` keeps the running suppressor (and its adapted noise
estimate); `stop_denoise` when off is a no-op. Variables: `denoise_result` = `on` / `off` /
`unsupported`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mediaserver.audio.denoise import DenoiseUnavailable, NoiseSuppressor
from mediaserver.audio.frame import AudioFrame
from mediaserver.events import CallEvent, VerbUnsupported, event
from mediaserver.kernel.call import Call
from mediaserver.kernel.verbs.context import KernelVerb, VerbContext
from mediaserver.swml.builders import Expander
from mediaserver.swml.document import Verb
from mediaserver.swml.effects import VerbResult


@event
class DenoiseStarted(CallEvent):
    EVENT = "denoise_started"
    path: str
    sample_rate: int
    latency_ms: float


@event
class DenoiseStopped(CallEvent):
    EVENT = "denoise_stopped"
    path: str
    frames: int  # 10 ms RNNoise frames run while it was on


@dataclass(frozen=True, slots=True, kw_only=True)
class Denoise:
    path: str
    enabled: bool


class DenoiseTransform:
    """The `inbound` tap's transform: each leg-rate frame through the call's suppressor."""

    def __init__(self, suppressor: NoiseSuppressor) -> None:
        self.suppressor = suppressor

    def __call__(self, frame: AudioFrame) -> AudioFrame:
        if frame.sample_rate != self.suppressor.sample_rate:
            return frame  # a leg never changes rate; if one did, raw audio beats a wrong filter
        return AudioFrame(self.suppressor.process(frame.pcm), frame.sample_rate, frame.start)


def build(interp: Expander, verb: Verb) -> Denoise:
    return Denoise(path=verb.path, enabled=verb.name == "denoise")


async def handle(ctx: VerbContext, call: Call, effect: Denoise) -> VerbResult:
    inbound = call.media.taps.inbound
    running = inbound.transform if isinstance(inbound.transform, DenoiseTransform) else None
    if not effect.enabled:
        if running is not None:
            inbound.transform = None
            running.suppressor.close()
            call.events.emit(DenoiseStopped(path=effect.path, frames=running.suppressor.frames))
        return VerbResult({"denoise_result": "off"})
    if running is not None:
        return VerbResult({"denoise_result": "on"})
    try:
        # Off the loop: the first one in a process loads the library and sizes the FIFO for the
        # rate (about 50 ms), each one allocates RNNoise's state (several ms); the tick must not wait.
        rate = call.media.taps.sample_rate
        suppressor = await asyncio.get_running_loop().run_in_executor(ctx.blocking, NoiseSuppressor, rate)
    except DenoiseUnavailable as exc:
        call.events.emit(VerbUnsupported(verb="denoise", path=effect.path, reason=str(exc)))
        return VerbResult({"denoise_result": "unsupported"})
    inbound.transform = DenoiseTransform(suppressor)
    call.events.emit(
        DenoiseStarted(path=effect.path, sample_rate=suppressor.sample_rate, latency_ms=round(suppressor.latency_ms, 1))
    )
    return VerbResult({"denoise_result": "on"})


VERBS = (KernelVerb("denoise", Denoise, build, handle), KernelVerb("stop_denoise", Denoise, build, handle))
