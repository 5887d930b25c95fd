"""The call events: one frozen dataclass per event a call's event log can hold.

Theory of operation: everything that happens on a call (a state change, a verb, a DTMF digit,
an AI turn milestone, a barge-in) is one of the classes below. A producer builds the event and
hands it to the call's log, `call.events.emit(TurnEndpoint(caller_sample=…, …))`; the log
stamps it with the wall time, keeps `to_dict(ts)` (the JSON entry the HTTP API, the call page,
the per-call JSONL file and the tests read: `{"ts", "event", **fields}`) and publishes both to
the kernel's event bus, whose subscribers are `/metrics`, `/api/events`, the call page and the
JSONL writer.

`EVENTS` maps each event name to its class. The names are the wire names (past tense, as the
page and the tests read them); field names carry their units as they always have
(`caller_sample`, `duration_s`, `speech_ms`). `from_fields(name, **fields)` builds an event from
its name (`CallEventLog.record`, the deprecated path): an unknown name or field raises
`InvalidEvent`, so no untyped event can exist.

A field whose default is `OMIT` is left out of the JSON entry unless given: some events have
two shapes (an inbound `call_started` has the URIs and the SWML document, a dialled leg's has
`direction`, `to` and `origin`), and the entry must stay exactly what it was.

This module is the bottom layer: standard library only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, TypeVar, dataclass_transform

__all__ = ["EVENTS", "OMIT", "CallEvent", "EventSink", "InvalidEvent", "from_fields"]


class _Omitted:
    __slots__ = ()

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omitted()  # typed Any so that `to: str = OMIT` type-checks; never in a JSON entry


class InvalidEvent(ValueError):
    """An event name that is not registered, or fields its class does not have."""


class CallEvent:
    """Base of every call event. `EVENT` is the wire name, `LEVEL` the default log level."""

    __slots__ = ()
    EVENT: ClassVar[str]
    LEVEL: ClassVar[int] = logging.INFO
    _names: ClassVar[tuple[str, ...]]

    def to_dict(self, ts: float | None = None) -> dict[str, Any]:
        """The JSON entry: `{"ts", "event", **fields}` (`ts` only when given), OMIT fields left out."""
        entry: dict[str, Any] = {} if ts is None else {"ts": ts}
        entry["event"] = self.EVENT
        for name in type(self)._names:
            value = getattr(self, name)
            if value is not OMIT:
                entry[name] = value
        return entry


_REGISTRY: dict[str, type[CallEvent]] = {}
E = TypeVar("E", bound=CallEvent)


@dataclass_transform(kw_only_default=True, frozen_default=True)
def event(cls: type[E]) -> type[E]:
    """Make `cls` a frozen, keyword-only, slotted dataclass and register it under `cls.EVENT`."""
    made = dataclass(frozen=True, kw_only=True, slots=True)(cls)
    if made.EVENT in _REGISTRY:
        raise RuntimeError(f"call event {made.EVENT!r} is defined twice")
    made._names = tuple(f.name for f in fields(made))  # type: ignore[arg-type]  # made is a dataclass now
    _REGISTRY[made.EVENT] = made
    return made


# ---- call and leg lifecycle -------------------------------------------------------------------


@event
class CallStarted(CallEvent):
    EVENT = "call_started"
    codec: str = OMIT
    from_uri: str = OMIT  # an inbound call (the kernel's start_call)
    to_uri: str = OMIT
    # The name of the route that picked the call's SWML ("greeting", "default"; a URL route shows
    # its URL without credentials): never a server file path, as events reach browsers.
    document: str = OMIT
    front_end: dict[str, Any] = OMIT
    direction: str = OMIT  # a dialled leg
    to: str = OMIT
    origin: str = OMIT


@event
class CallEnded(CallEvent):
    EVENT = "call_ended"
    cause: str | None
    packets_in: int
    packets_out: int
    played_samples: int = OMIT


@event
class StateChanged(CallEvent):
    EVENT = "state_changed"
    old: str
    new: str
    trigger: str


@event
class HangupRequested(CallEvent):
    EVENT = "hangup_requested"
    cause: str
    reason: str


@event
class RemoteHangup(CallEvent):
    EVENT = "remote_hangup"
    reason: str


@event
class SignalingEnded(CallEvent):
    EVENT = "signaling_ended"
    reason: str


@event
class AudioStarted(CallEvent):
    EVENT = "audio_started"
    played_samples: int


@event
class AudioStopped(CallEvent):
    EVENT = "audio_stopped"
    played_samples: int


@event
class ScriptFailed(CallEvent):
    EVENT = "script_failed"
    LEVEL = logging.ERROR
    error: str


@event
class WebrtcState(CallEvent):
    EVENT = "webrtc_state"
    state: str


# ---- SIP --------------------------------------------------------------------------------------


@event
class SipIn(CallEvent):
    EVENT = "sip_in"
    line: str  # the message's first line
    peer: str  # host:port


@event
class SipOut(CallEvent):
    EVENT = "sip_out"
    line: str
    peer: str


@event
class AckReceived(CallEvent):
    EVENT = "ack_received"


@event
class MediaConfirmed(CallEvent):
    """An inbound SIP call's dialog is confirmed: its media starts (`Call.confirm`)."""

    EVENT = "media_confirmed"
    reason: str  # "ack": our 2xx was ACKed; "rtp": the peer's first RTP/RTCP came first


