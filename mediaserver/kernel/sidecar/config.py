"""The `ai_sidecar` body: validation (errors name the field), defaults, and the system prompt.

Theory of operation: `SidecarConfig.from_body(body)` takes the verb's JSON exactly as SWML (or
the control API's `start`) gives it and returns a frozen config, or raises `SidecarConfigError`
whose message is the spec's text: `lang is required`, `sidecar requires both legs
(remote-caller and local-caller)`, or `<field>: <reason>` for a bad field (seed 002: "-ERR:
<field>: <reason>"). The top level is structural and fixed (an unknown key, or a tunable put
there instead of under `params`, is refused); `params` is validated strictly: every knob has a
type and range, strings that look like numbers are accepted on number fields (YAML and `${}`
leave those behind), and an unknown knob is refused. SWAIG function parameters may only use
the JSON-schema fields the platform's validator allows, and `sidecar_skip` is reserved.

`system_prompt(config, variables)` renders the operator prompt (text, POM `sections`, or
`{file}` read from disk) with the built-in job framing prepended, and expands `${…}` against
`prompt_variables(...)`: global_data, ai_agents_global_data, caller/destination numbers, local
time zone/date/time, session uuid and customer role.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mediaserver.swaig.pom import PomError, render_pom
from mediaserver.swaig.templates import expand

__all__ = [
    "LEGS",
    "SKIP_TOOL",
    "SidecarConfig",
    "SidecarConfigError",
    "SidecarParams",
    "prompt_variables",
    "system_prompt",
]

LEGS = ("remote-caller", "local-caller")
SKIP_TOOL = "sidecar_skip"
TOP_LEVEL = {
    "prompt",
    "lang",
    "model",
    "direction",
    "customer_role",
    "url",
    "SWAIG",
    "permissions",
    "global_data",
    "hints",
    "params",
    "action",
}
PERMISSIONS = ("swaig_allow_swml", "swaig_allow_settings", "swaig_set_global_data")
ALLOWED_PROPERTY_FIELDS = {"type", "description", "enum", "default", "items", "properties", "required"}
DEFAULT_MODEL = "gpt-4o-mini"

FRAMING = (
    "You are an AI sidecar: a silent observer of a live phone call between a customer and a human "
    "agent. You never speak on the call; the customer never sees your output. After each customer "
    "turn you either give the agent one short, actionable piece of advice (plain text, one or two "
    "sentences, addressed to the agent), or call the sidecar_skip tool when no advice is needed. "
    "Use the other tools when the operator's instructions call for them."
)
ASK_FRAMING = (
    "You are an AI sidecar observing a live phone call between a customer and a human agent. The "
    "agent is asking you a question directly. Answer it concisely from the conversation so far, "
    "using tools if they help. Do not skip; always answer."
)


class SidecarConfigError(ValueError):
    """A bad ai_sidecar body; the message is the spec's error text (without `-ERR: `)."""


@dataclass(frozen=True)
class SidecarParams:
    idle_timeout_ms: int = 200
    min_interval_ms: int = 0
    max_iters_per_tick: int = 5
    max_history_tokens: int = 8000
    act_on_channel: bool = True
    final_summary: bool = False
    ai_summary: bool = False
    ai_summary_prompt: str = ""
    live_events: bool = False
    verbose_utterances: bool = False
    speech_engine: str = "deepgram"
    speech_timeout: int | None = None
    vad_silence_ms: int | None = None
    vad_thresh: int | None = None
    debug_level: int = 0
    debug: bool = False


# knob -> (kind, lo, hi); kind "int" | "bool" | "str" | "enum:<a>|<b>"
_KNOBS: dict[str, tuple[str, int | None, int | None]] = {
    "idle_timeout_ms": ("int", 50, 5000),
    "min_interval_ms": ("int", 0, 60000),
    "max_iters_per_tick": ("int", 1, 20),
    "max_history_tokens": ("int", 1000, 200000),
    "act_on_channel": ("bool", None, None),
    "final_summary": ("bool", None, None),
    "ai_summary": ("bool", None, None),
    "ai_summary_prompt": ("str", None, None),
    "live_events": ("bool", None, None),
    "verbose_utterances": ("bool", None, None),
    "speech_engine": ("enum:deepgram|google", None, None),
    "speech_timeout": ("int", 0, 600000),
    "vad_silence_ms": ("int", 0, 60000),
    "vad_thresh": ("int", 0, 100),
    "debug_level": ("int", 0, 100),
    "debug": ("bool", None, None),
}


