"""`detect_machine`: an energy-cadence guess at who answered, on the leg's 16 kHz view.

Theory of operation: the handler subscribes to `taps.inbound16` (kernel/taps.py, the view
every listener shares) and counts samples, not wall-clock time, so it is exact under a manual
clock. A greeting that talks for longer than machine_voice_threshold without a pause is a
machine; speech that stops sooner (end_silence_timeout) is a human; no speech within
initial_timeout, or no verdict within timeout, is unknown. A frame is speech above -44 dBFS.
Vars detect_result human | machine | unknown (fax is not detected), detect_ms.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mediaserver.audio.dsp import rms_dbfs
from mediaserver.audio.frame import AudioFrame
from mediaserver.events import DetectMachineDone
from mediaserver.kernel.call import Call
from mediaserver.kernel.taps import LISTEN_RATE
from mediaserver.kernel.verbs.context import KernelVerb, VerbContext
from mediaserver.swml.builders import Expander, expanded_params, integer, seconds_ms
from mediaserver.swml.document import Verb
from mediaserver.swml.effects import VerbResult

SPEECH_DBFS = -44.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectMachine:
    path: str
    initial_timeout_ms: int = 4500
    end_silence_timeout_ms: int = 1000
    machine_voice_threshold_ms: int = 1250
    machine_words_threshold: int = 6
    timeout_ms: int = 30000
    detectors: str = "amd,fax"


def build(interp: Expander, verb: Verb) -> DetectMachine:
    params = expanded_params(interp, verb)
    base = f"{verb.path}.detect_machine"
    return DetectMachine(
        path=verb.path,
        initial_timeout_ms=seconds_ms(params.get("initial_timeout", 4.5), f"{base}.initial_timeout"),
        end_silence_timeout_ms=seconds_ms(params.get("end_silence_timeout", 1), f"{base}.end_silence_timeout"),
        machine_voice_threshold_ms=seconds_ms(
            params.get("machine_voice_threshold", 1.25), f"{base}.machine_voice_threshold"
        ),
        machine_words_threshold=integer(params.get("machine_words_threshold", 6), f"{base}.machine_words_threshold"),
        timeout_ms=seconds_ms(params.get("timeout", 30), f"{base}.timeout"),
        detectors=str(params.get("detectors", "amd,fax")),
    )


async def handle(ctx: VerbContext, call: Call, effect: DetectMachine) -> VerbResult:
    if not call.answered:
        call.answer()
    rate = LISTEN_RATE  # the shared 16 kHz view every listener uses
    verdict: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    state = {"samples": 0, "speech": 0, "silent": 0, "started": False}

    def on_frame(frame: AudioFrame) -> None:
        if verdict.done():
            return
        state["samples"] += frame.samples
        if rms_dbfs(frame.pcm) > SPEECH_DBFS:
            state["started"] = True
            state["speech"] += frame.samples
            state["silent"] = 0
        elif state["started"]:
            state["silent"] += frame.samples
        if state["speech"] >= effect.machine_voice_threshold_ms * rate // 1000:
            verdict.set_result("machine")  # a long uninterrupted greeting
        elif state["started"] and state["silent"] >= effect.end_silence_timeout_ms * rate // 1000:
            verdict.set_result("human")  # "Hello?" and then waiting for us
        elif not state["started"] and state["samples"] >= effect.initial_timeout_ms * rate // 1000:
            verdict.set_result("unknown")

    tap = call.media.taps.inbound16.subscribe(on_frame, name="detect_machine")
    try:
        await asyncio.wait_for(asyncio.shield(verdict), effect.timeout_ms / 1000)
        result = verdict.result()
    except TimeoutError:
        result = "unknown"
    finally:
        tap.close()
    call.events.emit(DetectMachineDone(path=effect.path, result=result, speech_ms=state["speech"] * 1000 // rate))
    return VerbResult({"detect_result": result, "detect_ms": state["samples"] * 1000 // rate})


VERB = KernelVerb("detect_machine", DetectMachine, build, handle)
