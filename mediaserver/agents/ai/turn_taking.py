"""Who may speak when: pause mode, caller words over the agent, and functions around barge-ins.

Theory of operation (schema `AIParams`; each key's behaviour as the platform documents it):

* Pause mode (`enable_pause`, `start_paused`, `ai_name`, `wake_prefix`): with `enable_pause` the
  LLM is offered a `pause_conversation` function ("hold on", "wait", "pause"); calling it pauses
  the agent and the reply says nothing more. `start_paused` starts paused (no opening) and turns
  `enable_pause` on. While paused no caller turn is answered (nor digits, nor attention prompts)
  until one contains the wake words, `wake_prefix` then `ai_name` ("hey computer"; the name alone
  when there is no prefix; any case): that turn is answered and the agent is awake again. Turns
  not answered stay out of the LLM history (`ai_pause_ignored` logs them).
* `functions_on_no_response`: the reply to an attention timeout may call functions (it sets the
  same flag of `SteeredLlm` as the `functions_on_speaker_timeout` action).
* `function_wait_for_talking`: a function runs only once the agent has finished talking: the
  language's function filler is spoken first and played out, with whatever the reply said before.
  Off, the filler is queued and the function starts at once, as before.
* `barge_functions` (on by default): functions may run while the caller is interrupting. On, a
  call the LLM makes while a barge-in holds the agent paused runs at once; off, it waits until
  the barge-in is settled: resumed, it runs; cut, it never runs. Either way a cut cancels the
  reply and a function running in it (the function runs in the reply's task: its actions find
  their reply by that task).
* `transparent_barge` (on by default) with `transparent_barge_max_time` (ms, 3000): caller words
  over the agent that did not cut it (fewer than `barge_min_words`, no `barge_match_string`) are
  not dropped: they join the caller's next turn, so the agent answers them together once the
  caller has finished. If the caller says nothing more within `transparent_barge_max_time` after
  the agent stopped talking, they are answered on their own. Backchannels ("uh-huh") alone are
  not words to answer. Off, such words are dropped.
* `acknowledge_interruptions` / `interrupt_prompt`: after a barge-in cut the agent, a system
  message tells the LLM so before it answers: `interrupt_prompt` when given, else a default asking
  it to acknowledge the interruption and confirm what the caller said. An `interrupt_prompt`
  alone turns it on.

`TurnTaking` is the per-session state; the session calls it at fixed points (each caller frame,
a caller turn, a discarded utterance, a barge-in resumed or cut) and gives replies
`TurnTaking.tools`, its `ToolRunner` with the gates above around the session's own.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mediaserver.agents.ai.fillers import speak_filler
from mediaserver.agents.ai.reply import Reply
from mediaserver.agents.ai.tools import AiControl, ToolInvocation, ToolOutcome, ToolRunner
from mediaserver.events import CallEvent, event
from mediaserver.fields import MISSING, Field, Table, check
from mediaserver.pipeline.turn import BACKCHANNELS, SAMPLE_RATE, count_words

__all__ = [
    "DEFAULT_INTERRUPT_PROMPT",
    "PAUSE_FUNCTION",
    "AiPauseIgnored",
    "AiPaused",
    "AiTransparentBarge",
    "AiWoken",
    "TurnTaking",
    "TurnTakingParams",
    "read_turn_taking",
]

PAUSE_FUNCTION = "pause_conversation"
DEFAULT_INTERRUPT_PROMPT = (
    "The caller spoke over you and you stopped talking. Briefly acknowledge the interruption and "
    "confirm what the caller said before you go on."
)
_PAUSED_ANSWER = "The conversation is paused. Say nothing more until the caller says {wake!r}."


@event
class AiPaused(CallEvent):
    """The agent stopped answering (start_paused, or the LLM called pause_conversation)."""

    EVENT = "ai_paused"
    reason: str  # "start_paused" | "function"


@event
class AiWoken(CallEvent):
    """A caller turn with the wake words: the paused agent answers it and is awake again."""

    EVENT = "ai_woken"
    text: str


@event
class AiPauseIgnored(CallEvent):
    """A caller turn (or digits) while paused, without the wake words: not answered."""

    EVENT = "ai_pause_ignored"
    text: str


@event
class AiTransparentBarge(CallEvent):
    """Caller words over the agent that did not cut it, held for the next turn ("held"), or
    answered on their own after transparent_barge_max_time ("answered")."""

    EVENT = "ai_transparent_barge"
    text: str
    outcome: str


@dataclass(frozen=True)
class TurnTakingParams:
    start_paused: bool = False
    enable_pause: bool = False
    ai_name: str = "computer"
    wake_prefix: str = ""
    functions_on_no_response: bool = False
    function_wait_for_talking: bool = False
    barge_functions: bool = True
    transparent_barge_max_ms: int = 3000
    acknowledge_interruptions: bool = False
    interrupt_prompt: str = ""

    @property
    def pausable(self) -> bool:
        return self.enable_pause or self.start_paused  # start_paused turns enable_pause on

    @property
    def interruption_note(self) -> str:
        """The system message after a barge-in cut the agent; "" when interruptions are not acknowledged."""
        if self.interrupt_prompt.strip():
            return self.interrupt_prompt.strip()
        return DEFAULT_INTERRUPT_PROMPT if self.acknowledge_interruptions else ""


_TABLE = Table(
    {
        "start_paused": Field("bool", False),
        "enable_pause": Field("bool", False),
        "ai_name": Field("str", "computer"),
        "wake_prefix": Field("str", ""),
        "functions_on_no_response": Field("bool", False),
        "function_wait_for_talking": Field("bool", False),
        "barge_functions": Field("bool", True),
        "transparent_barge_max_time": Field("num", 3000, lo=0, hi=60_000),
        "acknowledge_interruptions": Field("bool", False),
        "interrupt_prompt": Field("str", ""),
    },
    unknown="ignore",  # the rest of `params` is read elsewhere
    loose=True,
)


def read_turn_taking(params: dict[str, Any], warnings: list[str]) -> TurnTakingParams:
    """The keys above from `ai.params`; a bad value is its default (a number: the bound), named in `warnings`."""
    values, errors = check(_TABLE, params, "params", repair=True)
    for error in errors:
        using = None if error.repaired is MISSING else error.repaired
        warnings.append(f"{error}; using {using!r}")
    name = str(values["ai_name"]).strip()
    if not count_words(name):
        warnings.append(
            f"params.ai_name: expected a name to wake the agent with, got {values['ai_name']!r}; using 'computer'"
        )
        name = "computer"
    return TurnTakingParams(
        start_paused=bool(values["start_paused"]),
        enable_pause=bool(values["enable_pause"]),
        ai_name=name,
        wake_prefix=str(values["wake_prefix"]).strip(),
        functions_on_no_response=bool(values["functions_on_no_response"]),
        function_wait_for_talking=bool(values["function_wait_for_talking"]),
        barge_functions=bool(values["barge_functions"]),
        transparent_barge_max_ms=int(values["transparent_barge_max_time"]),
        acknowledge_interruptions=bool(values["acknowledge_interruptions"]),
        interrupt_prompt=str(values["interrupt_prompt"]),
    )


def _contains(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


class TurnTaking:
    def __init__(
        self,
        params: TurnTakingParams,
        *,
        transparent_barge: bool,
        emit: Callable[[CallEvent], None],
        tools: ToolRunner,
        current_reply: Callable[[], Reply | None],
        silence: Callable[[Reply | None], None],
        barging: Callable[[], bool],
        function_fillers: list[str],
    ) -> None:
        self.params = params
        self.transparent = transparent_barge
        self.emit = emit
        self.paused = params.start_paused
        self.wake = " ".join(f"{params.wake_prefix} {params.ai_name}".split())
        self._wake_words = count_words(self.wake)
        self._held: list[str] = []  # caller words over the agent that did not cut it
        self._quiet_since: int | None = None  # caller sample since which agent and caller are quiet
        self.tools = GatedTools(self, tools, current_reply, silence, barging, function_fillers)
        if self.paused:
            emit(AiPaused(reason="start_paused"))

    # -- pause mode ------------------------------------------------------------------------------
    def pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.emit(AiPaused(reason="function"))

    def admit(self, text: str) -> bool:
        """A caller turn: True when the agent answers it (awake, or the wake words woke it)."""
        if not self.paused:
            return True
        if _contains(count_words(text), self._wake_words):
            self.paused = False
            self.emit(AiWoken(text=text))
            return True
        self.emit(AiPauseIgnored(text=text))
        return False

    # -- transparent barge -----------------------------------------------------------------------
    def not_cut(self, text: str) -> None:
        """Caller words over the agent that did not cut it (the barge-in was not confirmed)."""
        if not self.transparent or not [w for w in count_words(text) if w not in BACKCHANNELS]:
            return
        self._held.append(text.strip())
        self._quiet_since = None
        self.emit(AiTransparentBarge(text=text.strip(), outcome="held"))

    @property
    def holding(self) -> bool:
        """Words are held for the next turn: no preemptive reply, the turn is answered at its end."""
        return bool(self._held)

    def caller_turn(self, text: str) -> str:
        """The caller's turn text, with the words held from over the agent in front."""
        held, self._held = self._held, []
        return " ".join([*held, text]).strip()

    def frame(self, now: int, quiet: bool) -> str | None:
        """Each caller frame (`now`, caller samples; `quiet`: neither agent nor caller speaking).

        Returns the held words to answer on their own when the caller said nothing more within
        transparent_barge_max_time of the agent falling quiet."""
        if not self._held or not quiet:
            self._quiet_since = None
            return None
        if self._quiet_since is None:
            self._quiet_since = now
        if now - self._quiet_since < self.params.transparent_barge_max_ms * SAMPLE_RATE // 1000:
            return None
        text = self.caller_turn("")
        self._quiet_since = None
        self.emit(AiTransparentBarge(text=text, outcome="answered"))
        return text

    # -- barge-ins -------------------------------------------------------------------------------
    def barge_settled(self) -> None:
        """A pending barge-in resumed the reply: functions held back by barge_functions off run."""
        self.tools.settled()