def _int(name: str, value: Any, lo: int | None, hi: int | None) -> int:
    if isinstance(value, bool):
        raise SidecarConfigError(f"{name}: expected an integer, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise SidecarConfigError(f"{name}: expected an integer, got {value!r}") from None
    if isinstance(value, float):
        if not value.is_integer():
            raise SidecarConfigError(f"{name}: expected an integer, got {value!r}")
        value = int(value)
    if not isinstance(value, int):
        raise SidecarConfigError(f"{name}: expected an integer, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise SidecarConfigError(f"{name}: {value} is outside {lo}..{hi}")
    return value


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise SidecarConfigError(f"{name}: expected true or false, got {value!r}")


def parse_params(raw: Any) -> SidecarParams:
    if raw is None:
        return SidecarParams()
    if not isinstance(raw, dict):
        raise SidecarConfigError(f"params: expected an object, got {type(raw).__name__}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        spec = _KNOBS.get(name)
        if spec is None:
            raise SidecarConfigError(f"{name}: unknown parameter (known: {', '.join(sorted(_KNOBS))})")
        kind, lo, hi = spec
        if kind == "int":
            values[name] = _int(name, value, lo, hi)
        elif kind == "bool":
            values[name] = _bool(name, value)
        elif kind == "str":
            if not isinstance(value, str):
                raise SidecarConfigError(f"{name}: expected a string, got {value!r}")
            values[name] = value
        else:
            choices = kind.split(":", 1)[1].split("|")
            if value not in choices:
                raise SidecarConfigError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
            values[name] = value
    return SidecarParams(**values)


def _check_schema_properties(props: Any, path: str) -> None:
    if props is None:
        return
    if not isinstance(props, dict):
        raise SidecarConfigError(f"{path}: expected an object")
    for key, prop in props.items():
        if not isinstance(prop, dict):
            raise SidecarConfigError(f"{path}.{key}: expected an object")
        for field_name in prop:
            if field_name not in ALLOWED_PROPERTY_FIELDS:
                raise SidecarConfigError(
                    f"{path}.{key}.{field_name}: not allowed in a SWAIG parameter (allowed: type, description, "
                    "enum, default); put the constraint in the description"
                )
        _check_schema_properties(prop.get("properties"), f"{path}.{key}.properties")
        items = prop.get("items")
        if isinstance(items, dict):
            _check_schema_properties({"items": items}, f"{path}.{key}")


def _check_swaig(swaig: Any) -> None:
    if swaig is None:
        return
    if not isinstance(swaig, dict):
        raise SidecarConfigError("SWAIG: expected an object")
    functions = swaig.get("functions", [])
    if not isinstance(functions, list):
        raise SidecarConfigError("SWAIG.functions: expected a list")
    for i, fn in enumerate(functions):
        path = f"SWAIG.functions[{i}]"
        if not isinstance(fn, dict) or not isinstance(fn.get("function"), str) or not fn["function"]:
            raise SidecarConfigError(f"{path}.function: expected a function name")
        if fn["function"] == SKIP_TOOL:
            raise SidecarConfigError(f"{path}.function: {SKIP_TOOL} is reserved (it is built in)")
        params = fn.get("parameters")
        if params is not None:
            if not isinstance(params, dict):
                raise SidecarConfigError(f"{path}.parameters: expected an object")
            _check_schema_properties(params.get("properties"), f"{path}.parameters.properties")


@dataclass(frozen=True)
class SidecarConfig:
    prompt: Any
    lang: str
    model: str = DEFAULT_MODEL
    direction: tuple[str, ...] = LEGS
    customer_role: str = "remote-caller"
    url: str = ""
    swaig: dict[str, Any] = field(default_factory=dict)
    permissions: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(PERMISSIONS, True))
    global_data: dict[str, Any] = field(default_factory=dict)
    hints: tuple[str, ...] = ()
    params: SidecarParams = field(default_factory=SidecarParams)
    body: dict[str, Any] = field(default_factory=dict)  # as given, for the SWAIG runner

    @property
    def agent_role(self) -> str:
        return "local-caller" if self.customer_role == "remote-caller" else "remote-caller"

    @classmethod
    def from_body(cls, body: Any, default_model: str = DEFAULT_MODEL) -> SidecarConfig:
        if not isinstance(body, dict):
            raise SidecarConfigError("Invalid JSON config")
        for key in body:
            if key in _KNOBS:
                raise SidecarConfigError(f"{key}: tunables belong in params, not at the top level")
            if key not in TOP_LEVEL:
                raise SidecarConfigError(f"{key}: unknown field (allowed: {', '.join(sorted(TOP_LEVEL))})")
        lang = body.get("lang")
        if lang is None or lang == "":
            raise SidecarConfigError("lang is required")
        if not isinstance(lang, str):
            raise SidecarConfigError(f"lang: expected a BCP-47 language tag, got {lang!r}")
        prompt = body.get("prompt")
        if prompt is None or prompt == "":
            raise SidecarConfigError("prompt is required")
        _check_prompt(prompt)
        direction = body.get("direction", list(LEGS))
        if not isinstance(direction, list) or any(d not in LEGS for d in direction):
            raise SidecarConfigError(f"direction: expected a list of remote-caller and local-caller, got {direction!r}")
        if set(direction) != set(LEGS):
            raise SidecarConfigError("sidecar requires both legs (remote-caller and local-caller)")
        role = body.get("customer_role", "remote-caller")
        if role not in LEGS:
            raise SidecarConfigError(f"customer_role: expected remote-caller or local-caller, got {role!r}")
        model = body.get("model", default_model or DEFAULT_MODEL)
        if not isinstance(model, str) or not model:
            raise SidecarConfigError(f"model: expected a model name, got {model!r}")
        url = body.get("url", "")
        if not isinstance(url, str) or (url and not url.startswith(("http://", "https://"))):
            raise SidecarConfigError(f"url: expected an http:// or https:// URL, got {url!r}")
        _check_swaig(body.get("SWAIG"))
        perms = body.get("permissions") or {}
        if not isinstance(perms, dict):
            raise SidecarConfigError("permissions: expected an object")
        permissions = dict.fromkeys(PERMISSIONS, True)
        for key, value in perms.items():
            if key not in PERMISSIONS:
                raise SidecarConfigError(f"permissions.{key}: unknown permission (known: {', '.join(PERMISSIONS)})")
            permissions[key] = _bool(f"permissions.{key}", value)
        global_data = body.get("global_data") or {}
        if not isinstance(global_data, dict):
            raise SidecarConfigError("global_data: expected an object")
        hints = body.get("hints") or []
        if not isinstance(hints, list) or not all(isinstance(h, str) for h in hints):
            raise SidecarConfigError("hints: expected a list of strings")
        return cls(
            prompt=prompt,
            lang=lang,
            model=model,
            direction=tuple(direction),
            customer_role=role,
            url=url,
            swaig=dict(body.get("SWAIG") or {}),
            permissions=permissions,
            global_data=dict(global_data),
            hints=tuple(hints),
            params=parse_params(body.get("params")),
            body=dict(body),
        )


def _check_prompt(prompt: Any) -> None:
    if isinstance(prompt, str):
        return
    if not isinstance(prompt, dict):
        raise SidecarConfigError("prompt: expected a string, a POM object or {file: path}")
    if "file" in prompt:
        if not isinstance(prompt["file"], str) or not prompt["file"]:
            raise SidecarConfigError("prompt.file: expected a path")
        return
    sections = prompt.get("sections", prompt.get("pom"))
    if sections is not None:
        try:
            render_pom(sections, "markdown", "prompt.sections")
        except PomError as exc:
            raise SidecarConfigError(str(exc)) from None
        return
    if isinstance(prompt.get("text"), str):
        return
    raise SidecarConfigError("prompt: expected a string, a POM object (sections) or {file: path}")


def render_operator_prompt(prompt: Any) -> str:
    """The operator's prompt as text (a file is read here; an unreadable one names its path)."""
    if isinstance(prompt, str):
        return prompt
    if "file" in prompt:
        try:
            return Path(prompt["file"]).read_text()
        except OSError as exc:
            raise SidecarConfigError(f"prompt.file: cannot read {prompt['file']!r}: {exc.strerror or exc}") from None
    sections = prompt.get("sections", prompt.get("pom"))
    if sections is not None:
        return render_pom(sections, "markdown", "prompt.sections")
    return str(prompt.get("text", ""))


def prompt_variables(
    config: SidecarConfig,
    global_data: dict[str, Any],
    *,
    call_id: str,
    caller_id_number: str,
    destination_number: str,
    persistent: dict[str, Any] | None = None,
    local_tz: str = "UTC",
    now_unix_s: float | None = None,
) -> dict[str, Any]:
    root: dict[str, Any] = {
        "global_data": global_data,
        "ai_agents_global_data": persistent if persistent is not None else global_data,
        "caller_id_number": caller_id_number,
        "destination_number": destination_number,
        "local_tz": local_tz,
        "session_uuid": call_id,
        "customer_role": config.customer_role,
    }
    if now_unix_s is not None:
        try:
            zone = ZoneInfo(local_tz)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        now = datetime.fromtimestamp(now_unix_s, zone)
        root["local_date"] = now.strftime("%A, %B %-d, %Y")
        root["local_time"] = now.strftime("%-I:%M %p")
    return root


def system_prompt(config: SidecarConfig, variables: dict[str, Any]) -> str:
    operator = expand(render_operator_prompt(config.prompt), variables)
    who = f"The conversation language is {config.lang}. The customer is the {config.customer_role}."
    return f"{FRAMING}\n{who}\n\n{operator}"