@event
class Held(CallEvent):
    EVENT = "held"
    direction: str  # the SDP direction answered


@event
class Resumed(CallEvent):
    EVENT = "resumed"
    direction: str


@event
class DialStarted(CallEvent):
    EVENT = "dial_started"
    to: str
    leg_call_id: str
    codecs: list[str]


@event
class DialFailed(CallEvent):
    EVENT = "dial_failed"
    to: str
    error: str


@event
class ReferProgress(CallEvent):
    EVENT = "refer_progress"
    status: int
    reason: str
    final: bool


@event
class ReferFailed(CallEvent):
    EVENT = "refer_failed"
    error: str


# ---- DTMF and bridging ------------------------------------------------------------------------


@event
class Dtmf(CallEvent):
    EVENT = "dtmf"
    digit: str
    source: str  # DigitSource value: rfc4733, sip_info, inband, datachannel…


@event
class DtmfReceived(CallEvent):
    EVENT = "dtmf_received"
    digit: str
    via: str


@event
class DtmfCollected(CallEvent):
    EVENT = "dtmf_collected"
    digit: str
    source: str


@event
class BridgeDtmf(CallEvent):
    EVENT = "bridge_dtmf"
    digit: str
    from_call: str


@event
class Bridged(CallEvent):
    EVENT = "bridged"
    peer_call: str
    codec: str
    peer_codec: str


@event
class Unbridged(CallEvent):
    EVENT = "unbridged"
    frames_relayed: int


# ---- SWML verbs -------------------------------------------------------------------------------


@event
class VerbStarted(CallEvent):
    EVENT = "verb_started"
    verb: str
    path: str


@event
class VerbUnsupported(CallEvent):
    EVENT = "verb_unsupported"
    LEVEL = logging.WARNING
    verb: str
    path: str = OMIT
    to: str = OMIT
    reason: str = OMIT


@event
class SwmlError(CallEvent):
    EVENT = "swml_error"
    LEVEL = logging.ERROR
    path: str
    error: str


@event
class SwmlFetch(CallEvent):
    EVENT = "swml_fetch"
    path: str
    url: str
    purpose: str


@event
class SwmlFetchFailed(CallEvent):
    EVENT = "swml_fetch_failed"
    LEVEL = logging.ERROR
    path: str
    error: str


@event
class ApologyFailed(CallEvent):
    EVENT = "apology_failed"
    LEVEL = logging.WARNING
    error: str


@event
class PlayItem(CallEvent):
    EVENT = "play_item"
    path: str
    item: str  # the play item's type: Say, Silence, Tone, AudioFile…
    detail: str


@event
class PlayFailed(CallEvent):
    EVENT = "play_failed"
    LEVEL = logging.WARNING
    path: str
    error: str


@event
class PlaySkipped(CallEvent):
    EVENT = "play_skipped"
    LEVEL = logging.WARNING
    path: str
    reason: str


@event
class TtsFirstAudio(CallEvent):
    EVENT = "tts_first_audio"
    text: str  # the first 80 characters


@event
class PromptDone(CallEvent):
    EVENT = "prompt_done"
    path: str
    result: str
    value: str


@event
class PromptSpeechFailed(CallEvent):
    EVENT = "prompt_speech_failed"
    LEVEL = logging.ERROR
    path: str
    error: str


@event
class PromptSpeechUnavailable(CallEvent):
    EVENT = "prompt_speech_unavailable"
    LEVEL = logging.WARNING
    path: str
    reason: str


@event
class RecordDone(CallEvent):
    EVENT = "record_done"
    path: str
    result: str
    reason: str
    # Record events give the file's name in [swml] recordings_dir, never the server path: events
    # reach browsers (GET /calls/{id}, the call page's feed).
    file: str = OMIT
    duration_s: float = OMIT


@event
class RecordFailed(CallEvent):
    EVENT = "record_failed"
    LEVEL = logging.ERROR
    path: str
    error: str


@event
class RecordFormatChanged(CallEvent):
    EVENT = "record_format_changed"
    LEVEL = logging.WARNING
    path: str
    asked: str
    used: str


