"""SWAIG request bodies: what a webhook function, a hook and the post-prompt URL receive.

Theory of operation: pure functions from plain values to the JSON bodies of contract §4.2 and
§4.4, field names and shapes as mod_openai sends them (the SDK's generated `SwaigRequest` and
`PostPrompt` TypedDicts are the reference; the unit tests check every key and type against
them). The body always carries `call_id` = the id the SWML fetch used, because SDK agents
accept a secure tool's `__token` only for that call id; `global_data` is the current object
after any earlier set/unset actions; `argument` is `{parsed: [args], raw, substituted}`.
`call_log`/`raw_call_log` are added only when `params.swaig_post_conversation` is true,
`SWMLVars`/`SWMLCall` only with `params.swaig_post_swml_vars`. `call_log` is the conversation as
the LLM holds it now (cut and reset as it was), `raw_call_log` everything said since the AI
began; each entry is `{role, content, timestamp (epoch µs), …}` (the session keeps them:
agents/ai/call_log.py). The post-prompt body always carries both logs, `SWMLVars`/`SWMLCall`,
the call and AI dates (epoch µs) and `times` (one entry per agent response).
"""

from __future__ import annotations

import json
import re
from typing import Any

from mediaserver.swaig.seam import CallInfo

__all__ = ["find_json_objects", "post_prompt_body", "swaig_request"]

VERSION = "2.0"


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _common(call: CallInfo, params: dict[str, Any], global_data: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "app_name": str(params.get("app_name") or "swml app"),
        "call_id": call.call_id,
        "ai_session_id": call.ai_session_id or call.call_id,
        "caller_id_name": call.caller_id_name,
        "caller_id_num": call.caller_id_num,
        "project_id": call.project_id,
        "space_id": call.space_id,
        "global_data": global_data,
    }
    if params.get("conversation_id"):
        body["conversation_id"] = str(params["conversation_id"])
    return body


def _swml_vars(body: dict[str, Any], call: CallInfo, params: dict[str, Any], *, always: bool = False) -> None:
    wanted = params.get("swaig_post_swml_vars")
    if not always and not (isinstance(wanted, list) or _truthy(wanted)):  # "false" is off too
        return
    variables = call.vars
    if isinstance(wanted, list):  # a list names the variables to send
        variables = {k: v for k, v in call.vars.items() if k in wanted}
    body["SWMLVars"] = variables
    body["SWMLCall"] = call.call


def swaig_request(
    function: dict[str, Any],
    raw_arguments: str,
    parsed: dict[str, Any] | None,
    *,
    call: CallInfo,
    params: dict[str, Any],
    global_data: dict[str, Any],
    meta_data: dict[str, Any] | None = None,
    call_log: list[dict[str, Any]] | None = None,
    raw_call_log: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The body POSTed to a function's web_hook_url (also the hooks: startup_hook, hangup_hook)."""
    name = str(function.get("function", ""))
    description = function.get("description", function.get("purpose", ""))
    schema = function.get("parameters", function.get("argument", {"type": "object", "properties": {}}))
    body = _common(call, params, global_data)
    body.update(
        {
            "function": name,
            "description": description,
            "purpose": description,
            "argument_desc": schema,
            "argument": {"parsed": [parsed] if parsed is not None else [], "raw": raw_arguments, "substituted": ""},
            "version": VERSION,
            "content_type": "text/swaig",
            "content_disposition": "SWAIG Function",
            "channel_active": True,
            "channel_offhook": True,
            "channel_ready": True,
        }
    )
    if meta_data is not None:
        body["meta_data"] = meta_data
    token = function.get("meta_data_token")
    if isinstance(token, str) and token:
        body["meta_data_token"] = token
    if _truthy(params.get("swaig_post_conversation")) and call_log is not None:
        body["call_log"] = call_log
        body["raw_call_log"] = raw_call_log if raw_call_log is not None else call_log
    _swml_vars(body, call, params)
    return body


def find_json_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects found in a summary (post_prompt_data.parsed): the whole text, else each {…}."""
    try:
        value = json.loads(text)
        return [value] if isinstance(value, dict) else []
    except json.JSONDecodeError:
        pass
    found = []
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text[match.start() :])
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found.append(value)
            break  # the outermost object; inner braces belong to it
    return found


def post_prompt_body(
    summary: str,
    *,
    call: CallInfo,
    params: dict[str, Any],
    global_data: dict[str, Any],
    call_log: list[dict[str, Any]],
    swaig_log: list[dict[str, Any]] | None = None,
    times_us: dict[str, int] | None = None,
    call_ended_by: str = "",
    raw_call_log: list[dict[str, Any]] | None = None,
    times: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The body POSTed to post_prompt_url when the AI ends (contract §4.4)."""
    body = _common(call, params, global_data)
    body.pop("caller_id_num")
    body.update(
        {
            "action": "post_conversation",
            "content_type": "text/json",
            "content_disposition": "agent.summary",
            "conversation_type": "voice",
            "caller_id_number": call.caller_id_num,
            "call_ended_by": call_ended_by,
            "hard_timeout": False,
            "post_prompt_data": {"raw": summary, "parsed": find_json_objects(summary), "substituted": summary},
            "call_log": call_log,
            "raw_call_log": raw_call_log if raw_call_log is not None else call_log,
            "swaig_log": swaig_log or [],
            "times": times or [],
        }
    )
    for key, value in (times_us or {}).items():  # call_start_date, ai_start_date… epoch µs
        body[key] = int(value)
    _swml_vars(body, call, params, always=True)
    return body
