"""The `ai_sidecar` body: validation (errors name the field), defaults, and the system prompt.

Theory of operation: `SidecarConfig.from_body(body)` takes the verb's JSON exactly as SWML (or
the control API's `start`) gives it and returns a frozen config, or raises `SidecarConfigError`
whose message is the spec's text: `lang is required`, `sidecar requires both legs
(remote-caller and local-caller)`, or `<field>: <reason>` for a bad field (seed 002: "-ERR:
<field>: <reason>"). The top level is structural and fixed (an unknown key, or a tunable put
there instead of under `params`, is refused); `params` is validated strictly against the
`PARAMS` field table (`mediaserver.fields`): every knob has a type and range, strings that look
like numbers are accepted on number fields (YAML and `${}` leave those behind), and an unknown
knob is refused. The first bad field is the one named. SWAIG function parameters may only use
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

from mediaserver.fields import Field, FieldError, Table, check
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


# `permissions: null`, `hints: []`... mean the default, as the platform reads them.
_FALSY_IS_ABSENT = ("permissions", "global_data", "hints")


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


def _int(lo: int, hi: int) -> Field:
    return Field("int", lo=lo, hi=hi)


# The `params` knobs; an absent one keeps SidecarParams' default. Number and boolean strings pass.
PARAMS = Table(
    {
        "idle_timeout_ms": _int(50, 5000),
        "min_interval_ms": _int(0, 60000),
        "max_iters_per_tick": _int(1, 20),
        "max_history_tokens": _int(1000, 200000),
        "act_on_channel": Field("bool"),
        "final_summary": Field("bool"),
        "ai_summary": Field("bool"),
        "ai_summary_prompt": Field("str"),
        "live_events": Field("bool"),
        "verbose_utterances": Field("bool"),
        "speech_engine": Field("any", choices=("deepgram", "google")),
        "speech_timeout": _int(0, 600000),
        "vad_silence_ms": _int(0, 60000),
        "vad_thresh": _int(0, 100),
        "debug_level": _int(0, 100),
        "debug": Field("bool"),
    },
    noun="parameter",
    unknown_text="unknown parameter (known: {known})",
    loose=True,
)
_KNOBS = PARAMS.fields


def _http_url(url: str) -> str | None:
    return (
        None
        if not url or url.startswith(("http://", "https://"))
        else f"expected an http:// or https:// URL, got {url!r}"
    )


# The top level of the body: structural and fixed. `prompt`, `lang`, `SWAIG` and `params` have
# rules of their own below (the spec's "... is required" texts, POM, JSON schema).
BODY = Table(
    {
        "prompt": Field("any"),
        "lang": Field("any"),
        "model": Field("str", nonempty=True, expected="a model name"),
        "direction": Field(
            "list", list(LEGS), items=Field("any", choices=LEGS), expected="a list of remote-caller and local-caller"
        ),
        "customer_role": Field("any", "remote-caller", choices=LEGS, expected="remote-caller or local-caller"),
        "url": Field("str", "", expected="an http:// or https:// URL", check=_http_url),
        "SWAIG": Field("any"),
        "permissions": Field(
            "table",
            {},
            expected="an object",
            table=Table(
                dict.fromkeys(PERMISSIONS, Field("bool")),
                noun="permission",
                unknown_text="unknown permission (known: {known})",
                loose=True,
            ),
        ),
        "global_data": Field("obj", {}, expected="an object"),
        "hints": Field("list", [], items=Field("str"), expected="a list of strings"),
        "params": Field("any"),
        "action": Field("any"),
    },
    noun="field",
    unknown_text="unknown field (allowed: {known})",
)
TOP_LEVEL = set(BODY.fields)


def _first(errors: list[FieldError]) -> None:
    if errors:
        raise SidecarConfigError(str(errors[0]))


def parse_params(raw: Any) -> SidecarParams:
    if raw is None:
        return SidecarParams()
    if not isinstance(raw, dict):
        raise SidecarConfigError(f"params: expected an object, got {type(raw).__name__}")
    values, errors = check(PARAMS, raw)
    _first(errors)
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
        given = {key: value for key, value in body.items() if value or key not in _FALSY_IS_ABSENT}
        values, errors = check(BODY, given)
        _first([error for error in errors if error.problem == "unknown"])
        lang = body.get("lang")
        if lang is None or lang == "":
            raise SidecarConfigError("lang is required")
        if not isinstance(lang, str):
            raise SidecarConfigError(f"lang: expected a BCP-47 language tag, got {lang!r}")
        prompt = body.get("prompt")
        if prompt is None or prompt == "":
            raise SidecarConfigError("prompt is required")
        _check_prompt(prompt)
        _first(errors)
        if set(values["direction"]) != set(LEGS):
            raise SidecarConfigError("sidecar requires both legs (remote-caller and local-caller)")
        _check_swaig(body.get("SWAIG"))
        return cls(
            prompt=prompt,
            lang=lang,
            model=values.get("model", default_model or DEFAULT_MODEL),
            direction=tuple(values["direction"]),
            customer_role=values["customer_role"],
            url=values["url"],
            swaig=dict(body.get("SWAIG") or {}),
            permissions={**dict.fromkeys(PERMISSIONS, True), **values["permissions"]},
            global_data=dict(values["global_data"]),
            hints=tuple(values["hints"]),
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
