"""Recording: `record` (foreground, voicemail), `record_call`/`stop_record_call` (background).

Theory of operation: each recorder subscribes to the call leg's taps (kernel/taps.py):
`taps.inbound` gives every decoded inbound 20 ms frame, `taps.outbound` every frame handed to
the wire, at the tick it leaves. Other consumers (the AI agent, a bridge, the sidecar) subscribe
beside them, so a recording started before an `ai` verb or a `connect` keeps both directions
through it. Timeouts count inbound audio samples, not wall-clock time, so they are exact under a
manual clock; a frame is speech when its level is above `-input_sensitivity` dBFS.

- `record`: optional beep, then capture the caller until a terminator digit, `end_silence_timeout`
  of silence after speech, `max_length`, or `initial_timeout` without speech; write a mono
  16-bit WAV to `[swml] recordings_dir`. Vars: record_url (file URL), record_result success |
  no_input | failed, record_duration (s).
- `record_call`: both directions (mixed, or stereo with caller left / us right) until
  `stop_record_call` (same control_id, or the latest) or the end of the call; vars
  record_call_url, record_call_result.
"""

from __future__ import annotations

import asyncio
import uuid
import wave
from pathlib import Path
from typing import Any

import numpy as np

from mediaserver.audio.dsp import mix, rms_dbfs
from mediaserver.audio.frame import AudioFrame, Pcm
from mediaserver.events import (
    RecordCallFailed,
    RecordCallStarted,
    RecordCallStopped,
    RecordDone,
    RecordFailed,
    RecordFormatChanged,
    StopRecordCallNothing,
)
from mediaserver.kernel.call import Call
from mediaserver.kernel.taps import SentFrame
from mediaserver.kernel.verbs.context import VerbContext
from mediaserver.kernel.verbs.taps import DigitCollector
from mediaserver.swml.effects import Record, RecordCall, StopRecordCall, VerbResult

BEEP_HZ = 1000
BEEP_MS = 250


def write_wav(path: Path, pcm: Pcm, sample_rate: int, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())


def _target(ctx: VerbContext, call: Call, kind: str) -> Path:
    return Path(ctx.options.recordings_dir) / f"{call.call_id}-{kind}-{uuid.uuid4().hex[:8]}.wav"


