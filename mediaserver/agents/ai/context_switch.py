"""SWAIG `context_switch` on the live AI session: the LLM's view reset as the action asks.

Theory of operation: the action (swaig/actions.py) normalizes the SDK's shapes (a string, or
`{system_prompt|system_pom, user_prompt|user_pom, consolidate, full_reset}`) to one dict and
hands it to the session's `context_switch`, which calls `switch_context` here. It is the same
`ResetHistory` op a context entry queues (swaig/history_ops.py; contract §5: "consolidate
summarizes history first; full_reset replaces instead of injects"):

- `system_prompt` alone: injected as a system message after the history (the base prompt stays);
- `full_reset`: nothing before the switch stays in the model's view (the call log keeps it),
  and a `system_prompt` replaces the base prompt instead of being injected;
- `consolidate`: one summary message stands in for the conversation so far;
- `user_prompt`: added as a user message, which the model answers in the tool loop's next round.

The session then rebuilds the request in flight (`LlmView.follow`), so the tool loop's next
round already runs under the switch. The new base prompt is returned as a new config: the
session's prompt is per call.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.history_ops import Facts, LlmView, expander
from mediaserver.kernel.agent import Conversation
from mediaserver.swaig.history_ops import ResetHistory

__all__ = ["switch_context"]

log = logging.getLogger(__name__)


def switch_context(
    switch: dict[str, Any], view: LlmView, config: AiSessionConfig, history: Conversation, facts: Facts
) -> AiSessionConfig:
    """Apply `switch` to the LLM's view of `history`; the config with the base prompt to use from now."""
    system = str(switch.get("system_prompt") or "")
    full_reset = bool(switch.get("full_reset"))
    if full_reset and system:
        config, system = replace(config, prompt=system), ""
    op = ResetHistory(
        wipe=full_reset,
        consolidate=bool(switch.get("consolidate")),
        system_prompt=system,
        user_prompt=str(switch.get("user_prompt") or ""),
    )
    view.apply([op], history, expander(view.variables(*facts)), final=False)
    log.info("context_switch: %s", {k: bool(v) for k, v in switch.items()})
    return config
