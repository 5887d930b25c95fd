"""The SWML interpreter: a sans-I/O state machine that turns a `Document` into `Effect`s.

Theory of operation: `start()` begins at `sections.main[0]`; it and every `resume(result)` run
verbs until one needs the call (an effect), and return that effect. The caller carries the
effect out and calls `resume()` with its `EffectResult` (or None). Nothing here waits, reads a
clock or does I/O, so a whole script is tested as "effects out for results in".

State is a call stack of frames `(section, pc)`: `pc` is the index of the next verb to run in
that section. A section that runs out pops its frame and the caller's frame goes on (that is
how `execute` will return); the bottom frame running out ends the script with `Finished`.
`return` pops the current frame early and stores its value in `variables["return_value"]`.

Verbs are dispatched through two tables:
- control verbs (`_CONTROL`: `label`, `return`; later `goto`, `cond`, `switch`, `execute`,
  `transfer`, `set`, `unset`) change frames or variables and produce no effect;
- effect builders (`_builders`: `answer`, `play`, `sleep`, `hangup`) turn validated params into
  an `Effect`. Any other schema verb comes out as `Unsupported` so the executor can log it and
  resume: the runner grows by adding rows to these tables.

A guard against runaway scripts: more than `step_budget` control steps in one `start`/`resume`
without an effect raises `SwmlLoopError` (DESIGN §2.4).

Lifecycle is an Enum and a table (`_ALLOWED`): NEW --start--> WAITING --resume--> WAITING...;
after `Hangup` or `Finished`, or after an error, the state is DONE and every call raises
`SwmlStateError`. Expressions (`${...}`) are not evaluated yet: a verb that needs one raises
`SwmlError` with its path, which the executor turns into a clean hangup.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from mediaserver.swml.document import Document, Verb, is_expression
from mediaserver.swml.effects import (
    FINAL_EFFECTS,
    Ai,
    AiFinished,
    Answer,
    Effect,
    EffectResult,
    Finished,
    Hangup,
    Play,
    Sleep,
    Unsupported,
)
from mediaserver.swml.errors import SwmlError, SwmlLoopError, SwmlStateError
from mediaserver.swml.play_urls import PlayItem, PlaySay, parse_play_url

__all__ = ["DEFAULT_STEP_BUDGET", "Interpreter", "SwmlError", "SwmlLoopError", "SwmlStateError"]

DEFAULT_STEP_BUDGET = 10_000


class _State(enum.Enum):
    NEW = "new"
    WAITING = "waiting"  # an effect is out; the next call is resume()
    DONE = "done"


_ALLOWED: dict[_State, frozenset[str]] = {
    _State.NEW: frozenset({"start"}),
    _State.WAITING: frozenset({"resume"}),
    _State.DONE: frozenset(),
}


@dataclass(slots=True)
class _Frame:
    section: str
    pc: int = 0


class Interpreter:
    def __init__(
        self,
        document: Document,
        variables: dict[str, Any] | None = None,
        step_budget: int = DEFAULT_STEP_BUDGET,
    ) -> None:
        if step_budget < 1:
            raise ValueError(f"step_budget must be >= 1, got {step_budget}")
        self.document = document
        self.variables: dict[str, Any] = dict(variables or {})
        self.step_budget = step_budget
        self.last_result: EffectResult | None = None
        self._state = _State.NEW
        self._stack: list[_Frame] = []
        self._builders: dict[str, Callable[[Verb], Effect]] = {
            "answer": self._answer,
            "play": self._play,
            "sleep": self._sleep,
            "hangup": self._hangup,
            "ai": self._ai,
            "amazon_bedrock": self._ai,
        }

    # ---- public API ----------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    @property
    def frames(self) -> tuple[tuple[str, int], ...]:
        """The call stack, bottom first, as (section, index of the next verb)."""
        return tuple((frame.section, frame.pc) for frame in self._stack)

    def start(self) -> Effect:
        self._check("start")
        self._stack.append(_Frame("main"))
        return self._run()

    def resume(self, result: EffectResult | None = None) -> Effect:
        self._check("resume")
        self.last_result = result
        if isinstance(result, AiFinished):
            # SWML reads the outcome of `ai` as ai_result (and return_value), plus what it set.
            self.variables.update(result.variables)
            self.variables["ai_result"] = result.result
            self.variables["return_value"] = result.result
        return self._run()

    # ---- the loop ------------------------------------------------------------------------

    def _check(self, call: str) -> None:
        if call not in _ALLOWED[self._state]:
            raise SwmlStateError(f"{call}() is not allowed when the interpreter is {self._state.value}")

    def _run(self) -> Effect:
        try:
            effect = self._step_until_effect()
        except BaseException:
            # A half-run verb leaves no state worth resuming; the executor hangs up.
            self._state = _State.DONE
            raise
        self._state = _State.DONE if isinstance(effect, FINAL_EFFECTS) else _State.WAITING
        return effect

    def _step_until_effect(self) -> Effect:
        steps = 0
        while True:
            frame = self._stack[-1]
            verbs = self.document.sections[frame.section]
            if frame.pc >= len(verbs):
                self._stack.pop()
                if not self._stack:
                    return Finished(path=f"sections.{frame.section}")
                last_path = f"sections.{frame.section}"
            else:
                verb = verbs[frame.pc]
                frame.pc += 1
                last_path = verb.path
                control = _CONTROL.get(verb.name)
                if control is None:
                    build = self._builders.get(verb.name, _unsupported)
                    return build(verb)
                effect = control(self, verb)
                if effect is not None:
                    return effect
            steps += 1
            if steps >= self.step_budget:
                raise SwmlLoopError(
                    last_path, f"{steps} control steps without an effect (a runaway goto or execute loop?)"
                )

    # ---- effect builders -----------------------------------------------------------------

    def _answer(self, verb: Verb) -> Effect:
        params = verb.params
        max_duration = params.get("max_duration")
        if max_duration is not None:
            max_duration = self._concrete(max_duration, f"{verb.path}.answer.max_duration")
        return Answer(path=verb.path, max_duration_s=max_duration, codecs=params.get("codecs"))

    def _play(self, verb: Verb) -> Effect:
        params = verb.params
        base = f"{verb.path}.play"
        if "url" in params:
            urls = [(params["url"], f"{base}.url")]
        else:
            urls = [(url, f"{base}.urls[{index}]") for index, url in enumerate(params["urls"])]
        items: list[PlayItem] = []
        for url, path in urls:
            item = parse_play_url(self._concrete(url, path), path)
            if isinstance(item, PlaySay):
                item = replace(
                    item,
                    voice=params.get("say_voice"),
                    language=params.get("say_language"),
                    gender=params.get("say_gender"),
                )
            items.append(item)
        return Play(
            path=verb.path,
            items=tuple(items),
            volume_db=float(params.get("volume", 0.0)),
            auto_answer=params.get("auto_answer", True),
            status_url=params.get("status_url"),
        )

    def _sleep(self, verb: Verb) -> Effect:
        duration = self._concrete(verb.params["duration"], f"{verb.path}.sleep.duration")
        return Sleep(path=verb.path, duration_ms=duration)

    def _hangup(self, verb: Verb) -> Effect:
        return Hangup(path=verb.path, reason=verb.params.get("reason", "hangup"))

    def _ai(self, verb: Verb) -> Effect:
        params = verb.params if isinstance(verb.params, dict) else {}
        return Ai(path=verb.path, verb=verb.name, params=params)

    def _concrete(self, value: Any, path: str) -> Any:
        # The seam where the expression engine (issue: expressions) will expand ${...}; until
        # then a value that needs it is refused rather than spoken or slept on verbatim.
        if is_expression(value) or (isinstance(value, str) and ("${" in value or "%{" in value)):
            raise SwmlError(path, f"expression {value!r} needs the expression engine (not supported yet)")
        return value


# ---- control verbs ---------------------------------------------------------------------------


def _label(interpreter: Interpreter, verb: Verb) -> Effect | None:
    return None  # a jump target only; running over it does nothing


def _return(interpreter: Interpreter, verb: Verb) -> Effect | None:
    interpreter.variables["return_value"] = verb.params
    interpreter._stack.pop()
    if not interpreter._stack:
        return Finished(path=verb.path)  # `return` in main ends the script
    return None


def _unsupported(verb: Verb) -> Effect:
    return Unsupported(path=verb.path, verb=verb.name, params=verb.params)


_CONTROL: dict[str, Callable[[Interpreter, Verb], Effect | None]] = {
    "label": _label,
    "return": _return,
}
