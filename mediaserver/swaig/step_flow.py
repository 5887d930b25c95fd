"""Moving through contexts and steps as the platform does: prompt, history ops, per-turn flags.

Theory of operation: `StepFlow` wraps one verb's `ContextEngine` (where we are, what is allowed)
with what a move does to the conversation, as the SDK documents each flag (core/contexts.py,
contract §7). The SWAIG runner calls it; it never touches the session, it queues
`history_ops` that the session takes (`take_ops`):

- `system_prompt(base)`: base (+ conscience) then the current block, once; a step change
  replaces the block (the session rebuilds the system prompt per request). A context entered
  with `full_reset` and a `system_prompt` replaces the base.
- `move(kind, go)`: runs the engine's move, then queues `StepEntered` (the step left, its
  instructions, the `history` mode of the step entered or its context: keep | default | hide)
  and, for a context, `ResetHistory` from the context's entry parameters (`isolated`,
  `consolidate`, `full_reset`, `system_prompt`, `user_prompt`) merged with the leaving step's
  `reset`. `isolated` wipes the view unless `consolidate` asks for a summary instead (the SDK's
  "reset overrides the wipe").
- `turn_done()`: the agent finished a turn in the current step: `end: true` leaves step mode
  (no more step block or navigation; the step's `reset` applies as it exits),
  `skip_to_next_step` moves to the next step, and `skip_user_turn` answers True (the agent goes
  on without waiting for the caller, once per entry of a step, so a step cannot loop on itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mediaserver.swaig.contexts import ContextEngine, NavigationError
from mediaserver.swaig.history_ops import HistoryMode, HistoryOp, ResetHistory, StepEntered
from mediaserver.swaig.prompt import join_blocks
from mediaserver.swaig.templates import as_dict, is_true

__all__ = ["StepFlow"]

_MODES: tuple[HistoryMode, ...] = ("keep", "default", "hide")
_RESET_KEYS = ("system_prompt", "user_prompt", "consolidate", "full_reset")


class StepFlow:
    def __init__(self, engine: ContextEngine) -> None:
        self.engine = engine
        self.ops: list[HistoryOp] = []
        self.base_override: str | None = None  # full_reset + system_prompt: the new base prompt
        self._entries = 0  # steps entered so far (the skip_user_turn guard)
        self._auto_entry = -1

    def take_ops(self) -> list[HistoryOp]:
        ops, self.ops = self.ops, []
        return ops

    def system_prompt(self, base: str) -> str:
        return join_blocks(self.base_override if self.base_override is not None else base, self.engine.current_block())

    # -- moves -------------------------------------------------------------------------------
    def move(self, kind: str, go: Callable[[], str]) -> str:
        """Run `go` (an engine move; NavigationError passes through) and queue what it does."""
        left = self._where()
        entered = go()
        self._entered(kind, *left)
        return entered

    def submit(self, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A gather_info answer (ContextEngine.submit); its completion_action may enter a step."""
        left = self._where()
        reply, update = self.engine.submit(args)
        if self.engine.step_name != left[0]:
            self._entered("next_step", *left)
        return reply, update

    def _where(self) -> tuple[str, dict[str, Any], str]:
        engine = self.engine
        if not engine.step_mode:
            return "", {}, engine.current_block()
        return engine.step_name, engine.step, engine.current_block()

    def _entered(self, kind: str, left: str, left_step: dict[str, Any], left_block: str) -> None:
        engine = self.engine
        self._entries += 1
        self.ops.append(StepEntered(left, left_block, self._mode()))
        if kind == "change_context":
            self._reset({**{k: engine.context[k] for k in _RESET_KEYS if k in engine.context}, **_reset_of(left_step)})

    def _mode(self) -> HistoryMode:
        for source in (self.engine.step, self.engine.context):
            for mode in _MODES:
                if source.get("history") == mode:
                    return mode
        return "default"

    def _reset(self, spec: dict[str, Any], isolated: bool | None = None) -> None:
        if isolated is None:
            isolated = is_true(self.engine.context.get("isolated"))
        consolidate, full_reset = is_true(spec.get("consolidate")), is_true(spec.get("full_reset"))
        system_prompt = str(spec.get("system_prompt") or "")
        if full_reset and system_prompt:
            self.base_override, system_prompt = system_prompt, ""
        op = ResetHistory(
            wipe=full_reset or (isolated and not consolidate),
            consolidate=consolidate,
            system_prompt=system_prompt,
            user_prompt=str(spec.get("user_prompt") or ""),
        )
        if op != ResetHistory():
            self.ops.append(op)

    # -- after each agent turn ---------------------------------------------------------------
    def turn_done(self) -> tuple[bool, str | None]:
        """(speak again without waiting for the caller, the step entered by skip_to_next_step)."""
        engine = self.engine
        if not engine.step_mode or engine.gather is not None or not engine.step:
            return False, None
        step = engine.step
        auto = is_true(step.get("skip_user_turn")) and self._auto_entry != self._entries
        if auto:
            self._auto_entry = self._entries
        if is_true(step.get("end")):
            engine.step_done()  # step mode ends: base and context prompt only, no navigation
            if _reset_of(step):
                self._reset(_reset_of(step), isolated=False)
            return auto, None
        entered = None
        if is_true(step.get("skip_to_next_step")):
            try:
                entered = self.move("next_step", lambda: engine.go_step("next", forced=True))
            except NavigationError:
                entered = None  # the last step: nothing to skip to
        return auto, entered


def _reset_of(step: dict[str, Any]) -> dict[str, Any]:
    reset = as_dict(step.get("reset"))
    return {k: reset[k] for k in _RESET_KEYS if k in reset}
