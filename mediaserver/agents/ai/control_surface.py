"""The session's SWAIG-facing surface: `AiControl` (what SWAIG actions may do to the live
conversation, swaig/seam.py) and `SessionRecord` (what SWAIG bodies, fillers and wait_file read,
swaig/session_record.py).

Theory of operation: `ControlSurface` is a mixin of `AiSession` (session.py); it holds no state
of its own. Each method either acts on the session's parts (history, global data, the turn
manager's params, the LLM's view of the history) or hands over to the part that owns the action
(`SessionControls` for hold, background audio, hints and voice; `SessionSwml` for SWML
documents). Speaking goes through the session's replies (replies.py: `_say`), ending through
`_finish`; both are declared here and defined by the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from mediaserver.agents.ai.accounting import Usage
from mediaserver.agents.ai.call_log import CallRecorder
from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.context_switch import switch_context
from mediaserver.agents.ai.controls import SessionControls
from mediaserver.agents.ai.engines import AiEngines
from mediaserver.agents.ai.fillers import play_loops, speak_filler
from mediaserver.agents.ai.global_data import GlobalDataStore
from mediaserver.agents.ai.history_ops import LlmView
from mediaserver.agents.ai.reply import Reply
from mediaserver.agents.ai.swml_actions import SessionSwml
from mediaserver.agents.ai.tools import ToolRunner
from mediaserver.errors import HangupCause
from mediaserver.events import AiChangeContext, AiChangeStep, AiSettingsUpdated, AiToggleFunctions
from mediaserver.kernel.agent import Conversation
from mediaserver.kernel.call import Call
from mediaserver.kernel.fetch import swml_call
from mediaserver.pipeline.turn import TurnManager


class SayText(Protocol):
    """The session's `_say` (replies.py): fixed text spoken through the phrase cache."""

    def __call__(self, text: str, *, bargeable: bool = True, history: bool = True) -> Coroutine[Any, Any, None]: ...