def _beep(rate: int) -> Pcm:
    t = np.arange(rate * BEEP_MS // 1000) / rate
    return (6000 * np.sin(2 * np.pi * BEEP_HZ * t)).astype(np.int16)


async def record(ctx: VerbContext, call: Call, effect: Record) -> VerbResult:
    if not call.answered:
        call.answer()
    if effect.format != "wav":
        call.events.emit(RecordFormatChanged(path=effect.path, asked=effect.format, used="wav"))
    if effect.beep:
        await call.wait_played(call.enqueue_audio(_beep(call.media.sample_rate), call.media.sample_rate))
    rate = call.media.sample_rate
    threshold = -abs(effect.input_sensitivity)
    chunks: list[Pcm] = []
    state = {"samples": 0, "speech": False, "silent": 0}
    finished: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    limit = effect.max_length_ms * rate // 1000 if effect.max_length_ms else None

    def on_frame(frame: AudioFrame) -> None:
        if finished.done():
            return
        chunks.append(frame.pcm)
        state["samples"] += frame.samples
        if rms_dbfs(frame.pcm) > threshold:
            state["speech"], state["silent"] = True, 0
        else:
            state["silent"] += frame.samples
        if limit is not None and state["samples"] >= limit:
            finished.set_result("max_length")
        elif (
            not state["speech"]
            and effect.initial_timeout_ms
            and state["samples"] >= effect.initial_timeout_ms * rate // 1000
        ):
            finished.set_result("no_input")
        elif (
            state["speech"]
            and effect.end_silence_timeout_ms
            and state["silent"] >= effect.end_silence_timeout_ms * rate // 1000
        ):
            finished.set_result("silence")

    tap = call.media.taps.inbound.subscribe(on_frame, name="record")
    digits = DigitCollector(call)
    waiter = asyncio.ensure_future(_wait_terminator(digits, effect.terminators))
    ended = asyncio.ensure_future(call.ended.wait())
    try:
        pending: set[asyncio.Future[Any]] = {finished, waiter, ended}
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    finally:
        tap.close()
        digits.close()
        for task in (waiter, ended):
            task.cancel()
    reason = finished.result() if finished.done() else ("terminator" if waiter.done() else "hangup")
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    if reason == "no_input" or not state["speech"]:
        call.events.emit(RecordDone(path=effect.path, result="no_input", reason=reason))
        return VerbResult({"record_result": "no_input", "record_url": "", "record_duration": 0})
    target = _target(ctx, call, "record")
    try:
        await asyncio.get_running_loop().run_in_executor(ctx.blocking, write_wav, target, pcm, rate, 1)
    except OSError as exc:
        call.events.emit(RecordFailed(path=effect.path, error=str(exc)))
        return VerbResult({"record_result": "failed", "record_url": ""})
    duration = round(len(pcm) / rate, 2)
    call.events.emit(
        RecordDone(path=effect.path, result="success", reason=reason, file=target.name, duration_s=duration)
    )
    return VerbResult(
        {
            "record_result": "success",
            "record_url": target.resolve().as_uri(),
            "record_duration": duration,
            "record_format": "wav",
        }
    )


async def _wait_terminator(digits: DigitCollector, terminators: str) -> str:
    while True:
        digit = await digits.digits.get()
        if digit in terminators:
            return digit


class CallRecorder:
    """A background recording of both directions; `stop()` writes the WAV."""

    def __init__(self, ctx: VerbContext, call: Call, effect: RecordCall) -> None:
        self.call = call
        self.effect = effect
        self.rate = call.media.sample_rate
        self.target = _target(ctx, call, "call")
        self.inbound: list[Pcm] = []
        self.outbound: list[Pcm] = []
        taps = call.media.taps
        self._inbound = taps.inbound.subscribe(lambda frame: self.inbound.append(frame.pcm), name="record_call")
        self._outbound = taps.outbound.subscribe(self._sent, name="record_call")

    def _sent(self, frame: SentFrame) -> None:
        self.outbound.append(frame.pcm)

    def stop(self) -> tuple[Path, float] | None:
        self._inbound.close()
        self._outbound.close()
        inbound = np.concatenate(self.inbound) if self.inbound else np.zeros(0, dtype=np.int16)
        outbound = np.concatenate(self.outbound) if self.outbound else np.zeros(0, dtype=np.int16)
        direction = self.effect.direction
        if direction == "listen":
            outbound = np.zeros(0, dtype=np.int16)
        elif direction == "speak":
            inbound = np.zeros(0, dtype=np.int16)
        n = max(len(inbound), len(outbound))
        inbound = np.pad(inbound, (0, n - len(inbound)))
        outbound = np.pad(outbound, (0, n - len(outbound)))
        try:
            if self.effect.stereo:
                write_wav(self.target, np.stack([inbound, outbound], axis=1).reshape(-1), self.rate, 2)
            else:
                write_wav(self.target, mix(inbound, outbound) if n else inbound, self.rate, 1)
        except OSError as exc:
            self.call.events.emit(RecordCallFailed(error=str(exc)))
            return None
        return self.target, n / self.rate


async def record_call(ctx: VerbContext, call: Call, effect: RecordCall) -> VerbResult:
    control_id = effect.control_id or f"record-{len(ctx.background)}"
    if control_id in ctx.background:
        return VerbResult({"record_call_result": "failed"})
    recorder = CallRecorder(ctx, call, effect)
    ctx.background[control_id] = recorder
    call.events.emit(RecordCallStarted(path=effect.path, control_id=control_id, file=recorder.target.name))
    return VerbResult(
        {
            "record_call_result": "success",
            "record_control_id": control_id,
            "record_call_url": recorder.target.resolve().as_uri(),
        }
    )


async def stop_record_call(ctx: VerbContext, call: Call, effect: StopRecordCall) -> VerbResult:
    recorders = [key for key, value in ctx.background.items() if isinstance(value, CallRecorder)]
    control_id = effect.control_id if effect.control_id in ctx.background else (recorders[-1] if recorders else None)
    if control_id is None:
        call.events.emit(StopRecordCallNothing(path=effect.path))
        return VerbResult({"stop_record_call_result": "failed"})
    recorder = ctx.background.pop(control_id)
    written = recorder.stop()
    call.events.emit(
        RecordCallStopped(path=effect.path, control_id=control_id, file=written[0].name if written else None)
    )
    return VerbResult(
        {
            "stop_record_call_result": "success" if written else "failed",
            "record_call_url": written[0].resolve().as_uri() if written else "",
        }
    )


def stop_all(ctx: VerbContext, call: Call) -> None:
    """End of the script: background recordings are written (record_call runs to the end), and
    every other background job (a `tap`, kernel/verbs/tap.py) is stopped."""
    for control_id, recorder in list(ctx.background.items()):
        if isinstance(recorder, CallRecorder):
            written = recorder.stop()
            call.events.emit(
                RecordCallStopped(control_id=control_id, file=written[0].name if written else None, reason="call ended")
            )
        else:
            recorder.stop()
        ctx.background.pop(control_id, None)
