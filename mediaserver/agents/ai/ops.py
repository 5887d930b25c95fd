"""The `ai.params` keys about running and watching a session, read once with the verb's config.

Theory of operation: `read_ops(params, warnings)` checks `enable_accounting` (accounting.py),
`debug_webhook_url` / `debug_webhook_level`, `debug`, `verbose_logs`, `audible_debug`,
`audible_latency` (debug_hooks.py), `conversation_id`, `save_conversation`, `summary_mode`
(conversations.py) and `languages_enabled` (languages.py) and returns `AiOps`, plain values.
As for every `ai` param, a bad value never stops the call: it is replaced by its default and
named in `warnings` (`params.debug_webhook_level: 7 is outside 0..2; using 2`).
`debug_webhook_level` defaults to 1 when a URL is set (the schema's rule) and 0 is off even with
a URL; `debug` may be a boolean or a level (true = 1), as the schema allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mediaserver.fields import MISSING, Field, Table, check

__all__ = ["AiOps", "read_ops"]


@dataclass(frozen=True)
class AiOps:
    enable_accounting: bool = False
    debug_webhook_url: str = ""
    debug_webhook_level: int = 0  # 0 off, 1 lifecycle/barge/errors, 2 adds LLM requests and history
    debug: int = 0
    verbose_logs: bool = False
    audible_debug: bool = False
    audible_latency: bool = False
    conversation_id: str = ""
    save_conversation: bool = False
    summary_mode: str = ""  # "string": a resumed conversation comes back as its summary; else the messages
    languages_enabled: bool = False
    app_name: str = "swml app"  # echoed in debug events, as in every webhook body

    @property
    def diagnostics(self) -> bool:
        """debug or verbose_logs: the session's events are logged at INFO with their details."""
        return self.debug > 0 or self.verbose_logs


def _url(value: str) -> str | None:
    return None if not value or value.startswith(("http://", "https://")) else f"expected an http(s) URL, got {value!r}"


_OPS = Table(
    {
        "enable_accounting": Field("bool", False),
        "debug_webhook_url": Field("str", "", check=_url),
        "debug_webhook_level": Field("int", MISSING, lo=0, hi=2),
        "debug": Field("any", False),
        "verbose_logs": Field("bool", False),
        "audible_debug": Field("bool", False),
        "audible_latency": Field("bool", False),
        "conversation_id": Field("str", ""),
        "save_conversation": Field("bool", False),
        "summary_mode": Field("str", "", choices=("", "string", "original")),
        "languages_enabled": Field("bool", False),
        "app_name": Field("str", "swml app"),
    },
    unknown="ignore",
    loose=True,
)


def read_ops(params: dict[str, Any], warnings: list[str]) -> AiOps:
    values, errors = check(_OPS, params, "params", repair=True)
    for error in errors:
        using = None if error.repaired is MISSING else error.repaired
        warnings.append(f"{error}; using {using!r}")
    url = values["debug_webhook_url"]
    level = values.get("debug_webhook_level", MISSING)
    return AiOps(
        enable_accounting=values["enable_accounting"],
        debug_webhook_url=url,
        debug_webhook_level=(1 if url else 0) if level is MISSING or level is None else int(level),
        debug=_debug_level(values["debug"], warnings),
        verbose_logs=values["verbose_logs"],
        audible_debug=values["audible_debug"],
        audible_latency=values["audible_latency"],
        conversation_id=values["conversation_id"],
        save_conversation=values["save_conversation"],
        summary_mode=values["summary_mode"],
        languages_enabled=values["languages_enabled"],
        app_name=values["app_name"] or "swml app",
    )


def _debug_level(value: Any, warnings: list[str]) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "false", "no", "off", "0", "1"):
        return 1 if value.strip().lower() in ("true", "yes", "on", "1") else 0
    warnings.append(f"params.debug: expected a boolean or a level, got {value!r}; using False")
    return 0
