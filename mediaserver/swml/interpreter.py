"""The SWML interpreter: a sans-I/O state machine that turns a `Document` into `Effect`s.

Theory of operation: `start()` begins at `sections.main[0]`; it and every `resume(result)` run
verbs until one needs the call (an effect), and return that effect. The caller carries the
effect out and calls `resume()` with its `EffectResult` (or None). Nothing here waits, reads a
clock or does I/O (JavaScript expressions run in an injected `Evaluator`, a pure computation
under a time limit), so a whole script is tested as "effects out for results in".

State is a call stack of frames. A CALL frame runs a section of a document (main at start, a
section or fetched document entered by `execute`, the target of `transfer`) and carries the
`params` the callee sees plus what to do when it returns (`on_return`, `result`). A BLOCK
frame runs a nested verb list (`cond` then/else, `switch` case, `on_return`) in the scope of
the CALL frame below it. A frame that runs out pops; the bottom frame running out ends the
script with `Finished`. `return` pops up to and including the nearest CALL frame, stores its
value in `return_value`, then the caller's `on_return` verbs run and `result` branches on the
value. `transfer` never returns: it empties the stack. `goto` jumps to a label of the current
section (leaving any blocks) when `when` holds, at most `max` times per goto.

Verbs are dispatched through two tables:
- control verbs (`_CONTROL`: label, return, goto, cond, switch, execute, transfer, set, unset)
  change frames or variables and produce no effect (except `execute`/`transfer` to a URL,
  which yield `FetchSwml`);
- effect builders (`_builders`: swml's `BUILDERS`, with the `builders` given at construction
  merged over them: the kernel's own verbs, kernel/verbs/registry.py) expand the verb's params
  (`${…}`) and build an `Effect`. Any other schema verb comes out as `Unsupported` so the
  executor can log it and resume. A builder given for a control verb is refused: it would
  never run.

Variables (`vars`) hold `set` values and every verb's results; expressions see `call.*`,
`vars.*` (also bare), `params.*` (the current CALL frame's) and `envs.*`.

A guard against runaway scripts: more than `step_budget` control steps in one `start`/`resume`
without an effect raises `SwmlLoopError` (docs/design.md §2).

Lifecycle is an Enum and a table (`_ALLOWED`): NEW --start--> WAITING --resume--> WAITING...;
after `Hangup` or `Finished`, or after an error, the state is DONE and every call raises
`SwmlStateError`.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mediaserver.swml import builders as _builders
from mediaserver.swml.builders import Builder
from mediaserver.swml.document import Document, Verb, document_from_data
from mediaserver.swml.effects import (
    FINAL_EFFECTS,
    AiFinished,
    Connect,
    Effect,
    EffectResult,
    FetchFailed,
    FetchSwml,
    Finished,
    SwmlFetched,
    VerbResult,
)
from mediaserver.swml.errors import SwmlError, SwmlLoopError, SwmlStateError
from mediaserver.swml.expr import Evaluator, JsEvaluator, expand, strip_template, to_text, truthy
from mediaserver.swml.params import CondBranch, SwitchSpec

__all__ = ["CONTROL_VERBS", "DEFAULT_STEP_BUDGET", "Interpreter", "SwmlError", "SwmlLoopError", "SwmlStateError"]

DEFAULT_STEP_BUDGET = 10_000
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")  # scheme://user:pass@ -> scheme://


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
    document: Document
    section: str
    verbs: list[Verb]
    pc: int = 0
    call: bool = True  # CALL frame (a section) or BLOCK (a nested verb list)
    params: dict[str, Any] = field(default_factory=dict)
    on_return: list[Verb] | None = None
    result: list[CondBranch] | SwitchSpec | None = None


class Interpreter:
    def __init__(
        self,
        document: Document,
        variables: dict[str, Any] | None = None,
        step_budget: int = DEFAULT_STEP_BUDGET,
        *,
        call: dict[str, Any] | None = None,
        envs: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        evaluator: Evaluator | None = None,
        builders: Mapping[str, Builder] | None = None,
    ) -> None:
        if step_budget < 1:
            raise ValueError(f"step_budget must be >= 1, got {step_budget}")
        if clash := sorted(set(builders or ()) & CONTROL_VERBS):
            raise ValueError(f"control verbs cannot have effect builders: {', '.join(clash)}")
        self.document = document
        self.variables: dict[str, Any] = dict(variables or {})
        self.call: dict[str, Any] = dict(call or {})
        self.envs: dict[str, Any] = dict(envs or {})
        self.step_budget = step_budget
        self.evaluator: Evaluator = evaluator if evaluator is not None else JsEvaluator()
        self.last_result: EffectResult | None = None
        self._initial_params = dict(params or {})
        self._state = _State.NEW
        self._stack: list[_Frame] = []
        self._pending: Effect | None = None
        self._goto_counts: dict[tuple[int, str], int] = {}
        self._fetch_context: dict[str, dict[str, Any]] = {}  # execute's on_return/result while fetching
        self._builders: dict[str, Builder] = {**_builders.BUILDERS, **(builders or {})}

    # ---- public API ----------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    @property
    def frames(self) -> tuple[tuple[str, int], ...]:
        """The call stack, bottom first, as (section, index of the next verb)."""
        return tuple((frame.section, frame.pc) for frame in self._stack)

    @property
    def params(self) -> dict[str, Any]:
        """The params of the running section (from `execute`/`transfer`)."""
        for frame in reversed(self._stack):
            if frame.call:
                return frame.params
        return self._initial_params

    def scope(self) -> dict[str, Any]:
        """What expressions see: vars bare, then the named scopes (which bare names cannot hide)."""
        scope = dict(self.variables)
        scope.update(call=self.call, vars=self.variables, params=self.params, envs=self.envs)
        return scope

    def expand(self, value: Any, path: str) -> Any:
        return expand(value, self.scope(), path, self.evaluator)

    def start(self) -> Effect:
        self._check("start")
        self._stack.append(_Frame(self.document, "main", self.document.sections["main"], params=self._initial_params))
        return self._run()

    def resume(self, result: EffectResult | None = None) -> Effect:
        self._check("resume")
        self.last_result = result
        pending, self._pending = self._pending, None
        if isinstance(result, AiFinished):
            # SWML reads the outcome of `ai` as ai_result (and return_value), plus what it set.
            self.variables.update(result.variables)
            self.variables["ai_result"] = result.result
            self.variables["return_value"] = result.result
        elif isinstance(result, VerbResult):
            self.variables.update(result.variables)
        elif isinstance(pending, FetchSwml):
            return self._run(lambda: self._enter_fetched(pending, result))
        return self._run()

    def replace(self, document: Document, params: dict[str, Any] | None = None) -> None:
        """Continue in another document from its main, dropping the stack (SWAIG `SWML` transfer).

        Call it between `resume`s (while an effect is out); the next `resume` runs the new
        document. The variables are kept: they belong to the call, not to the document.
        """
        if self._state is not _State.WAITING:
            raise SwmlStateError(f"replace() is not allowed when the interpreter is {self._state.value}")
        self._stack.clear()
        self._stack.append(_Frame(document, "main", document.sections["main"], params=dict(params or {})))
        self._pending = None

    # ---- the loop ------------------------------------------------------------------------

    def _check(self, call: str) -> None:
        if call not in _ALLOWED[self._state]:
            raise SwmlStateError(f"{call}() is not allowed when the interpreter is {self._state.value}")

    def _run(self, before: Callable[[], None] | None = None) -> Effect:
        try:
            if before is not None:
                before()
            effect = self._step_until_effect()
        except BaseException:
            # A half-run verb leaves no state worth resuming; the executor hangs up.
            self._state = _State.DONE
            raise
        self._state = _State.DONE if isinstance(effect, FINAL_EFFECTS) else _State.WAITING
        self._pending = effect
        return effect

    def _step_until_effect(self) -> Effect:
        steps = 0
        while True:
            if not self._stack:  # a transfer to a phone or SIP address has run
                return Finished(path="sections")
            frame = self._stack[-1]
            if frame.pc >= len(frame.verbs):
                self._stack.pop()
                last_path = f"sections.{frame.section}"
                if frame.call:
                    self._returned(frame)
                if not self._stack:
                    return Finished(path=last_path)
            else:
                verb = frame.verbs[frame.pc]
                frame.pc += 1
                last_path = verb.path
                control = _CONTROL.get(verb.name)
                if control is None:
                    build = self._builders.get(verb.name, _builders.unsupported)
                    return build(self, verb)
                effect = control(self, verb)
                if effect is not None:
                    return effect
            steps += 1
            if steps >= self.step_budget:
                raise SwmlLoopError(
                    last_path, f"{steps} control steps without an effect (a runaway goto or execute loop?)"
                )

    # ---- frames --------------------------------------------------------------------------

    def _section_frame(self) -> _Frame:
        for frame in reversed(self._stack):
            if frame.call:
                return frame
        raise SwmlStateError("no section is running")  # pragma: no cover - start() pushes one

    def _push_block(self, verbs: list[Verb] | None, path: str) -> None:
        if verbs:
            current = self._stack[-1]
            self._stack.append(_Frame(current.document, current.section, verbs, call=False))

    def _returned(self, frame: _Frame) -> None:
        """A CALL frame is gone: run the caller's result branch after its on_return verbs."""
        if not self._stack:
            return
        if frame.result is not None:
            if isinstance(frame.result, SwitchSpec):
                value = self.variables.get("return_value")
                if frame.result.variable:
                    value = self._value_of(frame.result.variable, f"{frame.result.path}.variable")
                self._push_block(_switch_branch(frame.result, value), frame.result.path)
            else:
                self._push_block(self._cond_branch(frame.result), "")
        self._push_block(frame.on_return, "")

    def _enter(
        self,
        document: Document,
        section: str,
        path: str,
        *,
        nest: bool,
        params: dict[str, Any],
        on_return: list[Verb] | None = None,
        result: list[CondBranch] | SwitchSpec | None = None,
    ) -> None:
        if section not in document.sections:
            raise SwmlError(path, f"no section named {section!r} (sections: {', '.join(document.sections)})")
        if not nest:
            self._stack.clear()
        self._stack.append(
            _Frame(document, section, document.sections[section], params=params, on_return=on_return, result=result)
        )

    def _enter_fetched(self, pending: FetchSwml, result: EffectResult | None) -> None:
        if isinstance(result, FetchFailed):
            shown = _USERINFO.sub(r"\1", pending.url)  # the error reaches the call's events: no password
            raise SwmlError(f"{pending.path}.{pending.purpose}.dest", f"fetching {shown} failed: {result.error}")
        if not isinstance(result, SwmlFetched) or not isinstance(result.document, Document):
            raise SwmlStateError(f"resume() after FetchSwml needs SwmlFetched or FetchFailed, got {result!r}")
        verb_params = self._fetch_context.pop(pending.path, {})
        self._enter(
            result.document,
            "main",
            pending.path,
            nest=pending.purpose == "execute",
            params=pending.params,
            on_return=verb_params.get("on_return"),
            result=verb_params.get("result"),
        )

    # ---- expressions ---------------------------------------------------------------------

    def _value_of(self, variable: str, path: str) -> Any:
        return self.evaluator.evaluate(strip_template(variable), self.scope(), path)

    def _truthy(self, code: str, path: str) -> bool:
        return truthy(code, self.scope(), path, self.evaluator)

    def _cond_branch(self, branches: list[CondBranch]) -> list[Verb] | None:
        for branch in branches:
            if branch.when is None:
                return branch.then
            if self._truthy(branch.when, f"{branch.path}.when"):
                return branch.then
            if branch.otherwise is not None:
                return branch.otherwise
        return None


