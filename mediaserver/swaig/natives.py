"""Native functions (contract §8): tools the engine itself answers, offered only when listed.

Theory of operation: `SWAIG.native_functions` may list `check_time`, `wait_seconds`,
`wait_for_user` and `adjust_response_latency`. `NATIVE_DEFINITIONS` holds their OpenAI tool
entries; `run_native(name, args, control, env)` answers a call. Time is passed in: `env` holds
the wall-clock epoch seconds (`now_s`), the IANA zone (`params.local_tz`, default US/Central),
and an async `sleep` the runner provides (tests pass a fake one), so nothing here reads a clock.
Results are plain sentences the LLM can speak from; bad arguments give a sentence that says what
was wrong.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mediaserver.swaig.seam import AiControl

__all__ = ["NATIVE_DEFINITIONS", "NativeEnv", "run_native"]

DEFAULT_TZ = "US/Central"
MAX_WAIT_S = 300


def _tool(name: str, description: str, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties or {}},
        },
    }


NATIVE_DEFINITIONS: dict[str, dict[str, Any]] = {
    "check_time": _tool(
        "check_time",
        "Get the current local date and time.",
        {"timezone": {"type": "string", "description": "IANA time zone, optional"}},
    ),
    "wait_seconds": _tool(
        "wait_seconds",
        "Wait silently for a number of seconds (the caller asked for time).",
        {"seconds": {"type": "integer", "description": "how long to wait, 1 to 300"}},
    ),
    "wait_for_user": _tool("wait_for_user", "Stay quiet until the caller speaks again."),
    "adjust_response_latency": _tool(
        "adjust_response_latency",
        "Wait longer (or less) for the caller to finish before answering.",
        {"latency": {"type": "integer", "description": "end of speech timeout in ms, 250 to 10000"}},
    ),
}


@dataclass
class NativeEnv:
    now_s: float  # wall-clock epoch seconds
    local_tz: str = DEFAULT_TZ
    sleep: Callable[[float], Awaitable[None]] | None = None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TZ)


async def run_native(name: str, args: dict[str, Any], control: AiControl, env: NativeEnv) -> str:
    if name == "check_time":
        tz_name = str(args.get("timezone") or env.local_tz or DEFAULT_TZ)
        now = datetime.fromtimestamp(env.now_s, UTC).astimezone(_zone(tz_name))
        return f"The current time is {now.strftime('%-I:%M %p on %A, %B %-d, %Y')} ({now.tzname()})."
    if name == "wait_seconds":
        try:
            seconds = int(float(args.get("seconds", 10)))
        except (TypeError, ValueError):
            return f"wait_seconds needs a number of seconds, not {args.get('seconds')!r}."
        seconds = max(1, min(seconds, MAX_WAIT_S))
        if env.sleep is not None:
            await env.sleep(seconds)
        return f"Waited {seconds} seconds."
    if name == "wait_for_user":
        control.wait_for_user(True)  # the reply ends here: nothing more is said until the caller speaks
        return "Waiting for the caller to speak."
    if name == "adjust_response_latency":
        try:
            latency = int(float(args.get("latency", 1000)))
        except (TypeError, ValueError):
            return f"adjust_response_latency needs milliseconds, not {args.get('latency')!r}."
        latency = max(250, min(latency, 10_000))
        control.update_settings({"end_of_speech_timeout": latency})
        return f"Response latency set to {latency} ms."
    raise KeyError(name)
