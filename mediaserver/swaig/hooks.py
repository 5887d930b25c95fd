"""Lifecycle hooks (contract §4.3): `startup_hook` before the first turn, `hangup_hook` at the end.

Theory of operation: an SDK agent with `on_call_start`/`on_call_end` renders functions named
`startup_hook`/`hangup_hook`; they are never offered to the LLM. `run_startup_hook` POSTs the
normal SWAIG body once, before the AI's first turn, applies the reply's actions and adds its
`response` text as a system message (a placeholder line when empty, as the platform does).
`run_hangup_hook` POSTs when the AI ends, with the call log when `swaig_post_conversation` is
on (the SDK turns it on for agents with on_call_end); its reply is ignored. Failures are logged
and never stop the call.

The hooks take a `HookRunner`: the few things they use of the SWAIG runner (gateway.py's
`SwaigToolRunner` is one), so that this module sits below the gateway that calls it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from mediaserver.swaig.actions import LocalState, apply_actions
from mediaserver.swaig.client import post_json
from mediaserver.swaig.functions import FunctionSet
from mediaserver.swaig.request import swaig_request
from mediaserver.swaig.seam import AiControl, CallInfo

if TYPE_CHECKING:
    import aiohttp

__all__ = ["HookRunner", "run_hangup_hook", "run_startup_hook"]

log = logging.getLogger(__name__)

STARTUP_PLACEHOLDER = "The call has started."


class HookRunner(LocalState, Protocol):
    """What the hooks use of the SWAIG runner: its functions, call, params, HTTP and logs."""

    @property
    def functions(self) -> FunctionSet: ...
    @property
    def call(self) -> CallInfo: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def signing_key(self) -> str: ...
    @property
    def webhook_timeout_s(self) -> float: ...
    @property
    def swaig_log(self) -> list[dict[str, Any]]: ...
    def http(self) -> aiohttp.ClientSession: ...
    def call_log(self) -> list[dict[str, Any]]: ...
    def raw_call_log(self) -> list[dict[str, Any]]: ...


async def _post_hook(runner: HookRunner, name: str, global_data: dict[str, Any]) -> Any:
    fn = runner.functions.hooks.get(name)
    if fn is None:
        return None
    if not fn.url:
        log.warning("%s has no web_hook_url; skipped", name)
        return None
    body = swaig_request(
        fn.raw,
        "{}",
        {},
        call=runner.call,
        params=runner.params,
        global_data=global_data,
        meta_data=fn.raw.get("meta_data") if isinstance(fn.raw.get("meta_data"), dict) else None,
        call_log=runner.call_log(),
        raw_call_log=runner.raw_call_log(),
    )
    reply = await post_json(
        runner.http(), fn.url, body, timeout_s=runner.webhook_timeout_s, signing_key=runner.signing_key
    )
    runner.swaig_log.append(
        {
            "command_name": name,
            "command_arg": "{}",
            "url": fn.url.split("?")[0],
            "post_data": body,
            "post_response": reply.data if reply.ok else reply.error,
        }
    )
    if not reply.ok:
        log.warning("%s: %s", name, reply.error)
        return None
    return reply.data


async def run_startup_hook(runner: HookRunner, control: AiControl) -> bool:
    """Call startup_hook if the verb has one; True when it was called successfully."""
    if "startup_hook" not in runner.functions.hooks:
        return False
    data = await _post_hook(runner, "startup_hook", dict(control.global_data()))
    if not isinstance(data, dict):
        return False
    apply_actions(data.get("action"), control, runner.params, runner)
    response = data.get("response")
    control.add_system_message(str(response) if isinstance(response, str) and response else STARTUP_PLACEHOLDER)
    return True


async def run_hangup_hook(runner: HookRunner, global_data: dict[str, Any]) -> bool:
    if "hangup_hook" not in runner.functions.hooks:
        return False
    return await _post_hook(runner, "hangup_hook", global_data) is not None