# ---- control verbs ---------------------------------------------------------------------------


def _label(interp: Interpreter, verb: Verb) -> Effect | None:
    return None  # a jump target only; running over it does nothing


def _return(interp: Interpreter, verb: Verb) -> Effect | None:
    interp.variables["return_value"] = interp.expand(verb.params, f"{verb.path}.return")
    while interp._stack:
        frame = interp._stack.pop()
        if frame.call:
            if not interp._stack:
                return Finished(path=verb.path)  # `return` in main ends the script
            interp._returned(frame)
            return None
    return Finished(path=verb.path)  # pragma: no cover - main is always a CALL frame


def _goto(interp: Interpreter, verb: Verb) -> Effect | None:
    params = verb.params
    base = f"{verb.path}.goto"
    if "when" in params and not interp._truthy(params["when"], f"{base}.when"):
        return None
    limit = _builders.integer(interp.expand(params.get("max", 100), f"{base}.max"), f"{base}.max")
    section = interp._section_frame()
    key = (id(section.document), verb.path)
    count = interp._goto_counts.get(key, 0)
    if count >= limit:
        return None  # the loop has run `max` times: fall through to the next verb
    labels = section.document.labels.get(section.section, {})
    if params["label"] not in labels:
        raise SwmlError(f"{base}.label", f"no label {params['label']!r} in section {section.section!r}")
    interp._goto_counts[key] = count + 1
    while interp._stack[-1] is not section:
        interp._stack.pop()  # leave the cond/switch blocks the goto sits in
    section.pc = labels[params["label"]]
    return None


