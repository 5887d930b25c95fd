"""System prompt text from an `ai` verb: text or POM, prompt variables, the current step block.

Theory of operation: the system prompt of every LLM request is, in this order (contract §7):

    base prompt (`text`, or `pom` rendered per `params.pom_format`) + `params.conscience`
    + the current context/step block (only while in step mode)

all `${…}`/`%{…}`-expanded against the prompt variables of that moment. The parts are rendered
here; the app injects `render_prompt` into `AiSessionConfig` (base prompt and post_prompt, the
template text kept unexpanded), the SWAIG runner adds the step block of the moment
(`join_blocks`), and the session expands the whole per request, so that a `set_global_data`
is seen by the next turn's prompt. The step block is never part of the base: it would stay in
the prompt after the step changed.

`prompt_vars(global_data, …)` is the variable root mod_openai expands prompt text against: the
call's facts (direction, caller id, date/time, languages), the SWML script variables, then
every global_data key at the top level (global_data wins a clash) and `global_data` itself.
`expand_prompt(text, vars)` applies the path expander (§2: no JavaScript in AI contexts).
`base_prompt` and `step_block(context, step)` live in `prompt_blocks.py`, below `contexts.py`,
and are re-exported here. `render_ai_prompt(ai)` is the first request's system prompt of a
verb, whole and expanded (for tools and tests that want it at once).
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
    "join_blocks",
    "prompt_vars",
    "render_ai_prompt",
    "render_prompt",
    "step_block",
]


def render_prompt(prompt: Any, pom_format: str = "markdown", path: str = "prompt") -> str:
    """The base prompt: `text`, or `pom` rendered as the SDK does in `pom_format` (markdown | xml).

    No step block and no expansion: the session adds the current step and expands per request.
    """
    return base_prompt(prompt, "xml" if pom_format == "xml" else "markdown", path)


def join_blocks(*parts: str) -> str:
    """The non-empty parts, a blank line between each."""
    return "\n\n".join(p for p in parts if p)


def prompt_vars(
    global_data: dict[str, Any],
    *,
    now: datetime | None = None,
    direction: str = "inbound",
    caller_id_name: str = "",
    caller_id_num: str = "",
    languages: list[str] | None = None,
    swml_vars: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The root prompt templates read: call and time variables, SWML vars, global_data keys, `global_data`."""
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
    root.update(swml_vars or {})
    root.update(global_data)
    root["global_data"] = global_data
    return root


def expand_prompt(text: str, variables: dict[str, Any]) -> str:
    return expand(text, variables) if ("${" in text or "%{" in text) else text


def render_ai_prompt(ai: dict[str, Any], variables: dict[str, Any] | None = None) -> str:
    """The first request's system prompt of an `ai` verb: base + conscience + initial step, expanded."""
    params = as_dict(ai.get("params"))
    pom_format = str(params.get("pom_format") or "markdown")
    prompt = as_dict(ai.get("prompt"))
    conscience = params.get("conscience")
    block = ""
    contexts = prompt.get("contexts")
    if isinstance(contexts, dict) and contexts:
        block = ContextEngine(contexts, pom_format).current_block()
    text = join_blocks(render_prompt(prompt, pom_format), conscience if isinstance(conscience, str) else "", block)
    if variables is None:
        variables = prompt_vars(as_dict(ai.get("global_data")))
    return expand_prompt(text, variables)
