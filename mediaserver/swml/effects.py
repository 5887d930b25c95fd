"""Effects: what the SWML interpreter asks the call to do, and what the call answers.

Theory of operation: the interpreter never touches a call. Each `start()`/`resume()` returns one
`Effect`; the executor (kernel) carries it out against the call and then calls
`resume(result)` with an `EffectResult` (or None when the effect has nothing to report). Control
verbs (`label`, `return`, later `goto`/`cond`/`execute`...) never show up here: they run inside
the interpreter.

Every effect is a frozen dataclass built with keywords and carries `path`, the JSON path of the
verb that produced it, so the executor's logs and errors point into the document. Units are in
the names: milliseconds for durations, seconds only where SWML itself says seconds
(`answer.max_duration`), decibels for volume.

- `Answer`      answer the inbound leg (no-op if already answered).
- `Play`        play `items` in order; `auto_answer` answers first if the call is not up yet.
- `Sleep`       wait `duration_ms` (-1: until the call ends).
- `Hangup`      end the call with `reason` (hangup | busy | decline). The script is over.
- `Unsupported` a schema verb this runner does not execute: log it, set `<verb>_result`, resume.
- `Finished`    the script ran out of verbs (or `return`ed from main): the caller hangs up.
- `Request`     an HTTP request (`request` verb); answered with `VerbResult` (request_* vars).
- `FetchSwml`   fetch SWML from a URL for `execute`/`transfer`; answered with `SwmlFetched`
                or `FetchFailed`.
- `Prompt`, `Record`, `RecordCall`, `StopRecordCall`, `SendDigits`, `Connect`, `SipRefer`:
  voice verbs with their params already expanded (no `${…}` left); answered with `VerbResult`
  whose variables land in `vars`.
- `KernelEffect` any other effect: one declared by a kernel verb module beside its builder and
  handler (mediaserver/kernel/verbs/registry.py; user_event, denoise, detect_machine, tap…),
  whose builder reaches the interpreter as `Interpreter(..., builders=...)`. This package never
  names those classes: it only needs their `path`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from mediaserver.swml.play_urls import PlayFile, PlayItem, PlayRing, PlaySay, PlaySilence

__all__ = [
    "Answer",
    "Effect",
    "EffectResult",
    "Finished",
    "Hangup",
    "Play",
    "PlayFile",
    "PlayItem",
    "PlayRing",
    "PlaySay",
    "PlaySilence",
    "Played",
    "Sleep",
    "Unsupported",
    "VerbResult",
]

SLEEP_FOREVER_MS = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    path: str
    max_duration_s: int | None = None  # SWML default 14400 s applies when None
    codecs: str | None = None  # comma-separated offer order, e.g. "PCMU,PCMA"


@dataclass(frozen=True, slots=True, kw_only=True)
class Play:
    path: str
    items: tuple[PlayItem, ...]
    volume_db: float = 0.0
    auto_answer: bool = True
    status_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sleep:
    path: str
    duration_ms: int  # SLEEP_FOREVER_MS: until the call ends


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup:
    path: str
    reason: str = "hangup"


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsupported:
    path: str
    verb: str
    params: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Ai:
    """Run a voice agent (`ai`, or `amazon_bedrock` as a reduced `ai`) until it ends."""

    path: str
    verb: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class AiSidecar:
    """Attach an observer LLM to the call (`ai_sidecar`); the document goes on at once."""

    path: str
    params: dict[str, Any]  # the verb body as written (the sidecar validates it)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    path: str  # the section that ran out, or the `return` that ended the script


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    path: str
    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | dict[str, Any] | None = None
    timeout_ms: int = 0  # 0: the executor's default
    connect_timeout_ms: int = 0
    save_variables: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchSwml:
    """Fetch a document for `execute` (nest, returns) or `transfer` (replace, never returns)."""

    path: str
    url: str
    purpose: str  # "execute" | "transfer"
    params: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)  # vars sent in the POST body


@dataclass(frozen=True, slots=True, kw_only=True)
class Prompt:
    path: str
    items: tuple[PlayItem, ...]
    volume_db: float = 0.0
    max_digits: int = 1
    terminators: str = ""
    digit_timeout_ms: int = 5000
    initial_timeout_ms: int = 5000
    speech: bool = False  # any speech_* param given: speech input is wanted
    speech_timeout_ms: int | None = None
    speech_end_timeout_ms: int | None = None
    speech_language: str | None = None
    speech_hints: tuple[str, ...] = ()
    speech_engine: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    path: str
    stereo: bool = False
    format: str = "wav"
    direction: str = "speak"
    terminators: str = "#"
    beep: bool = False
    input_sensitivity: float = 44.0
    initial_timeout_ms: int = 4000
    end_silence_timeout_ms: int = 5000
    max_length_ms: int | None = None
    status_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordCall:
    path: str
    control_id: str | None = None
    stereo: bool = False
    format: str = "wav"
    direction: str = "both"
    beep: bool = False
    max_length_ms: int | None = None
    status_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRecordCall:
    path: str
    control_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SendDigits:
    path: str
    digits: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Connect:
    path: str
    params: dict[str, Any]  # expanded connect params (to / serial / parallel, from, timeout…)


@dataclass(frozen=True, slots=True, kw_only=True)
class SipRefer:
    path: str
    to_uri: str
    username: str | None = None
    password: str | None = None


class KernelEffect(Protocol):
    """An effect declared by a kernel verb module (a frozen dataclass): all this package reads is `path`."""

    @property
    def path(self) -> str: ...


Effect = (
    Answer
    | Play
    | Sleep
    | Hangup
    | Ai
    | AiSidecar
    | Unsupported
    | Finished
    | Request
    | FetchSwml
    | Prompt
    | Record
    | RecordCall
    | StopRecordCall
    | SendDigits
    | Connect
    | SipRefer
    | KernelEffect
)

# Effects after which the script is over: resume() raises.
FINAL_EFFECTS: tuple[type[Hangup], type[Finished]] = (Hangup, Finished)


@dataclass(frozen=True, slots=True)
class AiFinished:
    """What an `ai` verb left behind: `ai_result` ("success" | "failed") and any variables to set."""

    result: str
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Played:
    """Result of `Play`: completed is False when barge-in, hangup or an error cut it short."""

    completed: bool


@dataclass(frozen=True, slots=True)
class VerbResult:
    """Variables a verb leaves behind (prompt_value, record_url, request_result, …)."""

    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SwmlFetched:
    """Answer to `FetchSwml`: the document the URL returned (already validated)."""

    document: Any  # mediaserver.swml.document.Document (typed Any: effects stays a leaf module)


@dataclass(frozen=True, slots=True)
class FetchFailed:
    error: str


EffectResult = Played | AiFinished | VerbResult | SwmlFetched | FetchFailed