@event
class RecordCallStarted(CallEvent):
    EVENT = "record_call_started"
    path: str
    control_id: str
    file: str


@event
class RecordCallStopped(CallEvent):
    EVENT = "record_call_stopped"
    control_id: str
    file: str | None
    path: str = OMIT  # stop_record_call
    reason: str = OMIT  # stopped by the call's end


@event
class RecordCallFailed(CallEvent):
    EVENT = "record_call_failed"
    LEVEL = logging.ERROR
    error: str


@event
class StopRecordCallNothing(CallEvent):
    EVENT = "stop_record_call_nothing"
    LEVEL = logging.WARNING
    path: str


@event
class DetectMachineDone(CallEvent):
    EVENT = "detect_machine_done"
    path: str
    result: str
    speech_ms: int


@event
class RequestDone(CallEvent):
    EVENT = "request_done"
    path: str
    url: str
    status: Any  # request_response_code as the variable holds it


@event
class RequestFailed(CallEvent):
    EVENT = "request_failed"
    LEVEL = logging.WARNING
    path: str
    url: str
    error: str


@event
class RequestNotJson(CallEvent):
    EVENT = "request_not_json"
    LEVEL = logging.WARNING
    path: str
    url: str


@event
class ConnectDialed(CallEvent):
    EVENT = "connect_dialed"
    path: str
    to: str
    status: int
    reason: str


@event
class SipReferDone(CallEvent):
    EVENT = "sip_refer_done"
    path: str
    to: str
    status: int


@event
class DigitsSent(CallEvent):
    EVENT = "digits_sent"
    path: str
    digits: str
    completed: bool


@event
class SendDigitsFailed(CallEvent):
    EVENT = "send_digits_failed"
    LEVEL = logging.WARNING
    path: str
    error: str


@event
class UserEvent(CallEvent):
    EVENT = "user_event"
    path: str
    user_event: Any  # the verb's `event` value, any JSON


@event
class Denoise(CallEvent):
    EVENT = "denoise"
    path: str
    enabled: bool
    applied: bool
    reason: str


# ---- the AI agent -----------------------------------------------------------------------------


@event
class AiStarted(CallEvent):
    EVENT = "ai_started"
    model: str
    tools: int  # how many tool definitions


@event
class AiFinished(CallEvent):
    EVENT = "ai_finished"
    result: str
    turns: int  # conversation entries


@event
class AiFailure(CallEvent):
    EVENT = "ai_failure"
    LEVEL = logging.WARNING
    kind: str
    error: str


@event
class AiConfigWarning(CallEvent):
    EVENT = "ai_config_warning"
    LEVEL = logging.WARNING
    warning: str


@event
class AiSummary(CallEvent):
    EVENT = "ai_summary"
    chars: int


@event
class AiToggleFunctions(CallEvent):
    EVENT = "ai_toggle_functions"
    changes: Any  # the toggle_functions action's value


@event
class AiSettingsUpdated(CallEvent):
    EVENT = "ai_settings_updated"
    keys: list[str]


@event
class AiChangeContext(CallEvent):
    EVENT = "ai_change_context"
    name: str


@event
class AiChangeStep(CallEvent):
    EVENT = "ai_change_step"
    name: str


@event
class AiHold(CallEvent):
    EVENT = "ai_hold"
    timeout_s: float


@event
class AiInactivity(CallEvent):
    EVENT = "ai_inactivity"
    caller_sample: int
    reason: str


@event
class ToolInvoked(CallEvent):
    EVENT = "tool_invoked"
    name: str


@event
class ToolFailed(CallEvent):
    EVENT = "tool_failed"
    LEVEL = logging.WARNING
    name: str
    error: str


# Turn milestones: `caller_sample` is a position on the caller's 16 kHz media clock; events
# without it (LLM, TTS) are timed by their log time (mediaserver/metrics.py).


@event
class TurnSpeechStarted(CallEvent):
    EVENT = "turn_speech_started"
    caller_sample: int  # first voiced sample of the onset
    decided_at: int  # the sample where the onset was decided


@event
class TurnSpeechEnded(CallEvent):
    EVENT = "turn_speech_ended"
    caller_sample: int


@event
class TurnEndpoint(CallEvent):
    EVENT = "turn_endpoint"
    caller_sample: int  # the endpoint decision
    speech_end: int  # the caller's last voiced sample + 1
    reason: str
    preemptive: bool


@event
class TurnDiscarded(CallEvent):
    EVENT = "turn_discarded"
    caller_sample: int
    reason: str


@event
class TurnAsrFinal(CallEvent):
    EVENT = "turn_asr_final"
    caller_sample: int
    text: str