class GatedTools(ToolRunner):
    """The session's tools as replies see them: pause_conversation added, calls gated (module doc)."""

    def __init__(
        self,
        owner: TurnTaking,
        inner: ToolRunner,
        current_reply: Callable[[], Reply | None],
        silence: Callable[[Reply | None], None],
        barging: Callable[[], bool],
        function_fillers: list[str],
    ) -> None:
        self.owner = owner
        self.inner = inner
        self.swaig_log = getattr(inner, "swaig_log", [])
        self._current = current_reply
        self._silence = silence
        self._barging = barging
        self._fillers = list(function_fillers)
        self._filler_turn = 0
        self._filled: weakref.WeakKeyDictionary[Reply, int] = weakref.WeakKeyDictionary()  # rounds with a filler said
        self._settled = asyncio.Event()

    @property
    def reply_fillers(self) -> list[str]:
        """The fillers a reply queues itself: none when this runner speaks them before the function."""
        return [] if self.owner.params.function_wait_for_talking else self._fillers

    def tool_definitions(self) -> list[dict[str, Any]]:
        definitions = self.inner.tool_definitions()
        if self.owner.params.pausable and all(d.get("function", {}).get("name") != PAUSE_FUNCTION for d in definitions):
            description = (
                "Pause the conversation when the caller asks you to hold on, wait or pause. You then "
                f"stay silent until the caller says {self.owner.wake!r}."
            )
            params = {"type": "object", "properties": {}}
            definitions = [
                *definitions,
                {
                    "type": "function",
                    "function": {"name": PAUSE_FUNCTION, "description": description, "parameters": params},
                },
            ]
        return definitions

    async def invoke(self, invocation: ToolInvocation, control: AiControl) -> ToolOutcome:
        if invocation.name == PAUSE_FUNCTION and self.owner.params.pausable:
            self.owner.pause()
            self._silence(self._current())  # the reply says nothing after the function
            return ToolOutcome(response=_PAUSED_ANSWER.format(wake=self.owner.wake))
        params = self.owner.params
        if not params.barge_functions:
            await self._barge_settled()
        if params.function_wait_for_talking:
            await self._talked()
        return await self.inner.invoke(invocation, control)

    def settled(self) -> None:
        self._settled.set()

    async def _barge_settled(self) -> None:
        while self._barging():  # a cut cancels us here, with the reply: the function never runs
            self._settled.clear()
            await self._settled.wait()

    async def _talked(self) -> None:
        """The language's function filler (once per round of calls), then everything said has played."""
        reply = self._current()
        if reply is None:
            return
        rounds = sum(1 for m in reply.new_messages if m.get("role") == "assistant" and m.get("tool_calls"))
        if self._fillers and self._filled.get(reply, 0) < rounds:
            self._filled[reply] = rounds
            self._filler_turn += 1
            await speak_filler(reply, self._fillers[(self._filler_turn - 1) % len(self._fillers)])
        elif reply.last_mark is not None:
            await reply.call.wait_played(reply.last_mark)
