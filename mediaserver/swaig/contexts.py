"""Contexts and steps (contract §7): where the conversation is, which tools it may use, gather_info.

Theory of operation: `ContextEngine(contexts)` is a small state machine over `prompt.contexts`.
It starts in `default` (or the first context: the SDK allows contexts without one), at its
`initial_step` or first step. It answers, for the current position:

- `current_block()`: the system text for it (context prompt + step block, or during
  gather_info the preamble and the one question being asked);
- `valid_steps()` / `valid_contexts()`: the whitelists the injected `next_step(step)` and
  `change_context(context)` tools offer as enums (absent valid_steps ⇒ the next sequential
  step; `[]` ⇒ dead end; `"next"` allowed; step valid_contexts absent ⇒ the context's);
- `allowed_functions()`: the user tools allowed now — a step's `functions` list replaces the
  allowed set ([] or "none" ⇒ none), absent ⇒ the previous set carries over (None = all);
  during gather_info only the current question's `functions`;
- `definitions()`: the injected tool entries (`next_step`, `change_context`, `gather_submit`).

Transitions: `go_step(name, forced)` and `go_context(name, forced)` return the name entered or
raise `NavigationError` with a sentence for the model (a forced move from a SWAIG action skips
the whitelist, not the existence check). `end: true` leaves step mode after that step
(`step_done()`, called once the agent has had its turn there: `step_flow.py`), which also ends
`next_step` and `change_context`.
`submit(args)` records a gather_info answer (type-checked, confirmation enforced) and returns
`(reply for the model, data to merge into global_data)`; after the last question the
`completion_action` moves on or the step reverts to its normal instructions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mediaserver.swaig.functions import tool_definition
from mediaserver.swaig.prompt_blocks import base_prompt, step_block

__all__ = ["ContextEngine", "NavigationError"]

_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


class NavigationError(ValueError):
    """A move the current step does not allow; the message is what the model is told."""


@dataclass
class _Gather:
    questions: list[dict[str, Any]]
    prompt: str
    output_key: str
    completion_action: str
    index: int = 0
    answers: dict[str, Any] = field(default_factory=dict)

    @property
    def question(self) -> dict[str, Any]:
        return self.questions[self.index]


def _names(value: Any) -> list[str] | None:
    if value is None:
        return None
    if value == "none":
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else None


class ContextEngine:
    def __init__(self, contexts: dict[str, Any], pom_format: str = "markdown") -> None:
        self.contexts = {k: v for k, v in contexts.items() if isinstance(v, dict)}
        if not self.contexts:
            raise NavigationError("prompt.contexts has no context")
        self.pom_format = pom_format
        self.context_name = "default" if "default" in self.contexts else next(iter(self.contexts))
        self.step_mode = True
        self.whitelist: set[str] | None = None
        self.gather: _Gather | None = None
        self.step_name = ""
        self._enter_step(self._initial_step(self.context_name))

    # -- where we are ------------------------------------------------------------------------
    @property
    def context(self) -> dict[str, Any]:
        return dict(self.contexts[self.context_name])

    def steps(self, context: str | None = None) -> list[dict[str, Any]]:
        raw = self.contexts[context or self.context_name].get("steps")
        if not isinstance(raw, list):
            return []
        return [s for s in raw if isinstance(s, dict) and isinstance(s.get("name"), str)]

    @property
    def step(self) -> dict[str, Any]:
        for s in self.steps():
            if s["name"] == self.step_name:
                return s
        return {}

    def _initial_step(self, context: str) -> str:
        steps = self.steps(context)
        initial = self.contexts[context].get("initial_step")
        if isinstance(initial, str) and any(s["name"] == initial for s in steps):
            return initial
        return str(steps[0]["name"]) if steps else ""

    def _next_sequential(self) -> str | None:
        names = [str(s["name"]) for s in self.steps()]
        if self.step_name in names and names.index(self.step_name) + 1 < len(names):
            return names[names.index(self.step_name) + 1]
        return None

    def valid_steps(self) -> list[str]:
        if not self.step_mode or self.gather is not None or self.step.get("end") is True:
            return []
        declared = _names(self.step.get("valid_steps"))
        if declared is None:
            nxt = self._next_sequential()
            return [nxt] if nxt else []
        out = []
        for name in declared:
            target = self._next_sequential() if name == "next" else name
            if target and target not in out and any(s["name"] == target for s in self.steps()):
                out.append(target)
        return out

    def valid_contexts(self) -> list[str]:
        if self.gather is not None or not self.step_mode:  # `end: true` clears navigation too
            return []
        declared = _names(self.step.get("valid_contexts"))
        if declared is None:
            declared = _names(self.context.get("valid_contexts")) or []
        return [c for c in declared if c in self.contexts and c != self.context_name]

    def allowed_functions(self) -> set[str] | None:
        if self.gather is not None:
            return set(_names(self.gather.question.get("functions")) or [])
        return self.whitelist

    def current_block(self) -> str:
        if self.gather is not None:
            g = self.gather
            q = g.question
            confirm = " Read the answer back and get the caller's confirmation first." if q.get("confirm") else ""
            preamble = f"{g.prompt}\n\n" if g.prompt else ""
            return (
                f'{preamble}## Current Question\nAsk the caller: "{q.get("question", "")}" '
                f"{q.get('prompt', '')}".rstrip()
                + f"\nWhen they answer, call gather_submit with the answer.{confirm}"
            )
        if not self.step_mode or not self.step:
            return base_prompt(self.context, self.pom_format, "context")
        return step_block(self.context, self.step, self.pom_format)

    # -- injected tools ----------------------------------------------------------------------
    def definitions(self) -> list[dict[str, Any]]:
        tools = []
        if self.gather is not None:
            q = self.gather.question
            props: dict[str, Any] = {
                "answer": {
                    "type": _JSON_TYPES.get(str(q.get("type", "string")), "string"),
                    "description": f"the caller's answer to: {q.get('question', '')}",
                }
            }
            required = ["answer"]
            if q.get("confirm"):
                props["confirmed_by_user"] = {
                    "type": "string",
                    "enum": ["true", "false"],
                    "description": "true only after the caller confirmed the answer",
                }
                required.append("confirmed_by_user")
            tools.append(
                tool_definition(
                    "gather_submit",
                    "Submit the caller's answer to the current question.",
                    {"type": "object", "properties": props, "required": required},
                )
            )
            return tools
        steps = self.valid_steps()
        if steps:
            tools.append(
                tool_definition(
                    "next_step",
                    "Move to another step when the current step is complete.",
                    {"type": "object", "properties": {"step": {"type": "string", "enum": steps}}, "required": ["step"]},
                )
            )
        contexts = self.valid_contexts()
        if contexts:
            tools.append(
                tool_definition(
                    "change_context",
                    "Switch the conversation to another context.",
                    {
                        "type": "object",
                        "properties": {"context": {"type": "string", "enum": contexts}},
                        "required": ["context"],
                    },
                )
            )
        return tools

    # -- transitions -------------------------------------------------------------------------
    def _enter_step(self, name: str) -> None:
        self.step_name = name
        step = self.step
        if "functions" in step:
            self.whitelist = set(_names(step["functions"]) or [])
        info = step.get("gather_info")
        self.gather = None
        if isinstance(info, dict) and isinstance(info.get("questions"), list) and info["questions"]:
            questions = [q for q in info["questions"] if isinstance(q, dict) and q.get("key")]
            if questions:
                self.gather = _Gather(
                    questions,
                    str(info.get("prompt", "")),
                    str(info.get("output_key", "")),
                    str(info.get("completion_action", "")),
                )

    def go_step(self, name: str, forced: bool = False) -> str:
        target = self._next_sequential() if name == "next" else name
        if not target or not any(s["name"] == target for s in self.steps()):
            raise NavigationError(f"There is no step named '{name}' in this context.")
        if not forced and target not in self.valid_steps():
            allowed = ", ".join(self.valid_steps()) or "none"
            raise NavigationError(f"Step '{name}' is not allowed from here. Valid steps: {allowed}.")
        self.step_mode = True
        self._enter_step(target)
        return target

    def go_context(self, name: str, forced: bool = False) -> str:
        if name not in self.contexts:
            raise NavigationError(f"There is no context named '{name}'.")
        if not forced and name not in self.valid_contexts():
            allowed = ", ".join(self.valid_contexts()) or "none"
            raise NavigationError(f"Context '{name}' is not allowed from here. Valid contexts: {allowed}.")
        self.context_name = name
        self.step_mode = True
        self._enter_step(self._initial_step(name))
        return name

    def step_done(self) -> None:
        """After a turn in an `end: true` step: leave step mode (the call goes on)."""
        if self.step.get("end") is True:
            self.step_mode = False

    def submit(self, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Record a gather_info answer: (reply for the model, global_data update)."""
        g = self.gather
        if g is None:
            raise NavigationError("There is no question to answer right now.")
        q = g.question
        if "answer" not in args:
            raise NavigationError("gather_submit needs the caller's answer in `answer`.")
        answer = args["answer"]
        kind = str(q.get("type", "string"))
        try:
            if kind == "integer":
                answer = int(answer)
            elif kind == "number":
                answer = float(answer)
            elif kind == "boolean" and not isinstance(answer, bool):
                answer = str(answer).strip().lower() in ("true", "yes", "1")
            else:
                answer = answer if kind != "string" else str(answer)
        except (TypeError, ValueError):
            raise NavigationError(f"The answer to '{q.get('question')}' must be a {kind}.") from None
        if q.get("confirm") and str(args.get("confirmed_by_user", "")).lower() != "true":
            raise NavigationError("Confirm the answer with the caller first, then submit with confirmed_by_user true.")
        g.answers[str(q["key"])] = answer
        update = {g.output_key: dict(g.answers)} if g.output_key else {str(q["key"]): answer}
        g.index += 1
        if g.index < len(g.questions):
            return f'Recorded. Next, ask: "{g.question.get("question", "")}"', update
        self.gather = None
        action = g.completion_action
        if action:
            try:
                entered = self.go_step("next" if action == "next_step" else action, forced=True)
                return f"All answers recorded. Now in step '{entered}'.", update
            except NavigationError:
                pass
        return "All answers recorded. Continue with the current step's instructions.", update