class ControlSurface:
    """`AiControl` and `SessionRecord` of `AiSession`; the attributes below are the session's."""

    call: Call
    config: AiSessionConfig
    engines: AiEngines
    tools: ToolRunner
    usage: Usage
    turn: TurnManager
    history: Conversation
    variables: dict[str, Any]
    global_store: GlobalDataStore
    global_data_: dict[str, Any]
    record: CallRecorder
    view: LlmView
    swml_actions: SessionSwml
    controls: SessionControls
    _reply: Reply | None
    _preemptive_text: str | None
    _done: bool
    # The session's own steps (session.py, replies.py)
    _start: Callable[[Any], asyncio.Task[Any]]
    _finish: Callable[[str], None]
    _user_turn: Callable[[str], None]
    _say: SayText

    # -- AiControl: what SWAIG actions may do ----------------------------------------------------
    def say(self, text: str) -> None:
        self._start(self._say(text))

    def hangup(self, reason: str = "") -> None:
        self.call.hangup(HangupCause.NORMAL_CLEARING, reason=reason or "ai hangup")
        self._finish("success")

    def stop(self) -> None:
        self._finish("success")

    def add_user_input(self, text: str) -> None:
        self._user_turn(text)

    def add_system_message(self, text: str) -> None:
        self.history.append({"role": "system", "content": text})

    def user_turns(self) -> int:
        return sum(1 for entry in self.history if entry.get("role") == "user")

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def finished(self) -> bool:
        return self._done

    def set_global_data(self, data: dict[str, Any]) -> None:
        self.global_data_.update(data)
        self.global_store.save(self.global_data_)

    def unset_global_data(self, keys: list[str]) -> None:
        for key in keys:
            self.global_data_.pop(key, None)
        self.global_store.save(self.global_data_)

    def global_data(self) -> dict[str, Any]:
        return self.global_data_

    def toggle_functions(self, changes: list[dict[str, Any]]) -> None:
        self.call.events.emit(AiToggleFunctions(changes=changes))

    def update_settings(self, settings: dict[str, Any]) -> None:
        merged = AiSessionConfig.from_params({"params": settings})
        changes = {
            k: getattr(merged.turn, k) for k in vars(merged.turn) if any(p in settings for p in _TURN_KEYS.get(k, ()))
        }
        if self.engines.detector is None:
            changes.pop("turn_detection", None)  # no detector: the fixed silence rule stays
        if changes:
            self.turn.set_params(**changes)
        self.controls.update_settings(settings)  # LLM knobs, confidence, per-reply tool flags
        self.swml_actions.settings(settings)  # transfer_summary
        self.call.events.emit(AiSettingsUpdated(keys=sorted(settings)))

    def swml(self, document: dict[str, Any], transfer: bool) -> None:
        self.swml_actions.swml(document, transfer)

    def context_switch(self, switch: dict[str, Any]) -> None:
        """SWAIG context_switch: the LLM's view reset, the request in flight rebuilt (context_switch.py)."""
        self.config = switch_context(switch, self.view, self.config, self.history, (self.call, self.global_data_))
        self._follow_move()

    def change_context(self, name: str) -> None:
        self.call.events.emit(AiChangeContext(name=name))
        self._follow_move()

    def change_step(self, name: str) -> None:
        self.call.events.emit(AiChangeStep(name=name))
        self._follow_move()

    def _follow_move(self) -> None:
        """The tool loop's next round carries the new step (replacing the old) and its history ops."""
        facts = (self.call, self.global_data_)
        self.view.follow(self.tools, self.config.prompt, self.history, facts, self.config.sliding_window)

    def hold(self, timeout_s: int, music: str = "", on_end: Callable[[str], None] | None = None) -> None:
        self.controls.hold(timeout_s, music, on_end)

    def wait_for_user(self, mode: bool | int) -> None:
        self.controls.wait_for_user(mode)

    def play_background(self, file: str, wait: bool = False) -> None:
        self.controls.play_background(file, wait)

    def stop_background(self) -> None:
        self.controls.stop_background()

    def add_hints(self, hints: list[Any]) -> None:
        self.controls.add_hints(hints)

    def clear_hints(self) -> None:
        self.controls.clear_hints()

    def change_voice(self, voice: str) -> None:
        self.controls.change_voice(voice)

    def user_event(self, event: Any) -> None:
        self.controls.user_event(event)

    def defer(self, apply: Callable[[], None]) -> None:
        self.controls.defer(apply)

    # -- SessionRecord: what SWAIG bodies, fillers and wait_file use (swaig/session_record.py) ---
    def call_log(self) -> list[dict[str, Any]]:
        return self.record.call_log(self._preemptive_text)

    def raw_call_log(self) -> list[dict[str, Any]]:
        return self.record.raw_call_log(self._preemptive_text)

    def swml_vars(self) -> dict[str, Any]:
        return self.variables

    def swml_call(self) -> dict[str, Any]:
        return swml_call(self.call)

    def dates_us(self) -> dict[str, int]:
        return self.record.dates_us()

    def response_times(self) -> list[dict[str, Any]]:
        return self.record.response_times()

    async def speak(self, text: str) -> None:
        """A function's filler: through the running reply (barge-in cuts it), never in the LLM history."""
        self.record.note("assistant-manual", text)
        if self._reply is not None:
            await speak_filler(self._reply, text)
        else:
            await self._say(text, history=False)

    async def play_file(self, url: str, loops: int) -> None:
        if self._reply is not None:  # a preemptive reply's tool: no music before the caller's turn ends
            await self._reply.committed.wait()
        await play_loops(self.call, url, loops, self.engines.blocking)

    def usage_totals(self) -> dict[str, Any] | None:
        """The post-prompt body's `total_*` fields, with params.enable_accounting (post_prompt.py)."""
        return self.usage.totals() if self.config.ops.enable_accounting else None


_TURN_KEYS = {
    "end_of_speech_ms": ("end_of_speech_timeout",),
    "speech_event_timeout_ms": ("speech_event_timeout",),
    "first_word_timeout_ms": ("first_word_timeout",),
    "speech_timeout_ms": ("speech_timeout",),
    "attention_timeout_ms": ("attention_timeout",),
    "inactivity_timeout_ms": ("inactivity_timeout",),
    "enable_barge": ("enable_barge",),
    "barge_min_words": ("barge_min_words",),
    "barge_match": ("barge_match_string",),
    "interrupt_on_noise": ("interrupt_on_noise",),
    "digit_timeout_ms": ("digit_timeout",),
    "digit_terminators": ("digit_terminators",),
    "turn_detection": ("enable_turn_detection",),
    "turn_detection_ms": ("turn_detection_timeout",),
}