def _cond(interp: Interpreter, verb: Verb) -> Effect | None:
    interp._push_block(interp._cond_branch(verb.params), verb.path)
    return None


def _switch(interp: Interpreter, verb: Verb) -> Effect | None:
    spec: SwitchSpec = verb.params
    value = interp._value_of(spec.variable or "return_value", f"{verb.path}.switch.variable")
    interp._push_block(_switch_branch(spec, value), verb.path)
    return None


def _switch_branch(spec: SwitchSpec, value: Any) -> list[Verb] | None:
    key = to_text(value)
    return spec.cases.get(key, spec.default)


def _set(interp: Interpreter, verb: Verb) -> Effect | None:
    for name, value in verb.params.items():
        _assign(interp.variables, name, interp.expand(value, f"{verb.path}.set.{name}"))
    return None


def _assign(variables: dict[str, Any], name: str, value: Any) -> None:
    # `set: {"vars.a.b": 1}` and `set: {"a.b": 1}` both mean vars.a.b; intermediate objects are made.
    parts = name.split(".")
    if parts[0] == "vars" and len(parts) > 1:
        parts = parts[1:]
    target = variables
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[parts[-1]] = value


def _unset(interp: Interpreter, verb: Verb) -> Effect | None:
    for name in verb.params:
        parts = name.split(".")
        if parts[0] == "vars" and len(parts) > 1:
            parts = parts[1:]
        target: Any = interp.variables
        for part in parts[:-1]:
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target.pop(parts[-1], None)
    return None


