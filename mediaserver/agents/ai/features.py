"""The `ai.params` keys of the optional features: background bed, hold on process, spoken phone
numbers, transcript formatting, a remote recognizer, thinking, inner dialog and response caching.

Theory of operation: `read_features(params, warnings)` checks these keys with the same field
tables as the rest of the config (`mediaserver.fields`: a bad value becomes its default, a
number out of range the bound, and the warning names the param; the session logs it as
`ai_config_warning` and the call goes on) and returns one frozen `AiFeatures`. The modules that
act on them read only this value:

* `background_file` (a path, file:// or http(s) URL), `background_file_loops` (plays in all;
  absent or null: until the AI ends), `background_file_volume` (dB, -50..50): the bed under the
  whole conversation (`agents/ai/background.py`).
* `hold_on_process`: `hold_music` loops while a SWAIG function runs (`agents/ai/background.py`).
* `tts_number_format` ("international" `+12345678901` / "national" `(234) 567-8901`): how the
  agent's phone numbers are spoken (`pipeline/phone_numbers.py`); unset, they are spoken as the
  model wrote them.
* `asr_smart_format`: numbers, money, percentages, times and dates written as such in the
  caller's transcripts (`pipeline/smart_format.py`).
* `openai_asr_engine`: the model name sent to the OpenAI-compatible `/audio/transcriptions`
  endpoint that replaces the local recognizer for this call (`pipeline/engines/openai_asr.py`);
  the schema's default `gcloud_speech_v2_async` (a platform engine) means the local one.
* `enable_thinking`, `thinking_model`, `enable_inner_dialog`, `inner_dialog_model`,
  `inner_dialog_prompt`, `inner_dialog_synced` (`agents/ai/inner_dialog.py`) and `cache_mode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mediaserver.fields import MISSING, Field, Table, check

__all__ = ["PLATFORM_ASR_DEFAULT", "AiFeatures", "read_features"]

PLATFORM_ASR_DEFAULT = "gcloud_speech_v2_async"  # the schema's default: no remote engine asked for
INNER_DIALOG_PROMPT = (
    "The assistant is intelligent and straightforward, does its job well and is not excessively polite."
)


@dataclass(frozen=True)
class AiFeatures:
    background_file: str = ""
    background_loops: int | None = None  # plays in all; None: until the AI ends
    background_volume_db: float = 0.0
    hold_on_process: bool = False
    hold_music: str = ""  # what hold_on_process plays (the `hold` action's music too)
    tts_number_format: str = ""  # "" (as written), "international" or "national"
    asr_smart_format: bool = False
    openai_asr_engine: str = ""  # "" = the local recognizer
    enable_thinking: bool = False
    thinking_model: str = ""  # "" = the conversation's model
    enable_inner_dialog: bool = False
    inner_dialog_model: str = ""  # "" = the conversation's model
    inner_dialog_prompt: str = INNER_DIALOG_PROMPT
    inner_dialog_synced: bool = False
    cache_mode: bool = False


_FEATURES = Table(
    {
        "background_file": Field("str", ""),
        "background_file_loops": Field("int", 0, lo=0, hi=1_000_000),
        "background_file_volume": Field("num", 0, lo=-50, hi=50),
        "hold_on_process": Field("bool", False),
        "hold_music": Field("str", ""),
        "tts_number_format": Field("str", "", choices=("international", "national")),
        "asr_smart_format": Field("bool", False),
        "openai_asr_engine": Field("str", ""),
        "enable_thinking": Field("bool", False),
        "thinking_model": Field("str", ""),
        "enable_inner_dialog": Field("bool", False),
        "inner_dialog_model": Field("str", ""),
        "inner_dialog_prompt": Field("str", INNER_DIALOG_PROMPT),
        "inner_dialog_synced": Field("bool", False),
        "cache_mode": Field("bool", False),
    },
    unknown="ignore",  # the rest of `params` is read elsewhere
    loose=True,
)


def read_features(params: dict[str, Any], warnings: list[str]) -> AiFeatures:
    source = dict(params)
    if source.get("background_file_loops") is None:
        source.pop("background_file_loops", None)  # null: loop until the AI ends (the schema's `undefined`)
    values, errors = check(_FEATURES, source, "params", repair=True)
    for error in errors:
        using = None if error.repaired is MISSING else error.repaired
        warnings.append(f"{error}; using {using!r}")
    loops = int(values["background_file_loops"])
    asr = str(values["openai_asr_engine"]).strip()
    return AiFeatures(
        background_file=str(values["background_file"]).strip(),
        background_loops=loops if loops > 0 else None,
        background_volume_db=float(values["background_file_volume"]),
        hold_on_process=bool(values["hold_on_process"]),
        hold_music=str(values["hold_music"]).strip(),
        tts_number_format=str(values["tts_number_format"]),
        asr_smart_format=bool(values["asr_smart_format"]),
        openai_asr_engine="" if asr == PLATFORM_ASR_DEFAULT else asr,
        enable_thinking=bool(values["enable_thinking"]),
        thinking_model=str(values["thinking_model"]).strip(),
        enable_inner_dialog=bool(values["enable_inner_dialog"]),
        inner_dialog_model=str(values["inner_dialog_model"]).strip(),
        inner_dialog_prompt=str(values["inner_dialog_prompt"]).strip() or INNER_DIALOG_PROMPT,
        inner_dialog_synced=bool(values["inner_dialog_synced"]),
        cache_mode=bool(values["cache_mode"]),
    )
