"""Handlers of the SWML effects beyond answer/play/sleep/hangup/ai, one module per concern.

`HANDLERS` maps an effect type to `async handler(executor, call, effect) -> EffectResult | None`;
the executor looks effects up here first. Adding a verb is a builder in `swml/builders.py`, an
effect in `swml/effects.py` and a row here.
"""

from __future__ import annotations

from typing import Any

from mediaserver.kernel import recording
from mediaserver.kernel.verbs import dial, http, misc, prompt
from mediaserver.kernel.verbs.sidecar import ai_sidecar
from mediaserver.swml import effects

HANDLERS: dict[type, Any] = {
    effects.Request: http.request,
    effects.FetchSwml: http.fetch,
    effects.Prompt: prompt.prompt,
    effects.Record: recording.record,
    effects.RecordCall: recording.record_call,
    effects.StopRecordCall: recording.stop_record_call,
    effects.DetectMachine: recording.detect_machine,
    effects.Connect: dial.connect,
    effects.SipRefer: dial.sip_refer,
    effects.SendDigits: misc.send_digits,
    effects.UserEvent: misc.user_event,
    effects.Denoise: misc.denoise,
    effects.AiSidecar: ai_sidecar,
    effects.Unsupported: misc.unsupported,
}