@event
class TurnCheck(CallEvent):
    """The end-of-turn detector judged the caller's audio up to `caller_sample` (a trailing silence)."""

    EVENT = "turn_check"
    caller_sample: int
    probability: float  # P(turn complete) from the audio; the turn manager adds the transcript's hint
    ms: int  # the inference's wall time, the wait for the detector's worker included
    cpu_ms: int = 0  # the worker thread's CPU time for the inference
    early: bool = OMIT  # True: started as the voice ended, on that audio plus the silence assumed to go on


@event
class TurnLlmFirstToken(CallEvent):
    EVENT = "turn_llm_first_token"


@event
class TurnTtsSynthesized(CallEvent):
    """A reply's first TTS chunk is synthesized (a preemptive reply then holds it for the endpoint)."""

    EVENT = "turn_tts_synthesized"
    held: bool  # True: preemptive, waiting for the endpoint to release it


@event
class TurnTtsFirstAudio(CallEvent):
    EVENT = "turn_tts_first_audio"
    start_mark: int  # playout mark where the reply's audio starts (queued for playout)


@event
class TurnFirstAgentFrame(CallEvent):
    EVENT = "turn_first_agent_frame"
    cursor: int
    caller_sample: int


@event
class BargePaused(CallEvent):
    EVENT = "barge_paused"
    caller_sample: int
    cursor: int  # the played cursor


@event
class BargeResumed(CallEvent):
    EVENT = "barge_resumed"
    caller_sample: int
    cursor: int


@event
class BargeFlushed(CallEvent):
    EVENT = "barge_flushed"
    caller_sample: int
    cursor: int
    heard_text: str
    heard_words: int
    total_words: int


# ---- the sidecar and the control API ----------------------------------------------------------


@event
class AiSidecar(CallEvent):
    EVENT = "ai_sidecar"
    reply: str


@event
class AiSidecarFailed(CallEvent):
    EVENT = "ai_sidecar_failed"
    LEVEL = logging.ERROR
    error: str


@event
class AiSidecarLegs(CallEvent):
    EVENT = "ai_sidecar_legs"
    customer_call: str
    agent_call: str


@event
class AiSidecarRefused(CallEvent):
    EVENT = "ai_sidecar_refused"
    LEVEL = logging.WARNING
    path: str
    reply: str


@event
class AiSidecarWebhookFailed(CallEvent):
    EVENT = "ai_sidecar_webhook_failed"
    LEVEL = logging.WARNING
    error: str


@event
class ApiSayFailed(CallEvent):
    EVENT = "api_say_failed"
    LEVEL = logging.WARNING
    error: str


class EventSink(Protocol):
    """Where a call's event log publishes (the kernel's `EventBus`)."""

    def publish_call_event(self, call_id: str, event: CallEvent, entry: dict[str, Any]) -> object: ...


# ---- the registry -----------------------------------------------------------------------------


EVENTS: Mapping[str, type[CallEvent]] = MappingProxyType(_REGISTRY)


def from_fields(name: str, **values: Any) -> CallEvent:
    """The event called `name` with these fields; `InvalidEvent` if either is unknown."""
    cls = EVENTS.get(name)
    if cls is None:
        raise InvalidEvent(f"unknown call event {name!r}: add its class to mediaserver/events.py")
    try:
        return cls(**values)
    except TypeError as exc:
        raise InvalidEvent(f"call event {name!r}: {exc}") from None


# ---- SWAIG actions on the live AI session (agents/ai/controls.py) ------------------------------


@event
class AiHoldEnded(CallEvent):
    EVENT = "ai_hold_ended"
    reason: str  # "timeout"
    held_s: float


@event
class AiBackgroundStarted(CallEvent):
    EVENT = "ai_background_started"
    file: str
    wait: bool  # attention prompts suppressed while it plays
    purpose: str  # "playback_bg" | "hold" | "background_file" | "hold_on_process"


@event
class AiBackgroundStopped(CallEvent):
    EVENT = "ai_background_stopped"
    purpose: str
    reason: str  # "stopped" | "ended" | "hold_ended" | "function_returned" (hold_on_process)


@event
class AiWaitForUser(CallEvent):
    EVENT = "ai_wait_for_user"
    mode: str  # "off" | "on" | "<seconds>s"


@event
class AiVoiceChanged(CallEvent):
    EVENT = "ai_voice_changed"
    voice: str


@event
class AiVoiceRefused(CallEvent):
    EVENT = "ai_voice_refused"
    LEVEL = logging.WARNING
    voice: str
    reason: str


@event
class AiHintsChanged(CallEvent):
    EVENT = "ai_hints_changed"
    words: list[str]
    rules: int


@event
class AiActionsDeferred(CallEvent):
    EVENT = "ai_actions_deferred"
    count: int  # post_process: applied once the reply that answers the tool result has played
