"""`check_for_input`: poll the agent for input that arrived elsewhere (an SMS, a web form).

Theory of operation: when the verb's SWAIG block declares a function named `check_for_input`
(a hook: never offered to the LLM), the runner starts one `InputPoller` with the AI and stops it
when the AI ends. Every `params.input_poll_freq` ms (schema: 1000..10000, default 2000; out of
range is clamped) it POSTs the normal SWAIG body for `check_for_input` to that function's URL,
with `conversation_id` (the verb's, else the call id) as the SDK's `/check_for_input` endpoint
requires. One poll at a time: the next waits for the previous reply.

Two reply shapes are understood, both may come in one reply:
- the SDK endpoint's `{"status", "conversation_id", "new_input": true, "messages": [...]}`:
  each message (a string, or `{role, content}`) becomes caller input (role `user`, the
  default) or a system message (role `system`), in order;
- a SWAIG function reply `{"response", "action": [...]}`: the actions are applied as any
  function's are (a `user_input` action feeds the caller's words). The `response` text is not
  spoken nor added: a poll is not a turn of the conversation.

A failed poll (timeout, refused, non-JSON) is logged once per kind of failure and polling goes
on; nothing here ends the call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mediaserver.swaig.actions import LocalState, apply_actions
from mediaserver.swaig.client import post_json
from mediaserver.swaig.hooks import HookRunner
from mediaserver.swaig.request import swaig_request
from mediaserver.swaig.seam import AiControl

__all__ = ["InputPoller", "apply_input", "poll_period_s", "start_polling"]

log = logging.getLogger(__name__)

DEFAULT_PERIOD_MS = 2000
MIN_PERIOD_MS, MAX_PERIOD_MS = 1000, 10000


def poll_period_s(params: dict[str, Any]) -> float:
    """`input_poll_freq` in seconds, clamped to the schema's 1000..10000 ms."""
    value = params.get("input_poll_freq", DEFAULT_PERIOD_MS)
    try:
        ms = int(float(value))
    except (TypeError, ValueError):
        ms = DEFAULT_PERIOD_MS
    return min(MAX_PERIOD_MS, max(MIN_PERIOD_MS, ms)) / 1000


def apply_input(
    reply: Any, control: AiControl, params: dict[str, Any], local: LocalState | None, call_id: str = ""
) -> int:
    """Apply one poll reply; returns how many messages or actions it carried."""
    if not isinstance(reply, dict):
        log.warning("call %s: check_for_input reply is a %s, not an object", call_id, type(reply).__name__)
        return 0
    count = 0
    messages = reply.get("messages")
    if reply.get("new_input") and isinstance(messages, list):
        for message in messages:
            role, text = "user", message
            if isinstance(message, dict):
                role, text = str(message.get("role") or "user"), message.get("content")
            if not isinstance(text, str) or not text.strip():
                continue
            if role == "system":
                control.add_system_message(text)
            else:
                control.add_user_input(text)
            count += 1
    actions = reply.get("action")
    if actions:
        actions = actions if isinstance(actions, list) else [actions]
        apply_actions(actions, control, params, local)
        count += len(actions)
    return count


class InputPoller:
    """Polls until `run()` is cancelled (the runner cancels it when the AI ends)."""

    def __init__(
        self,
        poll: Callable[[], Awaitable[tuple[bool, Any, str]]],
        control: AiControl,
        params: dict[str, Any],
        local: LocalState | None,
        *,
        sleep: Callable[[float], Awaitable[None]],
        call_id: str = "",
    ) -> None:
        self.poll = poll  # () -> (ok, parsed reply, error)
        self.control = control
        self.params = params
        self.local = local
        self.sleep = sleep
        self.call_id = call_id
        self.period_s = poll_period_s(params)
        self.polls = 0
        self._last_error = ""

    async def run(self) -> None:
        while True:
            await self.sleep(self.period_s)
            self.polls += 1
            ok, data, error = await self.poll()
            if not ok:
                if error != self._last_error:  # a dead endpoint is named once, not every 2 s
                    log.warning("call %s: check_for_input: %s", self.call_id, error)
                self._last_error = error
                continue
            self._last_error = ""
            apply_input(data, self.control, self.params, self.local, self.call_id)


def start_polling(
    runner: HookRunner, control: AiControl, sleep: Callable[[float], Awaitable[None]]
) -> asyncio.Task[None] | None:
    """The polling task when the verb declares `check_for_input` with a URL, else None."""
    fn = runner.functions.hooks.get("check_for_input")
    if fn is None or not fn.url:
        return None
    conversation_id = str(runner.params.get("conversation_id") or runner.call.call_id)

    async def poll() -> tuple[bool, Any, str]:
        body = swaig_request(
            fn.raw,
            "{}",
            {},
            call=runner.call,
            params=runner.params,
            global_data=dict(control.global_data()),
            call_log=runner.call_log(),
            raw_call_log=runner.raw_call_log(),
        )
        body["conversation_id"] = conversation_id  # the SDK endpoint requires it
        reply = await post_json(
            runner.http(), fn.url, body, timeout_s=runner.webhook_timeout_s, signing_key=runner.signing_key, retries=0
        )
        return reply.ok, reply.data, reply.error

    poller = InputPoller(poll, control, runner.params, runner, sleep=sleep, call_id=runner.call.call_id)
    return asyncio.ensure_future(poller.run())
