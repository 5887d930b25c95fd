"""When the agent may speak first, when the AI must stop, how loud it is, how the listener hears.

Theory of operation: `read_timing(params, warnings)` checks the `ai.params` keys below with the
same field tables as the rest of the config (a bad value becomes the default, a number out of
range the bound, and the warning names the param: the session logs it as `ai_config_warning`,
the call goes on) and returns an `AiTiming`:

* `initial_sleep_ms`: the opening (static greeting or first reply) waits this long on the
  call's tick clock (the 20 ms frames sent to the caller, which run whether or not the caller's
  RTP has arrived yet).
* `speak_when_spoken_to`: no opening at all and no attention nudges: the agent only answers.
* `hard_stop_time` ("1h45m30s", "90s", "2m" or bare seconds): after that long the agent stops
  what it is saying, speaks `hard_stop_prompt` (not interruptible) and the AI ends.
* `ai_volume` (dB, -50..50): gain on every agent chunk (LLM replies and cached phrases alike).
* `vad_config` ("thr[:frame_ms]"): `thr` (0..100) is the speech probability, in percent, the
  neural confirmer must reach for caller voice over the agent; `frame_ms` is how much voice makes
  an onset (rounded up to 20 ms frames). The schema gives only the shape; this reading is ours.
* `direction` ("inbound"/"outbound", else the call's own) and `outbound_attention_timeout`
  (10000..600000 ms, default 120000): on an outbound call the attention timeout is that one.

`Clockwork` is the per-session state: `advance(ms)` per frame sent, then `opening_due()` and
`hard_stop_due()` say, once each, when the AI's time passes the initial sleep and the hard stop.
`Louder` wraps the reply synthesizer and `louder(chunk, db)` scales a cached phrase as it is
queued: the phrase cache is shared by calls, so it keeps the unscaled audio.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from mediaserver.audio.dsp import apply_gain_db
from mediaserver.events import CallEvent, event
from mediaserver.fields import MISSING, Field, Table, check
from mediaserver.pipeline.tts import TtsChunk
from mediaserver.pipeline.turn import TurnParams

__all__ = ["AiHardStop", "AiTiming", "Clockwork", "Louder", "louder", "parse_duration_ms", "read_timing"]

FRAME_MS = 20


@event
class AiHardStop(CallEvent):
    """hard_stop_time reached: the agent was cut, says hard_stop_prompt, and the AI ends."""

    EVENT = "ai_hard_stop"
    elapsed_ms: int  # since the AI started
    prompt: str


@dataclass(frozen=True)
class AiTiming:
    initial_sleep_ms: int = 0
    speak_when_spoken_to: bool = False
    hard_stop_ms: int = 0  # 0: no hard stop
    hard_stop_prompt: str = ""
    ai_volume_db: float = 0.0
    confirm_threshold: float | None = None  # vad_config thr / 100; None: the listener's default
    onset_ms: int | None = None  # vad_config frame_ms; None: the turn manager's default
    direction: str = ""  # "" = the call's own
    outbound_attention_timeout_ms: int = 120_000

    def turn_for(self, turn: TurnParams, call_direction: str) -> TurnParams:
        """The turn parameters with this config's onset, outbound attention and no-nudge rules."""
        if self.onset_ms is not None:
            turn = replace(turn, onset_frames=max(1, -(-self.onset_ms // FRAME_MS)))
        if (self.direction or call_direction) == "outbound":
            turn = replace(turn, attention_timeout_ms=self.outbound_attention_timeout_ms)
        if self.speak_when_spoken_to:
            turn = replace(turn, attention_timeout_ms=0)  # a nudge is the agent speaking first
        return turn


_DURATION = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s?)?\s*$", re.IGNORECASE)


def parse_duration_ms(value: Any) -> int | None:
    """ "1h45m30s", "90s", "2m", "30" or a number (seconds) -> milliseconds; None when not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value * 1000) if value >= 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    match = _DURATION.match(value)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = match.groups()
    return int((int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)) * 1000)


def _direction(value: str) -> str | None:
    return None if value.strip().lower() in ("inbound", "outbound") else f"expected inbound or outbound, got {value!r}"


_TIMING = Table(
    {
        "initial_sleep_ms": Field("num", 0, lo=0, hi=300_000),
        "speak_when_spoken_to": Field("bool", False),
        "hard_stop_prompt": Field("str", ""),
        "ai_volume": Field("num", 0, lo=-50, hi=50),
        "direction": Field("str", "", check=_direction),
        "outbound_attention_timeout": Field("num", 120_000, lo=10_000, hi=600_000),
        "vad_config": Field("str", ""),
    },
    unknown="ignore",
    loose=True,
)


def read_timing(params: dict[str, Any], warnings: list[str]) -> AiTiming:
    values, errors = check(_TIMING, params, "params", repair=True)
    for error in errors:
        using = None if error.repaired is MISSING else error.repaired
        warnings.append(f"{error}; using {using!r}")
    hard_stop_ms = 0
    if params.get("hard_stop_time") not in (None, ""):
        parsed = parse_duration_ms(params["hard_stop_time"])
        if parsed is None:
            warnings.append(
                f"params.hard_stop_time: expected a duration like '1h45m30s', got {params['hard_stop_time']!r}; "
                "no hard stop"
            )
        else:
            hard_stop_ms = parsed
    threshold, onset = _vad_config(values["vad_config"], warnings)
    return AiTiming(
        initial_sleep_ms=int(values["initial_sleep_ms"]),
        speak_when_spoken_to=bool(values["speak_when_spoken_to"]),
        hard_stop_ms=hard_stop_ms,
        hard_stop_prompt=str(values["hard_stop_prompt"]),
        ai_volume_db=float(values["ai_volume"]),
        confirm_threshold=threshold,
        onset_ms=onset,
        direction=str(values["direction"]).strip().lower(),
        outbound_attention_timeout_ms=int(values["outbound_attention_timeout"]),
    )


def _vad_config(text: str, warnings: list[str]) -> tuple[float | None, int | None]:
    """ "thr[:frame_ms]" -> (confirm threshold 0..1, onset ms); a bad part is named and ignored."""
    if not text.strip():
        return None, None
    thr_text, _, frame_text = text.partition(":")
    threshold: float | None = None
    onset: int | None = None
    try:
        thr = float(thr_text)
        if not 0 <= thr <= 100:
            raise ValueError
        threshold = thr / 100.0
    except ValueError:
        warnings.append(f"params.vad_config: threshold must be 0..100 in 'thr[:frame_ms]', got {text!r}; ignored")
    if frame_text.strip():
        try:
            onset = int(frame_text)
            if not FRAME_MS <= onset <= 1000:
                raise ValueError
        except ValueError:
            warnings.append(f"params.vad_config: frame_ms must be 20..1000 in 'thr[:frame_ms]', got {text!r}; ignored")
            onset = None
    return threshold, onset


class Clockwork:
    """The opening and the hard stop, each due once, on the AI's elapsed time (frames sent)."""

    def __init__(self, timing: AiTiming, *, opens: bool) -> None:
        self.timing = timing
        self.elapsed_ms = 0
        self._opening = opens and not timing.speak_when_spoken_to
        self._hard_stop = timing.hard_stop_ms > 0
        self.stopping = False  # after the hard stop: the caller's turns are no longer answered

    def advance(self, ms: int) -> None:
        self.elapsed_ms += ms

    def opening_due(self) -> bool:
        if self._opening and self.elapsed_ms >= self.timing.initial_sleep_ms:
            self._opening = False
            return True
        return False

    def hard_stop_due(self) -> bool:
        if self._hard_stop and self.elapsed_ms >= self.timing.hard_stop_ms:
            self._hard_stop = False
            self.stopping = True
            return True
        return False


def louder(chunk: TtsChunk, db: float) -> TtsChunk:
    return chunk if not db else replace(chunk, pcm=apply_gain_db(chunk.pcm, db))


class Louder:
    """A synthesizer whose every chunk carries the `ai_volume` gain (the wrapped one is unchanged)."""

    def __init__(self, tts: Any, db: float) -> None:
        self.tts = tts
        self.db = db

    @property
    def sample_rate(self) -> int:
        return int(self.tts.sample_rate)

    async def stream(self, text: str) -> AsyncIterator[TtsChunk]:
        async for chunk in self.tts.stream(text):
            yield louder(chunk, self.db)
