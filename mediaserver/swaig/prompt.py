"""System prompt text from an `ai` verb: text or POM, prompt variables, the current step block.

Theory of operation: `base_prompt(prompt_obj, pom_format)` gives the base prompt (`text` as
written, or `pom` rendered exactly as the SDK does); `render_prompt` adds the initial step
block when the prompt has `contexts` (the app injects it into the session's config).
`prompt_vars(global_data, …)` is the variable root mod_openai expands prompt text against:
every global_data key at the top level, `global_data.*`, and the call's date/time variables.
`expand_prompt(text, vars)` applies the path expander (§2: no JavaScript in AI contexts).
`base_prompt` and `step_block(context, step)` (the text the engine appends for contexts/steps,
§7) live in `prompt_blocks.py`, below `contexts.py`, and are re-exported here.
`render_ai_prompt(ai)` ties these together for the session's initial system prompt, including
the initial step of `prompt.contexts` when present, so that a session that knows nothing of
contexts still starts in the right step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mediaserver.swaig.contexts import ContextEngine
from mediaserver.swaig.prompt_blocks import STEP_HEADER, base_prompt, step_block
from mediaserver.swaig.templates import as_dict, expand

__all__ = [
    "STEP_HEADER",
    "base_prompt",
    "expand_prompt",
    "prompt_vars",
    "render_ai_prompt",
    "render_prompt",
    "step_block",
]


def render_prompt(prompt: Any, pom_format: str = "markdown", path: str = "prompt") -> str:
    """`text` or `pom` (rendered as the SDK does), plus the initial step block when the prompt has
    `contexts`: the session's first system prompt then already carries the first step."""
    text = base_prompt(prompt, pom_format, path)
    contexts = prompt.get("contexts") if isinstance(prompt, dict) else None
    if isinstance(contexts, dict) and contexts:
        block = ContextEngine(contexts, pom_format).current_block()
        text = f"{text}\n\n{block}" if text and block else text or block
    return text


def prompt_vars(
    global_data: dict[str, Any],
    *,
    now: datetime | None = None,
    direction: str = "inbound",
    caller_id_name: str = "",
    caller_id_num: str = "",
    languages: list[str] | None = None,
) -> dict[str, Any]:
    """The root prompt templates read: global_data keys, `global_data`, call and time variables."""
    root: dict[str, Any] = {
        "call_direction": direction,
        "caller_id_name": caller_id_name,
        "caller_id_number": caller_id_num,
        "supported_languages": ", ".join(languages or ["English"]),
        "default_language": (languages or ["English"])[0],
    }
    if now is not None:
        root["local_date"] = now.strftime("%A, %B %-d, %Y")
        root["local_time"] = now.strftime("%-I:%M %p")
        root["time_of_day"] = "morning" if now.hour < 12 else "afternoon" if now.hour < 18 else "evening"
    root.update(global_data)
    root["global_data"] = global_data
    return root


def expand_prompt(text: str, variables: dict[str, Any]) -> str:
    return expand(text, variables) if ("${" in text or "%{" in text) else text


def render_ai_prompt(ai: dict[str, Any], variables: dict[str, Any] | None = None) -> str:
    """The initial system prompt of an `ai` verb (base + conscience + initial step block)."""
    params = as_dict(ai.get("params"))
    pom_format = str(params.get("pom_format") or "markdown")
    prompt = as_dict(ai.get("prompt"))
    text = base_prompt(prompt, pom_format)
    conscience = params.get("conscience")
    if isinstance(conscience, str) and conscience:
        text = f"{text}\n\n{conscience}" if text else conscience
    contexts = prompt.get("contexts")
    if isinstance(contexts, dict) and contexts:
        block = ContextEngine(contexts, pom_format).current_block()
        text = f"{text}\n\n{block}" if text and block else text or block
    if variables is None:
        variables = prompt_vars(as_dict(ai.get("global_data")))
    return expand_prompt(text, variables)
