"""What the LLM sees of an AI session's conversation, and the request in flight, kept current.

Theory of operation: the session's `history` (a `Conversation`) is the call log; `LlmView`
decides which of it the model sees and builds each request from it:

    [system prompt] + visible history (sliding window applied) + extra (a preemptive turn)

The system prompt is rendered per request, as the platform does: the verb's base prompt (+
`conscience`), then the current context/step block from the tool runner, all `${…}`-expanded
against the prompt variables of the moment (`prompt_vars`: global_data at the top level and
as `global_data`, the call's facts and SWML vars, `step_history`).

History ops come from the tool runner (`mediaserver.swaig.history_ops` says what each means).
`apply` edits the conversation where the platform would (a `replace_in_history` pair is removed
or rewritten, a kept step's instructions or a context's injected prompt are appended) and hides
entries where the platform only takes them out of the model's view (history "hide", an isolated
or reset context): a hidden entry stays in the call log. A replacement whose pair is not in the
history yet (its reply is still running: the pair's first send) waits for the next request.

The request in flight: the tool loop keeps sending the list `request()` returned, appending its
own messages. A step or context change in the middle of the loop calls `refresh()`, which
rebuilds the front of that list (system prompt and visible history) in place and keeps what the
loop appended, so the loop's next round carries the new step once, not beside the old one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from mediaserver.agents.ai.tools import ToolRunner
from mediaserver.kernel.agent import Conversation
from mediaserver.swaig.gateway import CallFacts, call_info_from
from mediaserver.swaig.history_ops import HistoryOp, ReplacePair, ResetHistory, StepEntered, replace_pair, summary_of
from mediaserver.swaig.prompt import expand_prompt, prompt_vars

__all__ = ["LlmView", "expander"]

Message = dict[str, Any]
Facts = tuple[CallFacts, dict[str, Any]]  # the call, its global_data now
SUMMARY_HEADER = "Summary of the conversation so far:"


class LlmView:
    def __init__(self) -> None:
        self._hidden: dict[int, Message] = {}  # id -> entry (held, so that an id is never reused)
        self.step_history: dict[str, dict[str, str]] = {}
        self._step_mark: Message | None = None  # the last entry before the current step began
        self._pending: dict[str, bool | str] = {}  # replace_in_history waiting for its pair
        self._live: list[Message] | None = None
        self._prefix = 0
        self._extra: list[Message] = []
        self.system = ""  # the system prompt last sent (expanded), for the call log

    # -- prompt ----------------------------------------------------------------------------
    def variables(self, call: CallFacts, global_data: dict[str, Any]) -> dict[str, Any]:
        info = call_info_from(call)
        root = prompt_vars(
            global_data,
            now=datetime.now().astimezone(),
            direction=info.direction,
            caller_id_name=info.caller_id_name,
            caller_id_num=info.caller_id_num,
            swml_vars=info.vars,
        )
        root.setdefault("step_history", self.step_history)
        return root

    # -- history ops -----------------------------------------------------------------------
    def apply(
        self, ops: Sequence[HistoryOp], history: Conversation, expand: Callable[[str], str], *, final: bool
    ) -> None:
        """Apply the runner's ops; `final`: a new request is being built (an unmatched pair is dropped)."""
        for op in ops:
            if isinstance(op, ReplacePair):
                self._pending[op.tool_call_id] = op.value
            elif isinstance(op, StepEntered):
                self._step_entered(op, history, expand)
            elif isinstance(op, ResetHistory):
                self._reset(op, history, expand)
        for call_id, value in list(self._pending.items()):
            if replace_pair(history, call_id, value) or final:
                del self._pending[call_id]

    def _step_entered(self, op: StepEntered, history: Conversation, expand: Callable[[str], str]) -> None:
        if op.left:
            start = next((i + 1 for i, e in enumerate(history) if e is self._step_mark), 0)
            record = {"name": op.left, "summary": summary_of(self.visible(history[start:]))}
            self.step_history[op.left] = record
            self.step_history["prev"] = record
        if op.mode == "keep" and op.left_block:
            history.append({"role": "system", "content": expand(op.left_block)})
        elif op.mode == "hide":
            self._hide(history)
        self._step_mark = history[-1] if history else None

    def _reset(self, op: ResetHistory, history: Conversation, expand: Callable[[str], str]) -> None:
        summary = summary_of(self.visible(history)) if op.consolidate else ""
        if op.wipe or op.consolidate:
            self._hide(history)
        if summary:
            history.append({"role": "system", "content": f"{SUMMARY_HEADER}\n{summary}"})
        if op.system_prompt:
            history.append({"role": "system", "content": expand(op.system_prompt)})
        if op.user_prompt:
            history.append({"role": "user", "content": expand(op.user_prompt)})

    def _hide(self, history: Sequence[Message]) -> None:
        for entry in history:
            self._hidden[id(entry)] = entry

    def visible(self, history: Sequence[Message]) -> list[Message]:
        return [e for e in history if id(e) not in self._hidden]

    # -- what the session calls --------------------------------------------------------------
    def next_request(
        self,
        tools: ToolRunner,
        base: str,
        history: Conversation,
        facts: Facts,
        extra: list[Message] | None,
        window: int,
    ) -> list[Message]:
        """The runner's pending ops applied, then a new request (it becomes the live one)."""
        expand = expander(self.variables(*facts))
        self.apply(tools.take_history_ops(), history, expand, final=True)
        return self.request(expand(tools.system_prompt(base)), history, extra, window)

    def follow(self, tools: ToolRunner, base: str, history: Conversation, facts: Facts, window: int) -> None:
        """A step or context changed: the pending ops applied and the request in flight rebuilt."""
        expand = expander(self.variables(*facts))
        self.apply(tools.take_history_ops(), history, expand, final=False)
        self.refresh(expand(tools.system_prompt(base)), history, window)

    def expand(self, text: str, facts: Facts) -> str:
        """`text` (the post_prompt) expanded against the variables of the moment."""
        return expander(self.variables(*facts))(text)

    # -- requests --------------------------------------------------------------------------
    def request(
        self, system: str, history: Sequence[Message], extra: list[Message] | None, window: int = 0
    ) -> list[Message]:
        """A new request; it stays the live one (see `refresh`) until the next."""
        self._extra = list(extra or [])
        live = self._front(system, history, self._extra, window)
        self._live, self._prefix = live, len(live)
        return live

    def refresh(self, system: str, history: Sequence[Message], window: int = 0) -> None:
        """Rebuild the front of the request in flight, keeping what the tool loop appended."""
        live = self._live
        if live is None:
            return
        extra = self._extra
        if extra and list(history[-len(extra) :]) == extra:  # a preemptive turn was committed since
            extra = self._extra = []
        front = self._front(system, history, extra, window)
        live[:] = front + live[self._prefix :]
        self._prefix = len(front)

    def _front(self, system: str, history: Sequence[Message], extra: list[Message], window: int) -> list[Message]:
        visible = self.visible(history)
        if window:
            visible = visible[-window:]
        self.system = system
        head = [{"role": "system", "content": system}] if system else []
        return head + visible + extra


def expander(variables: dict[str, Any]) -> Callable[[str], str]:
    return lambda text: expand_prompt(text, variables)
