"""`ai_agents_global_data`: the AI's global_data kept in the script's variables, across agents.

Theory of operation: the platform persists an AI's global_data in the SWML variable
`ai_agents_global_data` (contract §2), and the `ai_sidecar` spec (seed 002, Persistence) reads
and writes the same variable, so an `ai` verb and a sidecar on one call share one state. With
`params.persist_global_data` (default true) the session starts from the verb's `global_data`
overlaid by what the variable already holds (the channel's runtime state beats the declared
defaults, as the sidecar does it), writes it back at once, and again after every
set/unset_global_data. The value written is a JSON copy, so the script sees a plain tree that
later changes do not alias. With persistence off the variable is neither read nor written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping
from typing import Any

__all__ = ["PERSIST_VAR", "GlobalDataStore", "persist_enabled"]

log = logging.getLogger(__name__)

PERSIST_VAR = "ai_agents_global_data"  # the sidecar's too (agents/sidecar/runner.py)


def persist_enabled(params: Any) -> bool:
    """`params.persist_global_data`, default true; "false"/"0"/"no"/"off" turn it off."""
    value = params.get("persist_global_data", True) if isinstance(params, dict) else True
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "")
    return bool(value)


class GlobalDataStore:
    def __init__(self, variables: MutableMapping[str, Any] | None, *, call_id: str = "") -> None:
        self.variables = variables  # None: persistence off
        self.call_id = call_id

    def initial(self, declared: dict[str, Any]) -> dict[str, Any]:
        """The session's starting global_data (and it is saved at once)."""
        data = dict(declared)
        if self.variables is None:
            return data
        inherited = self.variables.get(PERSIST_VAR)
        if isinstance(inherited, dict):
            data.update(inherited)
        elif inherited is not None:
            log.warning("call %s: %s is not an object; ignored", self.call_id, PERSIST_VAR)
        self.save(data)
        return data

    def save(self, data: dict[str, Any]) -> None:
        if self.variables is not None:
            self.variables[PERSIST_VAR] = json.loads(json.dumps(data, default=str))
