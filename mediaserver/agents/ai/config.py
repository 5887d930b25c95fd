"""What the conversation loop needs from an `ai` verb, parsed and checked once.

Theory of operation: `AiSessionConfig.from_params(ai)` takes the verb's raw object (`prompt`,
`post_prompt`, `params`, `languages`, `hints`, `pronounce`, `global_data`, `SWAIG`…; see
docs/swml-contract.md §3) and returns plain values: the system prompt, LLM knobs, `TurnParams` for
the turn manager, greeting, fillers, hint rules and pronounce rules. The prompt and post_prompt
are rendered by an injected `render_prompt(prompt, pom_format)` callable (the app wires the
SDK-exact renderer of SWAIG, which honours `params.pom_format`); the fallback here renders
markdown simply. `params.conscience` follows the base prompt. Both stay template text: the
session expands `${…}` per request against the variables of the moment. Bad values never stop
the call: each one is replaced by its default and named in `warnings`
(`params.end_of_speech_timeout: expected a number, got 'soon'; using 700`), which the session
logs on the call; a number out of range is clamped. The keys and their ranges
are the `_PARAMS` and `_PROMPT_KNOBS` field tables (`mediaserver.fields`). Durations are
milliseconds, as in SWML.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mediaserver.agents.ai.conversations import SAVE_SUMMARY_PROMPT
from mediaserver.agents.ai.features import AiFeatures, read_features
from mediaserver.agents.ai.languages import Language, read_languages
from mediaserver.agents.ai.ops import AiOps, read_ops
from mediaserver.agents.ai.timing import AiTiming, read_timing
from mediaserver.agents.ai.turn_taking import TurnTakingParams, read_turn_taking
from mediaserver.fields import MISSING, Field, Table, check
from mediaserver.pipeline.asr import HintRule, parse_hints
from mediaserver.pipeline.llm import LlmSettings
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
    quick_stops: int = 3  # speech_gen_quick_stops: a reply's first clauses cut at , ; : for early audio
    global_data: dict[str, Any] = field(default_factory=dict)
    convo: list[dict[str, str]] = field(default_factory=list)
    sliding_window: int = 0
    recovery: dict[str, str] = field(default_factory=lambda: dict(RECOVERY_PHRASES))
    # initial_sleep_ms, speak_when_spoken_to, hard_stop_*, ai_volume, vad_config, direction,
    # outbound_attention_timeout (agents/ai/timing.py)
    timing: AiTiming = field(default_factory=AiTiming)
    # pause mode, function gates, transparent barge, interruption notes (agents/ai/turn_taking.py)
    turn_taking: TurnTakingParams = field(default_factory=TurnTakingParams)
    # background_file*, hold_on_process, tts_number_format, asr_smart_format, openai_asr_engine,
    # thinking, inner dialog, cache_mode (agents/ai/features.py)
    features: AiFeatures = field(default_factory=AiFeatures)
    # accounting, debug webhook/logs/readouts, conversation_id/save_conversation, languages_enabled (ops.py)
    ops: AiOps = field(default_factory=AiOps)
    languages: list[Language] = field(default_factory=list)  # ai.languages (languages.py)
    warnings: list[str] = field(default_factory=list)

    def llm_settings(self, default_model: str, timeout_s: float, first_token_timeout_s: float) -> LlmSettings:
        """The document's model and knobs over [llm]'s model and timeouts (the server and `mediaserver chat`)."""
        return LlmSettings(
            model=self.model or default_model,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            timeout_s=timeout_s,
            first_token_timeout_s=first_token_timeout_s,
        )

    @classmethod
    def from_params(
        cls,
        ai: dict[str, Any],
        *,
        render_prompt: Callable[..., str] | None = None,  # (prompt object, pom_format) -> text
        default_model: str = "",
    ) -> AiSessionConfig:
        warnings: list[str] = []
        params = ai.get("params") if isinstance(ai.get("params"), dict) else {}
        assert isinstance(params, dict)
        prompt_obj = ai.get("prompt") if isinstance(ai.get("prompt"), dict) else {}
        assert isinstance(prompt_obj, dict)
        custom = render_prompt or render_prompt_simply
        pom_format = "xml" if params.get("pom_format") == "xml" else "markdown"

        def render(obj: dict[str, Any]) -> str:
            try:
                return str(custom(obj, pom_format))
            except (ValueError, TypeError, KeyError) as exc:  # a bad POM: say so, speak from the simple form
                warnings.append(f"prompt: {exc}; rendered without formatting")
                return render_prompt_simply(obj)

        p = _read(_PARAMS, params, "params", warnings)
        knobs = _read(_PROMPT_KNOBS, prompt_obj, "prompt", warnings)
        turn = TurnParams(
            end_of_speech_ms=int(p["end_of_speech_timeout"]),
            speech_event_timeout_ms=int(p["speech_event_timeout"]),
            first_word_timeout_ms=int(p["first_word_timeout"]),
            speech_timeout_ms=int(p["speech_timeout"]) or 600_000,
            attention_timeout_ms=int(p["attention_timeout"]),
            inactivity_timeout_ms=int(p["inactivity_timeout"]),
            enable_barge=_barge_enabled(params.get("enable_barge", True)),
            barge_min_words=int(p["barge_min_words"]),
            barge_match=p["barge_match_string"],
            interrupt_on_noise=p["interrupt_on_noise"],
            digit_timeout_ms=int(p["digit_timeout"]),
            digit_terminators=p["digit_terminators"],
            turn_detection=p["enable_turn_detection"],  # on by default, as on the platform
            turn_detection_ms=int(p["turn_detection_timeout"]),
        )
        languages = ai.get("languages") if isinstance(ai.get("languages"), list) else []
        first = languages[0] if languages and isinstance(languages[0], dict) else {}
        speech_fillers = _strings(first.get("speech_fillers") or first.get("fillers") or [])
        function_fillers = _strings(first.get("function_fillers") or first.get("fillers") or [])
        hotwords, rules = read_hints(ai.get("hints") or [], warnings)
        pronounce = [r for r in ai.get("pronounce") or [] if isinstance(r, dict) and "replace" in r and "with" in r]
        post = ai.get("post_prompt")
        convo = [m for m in params.get("convo") or [] if isinstance(m, dict) and m.get("role") and "content" in m]
        ops = read_ops(params, warnings)
        return cls(
            prompt=_with_conscience(render(prompt_obj), params.get("conscience")),
            # save_conversation needs no post_prompt of its own: the conversation is summarized anyway
            post_prompt=render(post)
            if isinstance(post, dict)
            else (SAVE_SUMMARY_PROMPT if ops.save_conversation else ""),
            model=p["ai_model"] or default_model,
            temperature=_float(knobs.get("temperature") if "temperature" in prompt_obj else p.get("temperature")),
            top_p=_float(knobs.get("top_p")),
            max_tokens=_int(
                knobs["max_tokens"]
                if "max_tokens" in prompt_obj
                else (p["max_response_tokens"] if "max_response_tokens" in params else None)
            ),
            presence_penalty=_float(knobs.get("presence_penalty")),
            frequency_penalty=_float(knobs.get("frequency_penalty")),
            turn=turn,
            static_greeting=p["static_greeting"],
            static_greeting_no_barge=p["static_greeting_no_barge"],
            wait_for_user=p["wait_for_user"],
            attention_timeout_prompt=p["attention_timeout_prompt"],
            energy_level=float(int(p["energy_level"])),
            transparent_barge=p["transparent_barge"],
            speech_fillers=speech_fillers,
            function_fillers=function_fillers,
            hotwords=hotwords,
            hint_rules=rules,
            pronounce=pronounce,
            quick_stops=int(p["speech_gen_quick_stops"]),
            global_data=dict(ai["global_data"]) if isinstance(ai.get("global_data"), dict) else {},
            convo=[{"role": str(m["role"]), "content": str(m["content"])} for m in convo],
            sliding_window=int(p["conversation_sliding_window"]),
            timing=read_timing(params, warnings),
            turn_taking=read_turn_taking(params, warnings),
            features=read_features(params, warnings),
            ops=ops,
            languages=read_languages(ai, warnings),
            warnings=warnings,
        )


def _with_conscience(prompt: str, conscience: Any) -> str:
    """`params.conscience` (a guard prompt) goes after the base prompt, before any step block."""
    if not isinstance(conscience, str) or not conscience.strip():
        return prompt
    return f"{prompt}\n\n{conscience}" if prompt else conscience


def render_prompt_simply(prompt: dict[str, Any], pom_format: str = "markdown") -> str:
    """`text` as is, or POM sections as markdown (headings, body, bullets, subsections)."""
    del pom_format  # the simple form is markdown only
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


def _ms(default: int, lo: int, hi: int) -> Field:
    """A whole number knob; a fraction is cut (SWML numbers may come as 700.0 or "700")."""
    return Field("num", default, lo=lo, hi=hi)


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"expected a regular expression, got {value!r} ({exc})"
    return None


_PARAMS = Table(
    {
        "end_of_speech_timeout": _ms(700, 250, 10_000),
        "speech_event_timeout": _ms(1400, 0, 10_000),
        "first_word_timeout": _ms(1000, 0, 10_000),
        "speech_timeout": _ms(60_000, 0, 600_000),
        "attention_timeout": _ms(0, 0, 600_000),
        "inactivity_timeout": _ms(600_000, 0, 3_600_000),
        "barge_min_words": _ms(1, 1, 99),
        "barge_match_string": Field("str", "", check=_regex),
        "interrupt_on_noise": Field("bool", False),
        "digit_timeout": _ms(3000, 0, 30_000),
        "digit_terminators": Field("str", ""),
        "enable_turn_detection": Field("bool", True),
        "turn_detection_timeout": _ms(250, 0, 10_000),
        "ai_model": Field("str", ""),
        "temperature": Field("num", lo=0.0, hi=2.0),
        "max_response_tokens": _ms(256, 1, 16_384),
        "static_greeting": Field("str", ""),
        "static_greeting_no_barge": Field("bool", False),
        "wait_for_user": Field("bool", False),
        "attention_timeout_prompt": Field("str", AiSessionConfig.attention_timeout_prompt),
        "energy_level": _ms(52, 0, 100),
        "transparent_barge": Field("bool", True),
        "conversation_sliding_window": _ms(0, 0, 10_000),
        "speech_gen_quick_stops": _ms(3, 0, 10),
    },
    unknown="ignore",  # the rest of `params` is read elsewhere, or is the platform's
    loose=True,
)
_PROMPT_KNOBS = Table(
    {
        "temperature": Field("num", lo=0.0, hi=2.0),
        "top_p": Field("num", lo=0.0, hi=1.0),
        "max_tokens": _ms(256, 1, 16_384),
        "presence_penalty": Field("num", lo=-2.0, hi=2.0),
        "frequency_penalty": Field("num", lo=-2.0, hi=2.0),
    },
    unknown="ignore",  # text, pom
    loose=True,
)


def _read(table: Table, source: dict[str, Any], path: str, warnings: list[str]) -> dict[str, Any]:
    """The table's values; a bad one becomes its default (a number out of range: the bound), with a warning."""
    values, errors = check(table, source, path, repair=True)
    for error in errors:
        using = None if error.repaired is MISSING else error.repaired
        warnings.append(f"{error}; using {using!r}")
    return values


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