def _execute(interp: Interpreter, verb: Verb) -> Effect | None:
    return _jump(interp, verb, "execute")


def _transfer(interp: Interpreter, verb: Verb) -> Effect | None:
    return _jump(interp, verb, "transfer")


def _jump(interp: Interpreter, verb: Verb, purpose: str) -> Effect | None:
    base = f"{verb.path}.{purpose}"
    dest = interp.expand(verb.params["dest"], f"{base}.dest")
    params = interp.expand(verb.params.get("params", {}), f"{base}.params")
    nest = purpose == "execute"
    on_return, result = verb.params.get("on_return"), verb.params.get("result")
    if isinstance(dest, dict):
        document = document_from_data(dest, f"{base}.dest")
        interp._enter(document, "main", base, nest=nest, params=params, on_return=on_return, result=result)
        return None
    if not isinstance(dest, str) or not dest.strip():
        raise SwmlError(f"{base}.dest", f"expected a section name, URL or SWML document, got {dest!r}")
    dest = dest.strip()
    if dest.startswith("{"):
        try:
            data = json.loads(dest)
        except json.JSONDecodeError as exc:
            raise SwmlError(f"{base}.dest", f"inline SWML is not valid JSON: {exc}") from None
        document = document_from_data(data, f"{base}.dest")
        interp._enter(document, "main", base, nest=nest, params=params, on_return=on_return, result=result)
        return None
    if _DIAL_DEST.match(dest):
        # A SIP/tel address or a phone number: bridge the call there (through the Dialer); a
        # transfer never comes back, an execute goes on after the bridge ends.
        if not nest:
            interp._stack.clear()
        return Connect(path=verb.path, params={"to": dest})
    if dest.lower().startswith(("http://", "https://")):
        interp._fetch_context[verb.path] = {"on_return": on_return, "result": result}
        return FetchSwml(path=verb.path, url=dest, purpose=purpose, params=params, variables=dict(interp.variables))
    current = interp._section_frame().document
    interp._enter(current, dest, f"{base}.dest", nest=nest, params=params, on_return=on_return, result=result)
    return None


_DIAL_DEST = re.compile(r"^(sips?:|tel:|\+?[0-9]{3,15}$)", re.IGNORECASE)

_CONTROL: dict[str, Callable[[Interpreter, Verb], Effect | None]] = {
    "label": _label,
    "return": _return,
    "goto": _goto,
    "cond": _cond,
    "switch": _switch,
    "set": _set,
    "unset": _unset,
    "execute": _execute,
    "transfer": _transfer,
}

CONTROL_VERBS: frozenset[str] = frozenset(_CONTROL)  # run inside the interpreter; never built into effects
