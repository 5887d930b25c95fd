"""What the conversation loop needs from an `ai` verb, parsed and checked once.

Theory of operation: `AiSessionConfig.from_params(ai)` takes the verb's raw object (`prompt`,
`post_prompt`, `params`, `languages`, `hints`, `pronounce`, `global_data`, `SWAIG`…; see
SWML_CONTRACT.md §3) and returns plain values: the system prompt, LLM knobs, `TurnParams` for
the turn manager, greeting, fillers, hint rules and pronounce rules. POM prompts are rendered by
an injected `render_prompt` callable (the SDK-exact renderer lives in SWAIG); the fallback here
renders markdown simply. Bad values never stop the call: each one is replaced by its default and
named in `warnings` (`params.end_of_speech_timeout: 'soon' is not a number; using 700`), which
the session logs on the call. Durations are milliseconds, as in SWML.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mediaserver.pipeline.asr import HintRule, parse_hints
from mediaserver.pipeline.turn import TurnParams

RECOVERY_PHRASES = {
    "llm_timeout": "Sorry, that is taking me longer than it should. Could you say that again?",
    "llm_error": "Sorry, I ran into a problem. Could you say that again?",
    "empty_transcript": "Sorry, I didn't catch that. Could you say it again?",
    "tool_failure": "Sorry, I couldn't complete that just now.",
    "tts_failure": "Sorry, I had trouble speaking. Let me try again.",
}


@dataclass
class AiSessionConfig:
    prompt: str
    post_prompt: str = ""
    model: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    turn: TurnParams = field(default_factory=TurnParams)
    static_greeting: str = ""
    static_greeting_no_barge: bool = False
    wait_for_user: bool = False
    attention_timeout_prompt: str = "The caller has been silent for a while. Check that they are still there."
    energy_level: float = 52.0
    transparent_barge: bool = True
    speech_fillers: list[str] = field(default_factory=list)
    function_fillers: list[str] = field(default_factory=list)
    hotwords: list[str] = field(default_factory=list)
    hint_rules: list[HintRule] = field(default_factory=list)
    pronounce: list[dict[str, Any]] = field(default_factory=list)
    global_data: dict[str, Any] = field(default_factory=dict)
    convo: list[dict[str, str]] = field(default_factory=list)
    sliding_window: int = 0
    recovery: dict[str, str] = field(default_factory=lambda: dict(RECOVERY_PHRASES))
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_params(
        cls,
        ai: dict[str, Any],
        *,
        render_prompt: Callable[[dict[str, Any]], str] | None = None,
        default_model: str = "",
    ) -> AiSessionConfig:
        warnings: list[str] = []
        params = ai.get("params") if isinstance(ai.get("params"), dict) else {}
        assert isinstance(params, dict)
        prompt_obj = ai.get("prompt") if isinstance(ai.get("prompt"), dict) else {}
        assert isinstance(prompt_obj, dict)
        custom = render_prompt or render_prompt_simply

        def render(obj: dict[str, Any]) -> str:
            try:
                return custom(obj)
            except (ValueError, TypeError, KeyError) as exc:  # a bad POM: say so, speak from the simple form
                warnings.append(f"prompt: {exc}; rendered without formatting")
                return render_prompt_simply(obj)

        reader = _Reader(params, warnings)
        knobs = _Reader(prompt_obj, warnings, "prompt")
        turn = TurnParams(
            end_of_speech_ms=reader.get_int("end_of_speech_timeout", 700, 250, 10_000),
            speech_event_timeout_ms=reader.get_int("speech_event_timeout", 1400, 0, 10_000),
            first_word_timeout_ms=reader.get_int("first_word_timeout", 1000, 0, 10_000),
            speech_timeout_ms=reader.get_int("speech_timeout", 60_000, 0, 600_000) or 600_000,
            attention_timeout_ms=reader.get_int("attention_timeout", 0, 0, 600_000),
            inactivity_timeout_ms=reader.get_int("inactivity_timeout", 600_000, 0, 3_600_000),
            enable_barge=_barge_enabled(params.get("enable_barge", True)),
            barge_min_words=reader.get_int("barge_min_words", 1, 1, 99),
            barge_match=reader.get_regex("barge_match_string"),
            interrupt_on_noise=reader.get_bool("interrupt_on_noise", False),
            digit_timeout_ms=reader.get_int("digit_timeout", 3000, 0, 30_000),
            digit_terminators=reader.get_str("digit_terminators", ""),
        )
        languages = ai.get("languages") if isinstance(ai.get("languages"), list) else []
        first = languages[0] if languages and isinstance(languages[0], dict) else {}
        speech_fillers = _strings(first.get("speech_fillers") or first.get("fillers") or [])
        function_fillers = _strings(first.get("function_fillers") or first.get("fillers") or [])
        hotwords, rules = read_hints(ai.get("hints") or [], warnings)
        pronounce = [r for r in ai.get("pronounce") or [] if isinstance(r, dict) and "replace" in r and "with" in r]
        post = ai.get("post_prompt")
        convo = [m for m in params.get("convo") or [] if isinstance(m, dict) and m.get("role") and "content" in m]
        return cls(
            prompt=render(prompt_obj),
            post_prompt=render(post) if isinstance(post, dict) else "",
            model=reader.get_str("ai_model", "") or default_model,
            temperature=knobs.float_or_none("temperature", 0.0, 2.0)
            if "temperature" in prompt_obj
            else reader.float_or_none("temperature", 0.0, 2.0),
            top_p=knobs.float_or_none("top_p", 0.0, 1.0),
            max_tokens=knobs.get_int("max_tokens", 256, 1, 16_384)
            if "max_tokens" in prompt_obj
            else (reader.get_int("max_response_tokens", 256, 1, 16_384) if "max_response_tokens" in params else None),
            presence_penalty=knobs.float_or_none("presence_penalty", -2.0, 2.0),
            frequency_penalty=knobs.float_or_none("frequency_penalty", -2.0, 2.0),
            turn=turn,
            static_greeting=reader.get_str("static_greeting", ""),
            static_greeting_no_barge=reader.get_bool("static_greeting_no_barge", False),
            wait_for_user=reader.get_bool("wait_for_user", False),
            attention_timeout_prompt=reader.get_str("attention_timeout_prompt", cls.attention_timeout_prompt),
            energy_level=float(reader.get_int("energy_level", 52, 0, 100)),
            transparent_barge=reader.get_bool("transparent_barge", True),
            speech_fillers=speech_fillers,
            function_fillers=function_fillers,
            hotwords=hotwords,
            hint_rules=rules,
            pronounce=pronounce,
            global_data=dict(ai["global_data"]) if isinstance(ai.get("global_data"), dict) else {},
            convo=[{"role": str(m["role"]), "content": str(m["content"])} for m in convo],
            sliding_window=reader.get_int("conversation_sliding_window", 0, 0, 10_000),
            warnings=warnings,
        )


def render_prompt_simply(prompt: dict[str, Any]) -> str:
    """`text` as is, or POM sections as markdown (headings, body, bullets, subsections)."""
    if isinstance(prompt.get("text"), str):
        return str(prompt["text"])
    lines: list[str] = []

    def section(sec: dict[str, Any], level: int) -> None:
        if sec.get("title"):
            lines.append(f"{'#' * level} {sec['title']}")
        if sec.get("body"):
            lines.append(str(sec["body"]))
        for i, bullet in enumerate(sec.get("bullets") or [], 1):
            lines.append(f"{i}. {bullet}" if sec.get("numberedBullets") else f"- {bullet}")
        for sub in sec.get("subsections") or []:
            if isinstance(sub, dict):
                section(sub, level + 1)
        lines.append("")

    for sec in prompt.get("pom") or []:
        if isinstance(sec, dict):
            section(sec, 2)
    return "\n".join(lines).strip()


def read_hints(hints: Any, warnings: list[str]) -> tuple[list[str], list[HintRule]]:
    """`hints` -> (hotwords, rewrite rules); a bad entry is dropped with a warning naming it."""
    if not isinstance(hints, list):
        warnings.append(f"hints: expected a list, got {type(hints).__name__}; ignored")
        return [], []
    words: list[str] = []
    rules: list[HintRule] = []
    for index, hint in enumerate(hints):
        try:
            w, r = parse_hints([hint])
        except ValueError as exc:
            warnings.append(str(exc).replace("hints[0]", f"hints[{index}]") + "; ignored")
            continue
        words += w
        rules += r
    return words, rules


def _barge_enabled(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "")
    return bool(value)


def _strings(items: Any) -> list[str]:
    return [str(x) for x in items if isinstance(x, str) and x.strip()] if isinstance(items, list) else []


class _Reader:
    """Reads one typed key with a default, a range and a warning instead of an exception."""

    def __init__(self, source: dict[str, Any], warnings: list[str], prefix: str = "params") -> None:
        self.source, self.warnings, self.prefix = source, warnings, prefix

    def _bad(self, key: str, value: Any, why: str, default: Any) -> Any:
        self.warnings.append(f"{self.prefix}.{key}: {value!r} {why}; using {default!r}")
        return default

    def get_int(self, key: str, default: int, lo: int, hi: int) -> int:
        value = self.source.get(key, default)
        try:
            number = int(float(value)) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            return int(self._bad(key, value, "is not a number", default))
        if not lo <= number <= hi:
            return int(self._bad(key, value, f"is outside {lo}..{hi}", min(max(number, lo), hi)))
        return number

    def float_or_none(self, key: str, lo: float, hi: float) -> float | None:
        if key not in self.source:
            return None
        value = self.source[key]
        try:
            number = float(value)
        except (TypeError, ValueError):
            return self._bad(key, value, "is not a number", None)  # type: ignore[no-any-return]
        if not lo <= number <= hi:
            return float(self._bad(key, value, f"is outside {lo}..{hi}", min(max(number, lo), hi)))
        return number

    def get_bool(self, key: str, default: bool) -> bool:
        value = self.source.get(key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        if isinstance(value, int):
            return bool(value)
        return bool(self._bad(key, value, "is not a boolean", default))

    def get_str(self, key: str, default: str) -> str:
        value = self.source.get(key, default)
        if isinstance(value, str):
            return value
        return str(self._bad(key, value, "is not a string", default))

    def get_regex(self, key: str) -> str:
        value = self.get_str(key, "")
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                return str(self._bad(key, value, f"is not a regular expression ({exc})", ""))
        return value
