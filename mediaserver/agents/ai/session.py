"""The AI conversation loop on a live call: listener, turn manager, ASR, replies, barge-in.

Theory of operation: the session subscribes to the call leg's taps (kernel/taps.py): the shared
16 kHz view of the inbound audio (`taps.inbound16`, one frame per 20 ms tick, inside the tick,
before this tick's outbound frame is taken), the digits (`taps.dtmf`) and what left
(`taps.outbound`). Other consumers (a `record_call` started before the `ai` verb, the sidecar)
keep their own subscriptions beside ours. Each frame goes through the `Listener` (16 kHz, VAD,
echo gate) into the pure `TurnManager`; its playout
commands are applied right there, in the same tick, so that after a `PausePlayout` decision not
one more agent frame is sent (`Playout.pause` keeps the queue and the exact sample position for
`ResumePlayout`). Everything slow is queued to `run()`'s loop: ASR passes run in the ASR
executor's slots (asr_slots.py: finals first, a partial with no free slot is skipped), a
final transcript in the caller's trailing silence starts a preemptive `Reply` whose first audio
waits for the endpoint's `CommitTurn`, which releases it synchronously in the tick. With an
end-of-turn detector (`AiEngines.detector`) and `enable_turn_detection` on, the manager's
`CheckEndOfTurn` runs the detector on the caller's last 8 s (one check at a time; with the
detector's own worker, `AiEngines.detector_executor`, started early at the hangover on the audio
the check will judge, the silence to come assumed) and its probability goes back in as
`TurnVerdict`: a complete turn commits the final and
the preemptive reply already started in the silence; a caller who goes on cancels them as before.

History: the LLM sees the system prompt, then user/assistant turns. When a barge-in is flushed,
the interrupted assistant turn is cut to the words the caller heard (`FlushReply.heard_text`).
Failures (LLM timeout or error, empty transcript, tool failure, TTS failure) each speak a cached
recovery phrase and log `ai_failure` with the class; none leaves dead air.

Outside the session, the call's agent is `session.handle` (`AiAgentHandle`, the kernel's
`AgentHandle`): say, user input, hangup, status, a copy of the history and a subscription to
it (the history is a `Conversation` that reports each entry appended, cut or removed). The
control API and the WebRTC page use only that.

Per-turn timing events in the call log (samples on the 16 kHz caller clock where they apply):
`turn_speech_started`, `turn_speech_ended` (caller's last voiced sample), `turn_asr_final`,
`turn_check` (each end-of-turn verdict: probability and inference ms),
`turn_endpoint` (the decision), `turn_llm_first_token`, `turn_tts_first_audio`,
`turn_first_agent_frame` (the played cursor passed the reply's first sample), and
`barge_paused` / `barge_resumed` / `barge_flushed` with the played cursor.

Where it lives: this module builds the session's parts (`AiSession.__init__`), runs the command
loop (`run`) and dispatches the turn manager's commands, in the tick (`_apply`) and off it
(`_handle`, `_commit`, `_user_turn`). The rest of `AiSession` comes from mixins that hold no state
of their own and declare the session attributes they use: `Hearing` (hearing.py: the taps'
hooks, the echo level, ASR), `ReplyLifecycle` (replies.py: start, speak, cancel, recover, the
barge-in cut) over `ControlSurface` (control_surface.py: the SWAIG-facing `AiControl` and
`SessionRecord`), and `SessionLifecycle` (lifecycle.py: opening, hard stop, lifecycle hooks,
post-prompt summary). `AiEngines` lives in engines.py and is re-exported here.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections import deque
from dataclasses import replace
from typing import Any

from mediaserver.agents.ai import conversations
from mediaserver.agents.ai.accounting import AiAccounting, Usage
from mediaserver.agents.ai.call_log import CallRecorder
from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.controls import SessionControls
from mediaserver.agents.ai.debug_hooks import DebugHooks, debug_identity
from mediaserver.agents.ai.engines import AiEngines, fixed_silence
from mediaserver.agents.ai.global_data import GlobalDataStore
from mediaserver.agents.ai.handle import AiAgentHandle
from mediaserver.agents.ai.hearing import Hearing
from mediaserver.agents.ai.history_ops import LlmView
from mediaserver.agents.ai.languages import LanguageState, VoiceTable
from mediaserver.agents.ai.lifecycle import SessionLifecycle
from mediaserver.agents.ai.listen import EchoGate, Listener
from mediaserver.agents.ai.replies import ReplyLifecycle
from mediaserver.agents.ai.reply import Reply
from mediaserver.agents.ai.session_features import SessionFeatures
from mediaserver.agents.ai.swml_actions import SessionSwml
from mediaserver.agents.ai.timing import Clockwork, Louder
from mediaserver.agents.ai.tools import StaticToolRunner, ToolRunner
from mediaserver.agents.ai.turn_checks import TurnChecks
from mediaserver.agents.ai.turn_taking import TurnTaking
from mediaserver.audio.frame import Pcm
from mediaserver.clock import wall_time
from mediaserver.events import (
    AiConfigWarning,
    AiInactivity,
    AiStarted,
    BargePaused,
    BargeResumed,
    TurnDiscarded,
    TurnEndpoint,
    TurnSpeechEnded,
    TurnSpeechStarted,
)
from mediaserver.events import (
    AiFinished as AiFinishedEvent,
)
from mediaserver.kernel.agent import Conversation
from mediaserver.kernel.call import Call
from mediaserver.kernel.services import NoSwmlRunner, SwmlRunner
from mediaserver.kernel.taps import Subscription
from mediaserver.pipeline.turn import (
    Agent,
    CancelPreemptive,
    CheckEndOfTurn,
    CommitTurn,
    DigitsEntered,
    DiscardUtterance,
    EndConversation,
    FlushReply,
    NudgeCaller,
    PausePlayout,
    PrepareFinal,
    ResumePlayout,
    SpeechEnded,
    SpeechStarted,
    StartPreemptive,
    TranscribePartial,
    TurnCommand,
    TurnManager,
    count_words,
)
from mediaserver.pipeline.vad import energy_floor_from_level
from mediaserver.swml.effects import AiFinished

__all__ = ["AiEngines", "AiSession"]  # AiEngines lives in engines.py; importers use this module


class AiSession(ReplyLifecycle, SessionLifecycle, Hearing):
    def __init__(
        self,
        call: Call,
        config: AiSessionConfig,
        engines: AiEngines,
        tools: ToolRunner | None = None,
        *,
        scripts: SwmlRunner | None = None,
        variables: dict[str, Any] | None = None,
        persist_global_data: bool = True,
    ) -> None:
        self.call = call
        # params.enable_accounting: this call's LLM and TTS use, counted (accounting.py)
        self.usage = Usage(wall_time)
        llm, tts = self.usage.llm(engines.llm), self.usage.counted(engines.tts)
        self.llm = llm  # the engines' LLM, counted: every request of this session goes through it
        # conversation_id: a saved conversation goes on where it stopped (conversations.py)
        resumed = conversations.resume(engines.conversations, config.ops, self._store_failed)
        config = replace(config, convo=[*resumed, *config.convo]) if resumed else config
        self.config = config
        self.engines = engines
        self.tools: ToolRunner = tools or StaticToolRunner()
        rate = call.media.sample_rate
        turn = replace(config.turn, far_end_delay_samples=engines.far_end_delay_ms * rate // 1000)
        turn = config.timing.turn_for(turn, str(call.info.get("direction") or ""))  # onset, attention
        self.turn = TurnManager(fixed_silence(turn) if engines.detector is None else turn)
        self.listener = Listener(  # the leg's shared front end runs the VAD (taps.listen)
            energy_floor_dbfs=energy_floor_from_level(int(config.energy_level)),
            confirmer=engines.confirmer(),
            confirm_threshold=config.timing.confirm_threshold,
            echo=EchoGate(),
        )
        # initial_sleep_ms, speak_when_spoken_to, hard_stop_time (agents/ai/timing.py); start_paused: no opening
        opens = (bool(config.static_greeting) or not config.wait_for_user) and not config.turn_taking.start_paused
        self.clockwork = Clockwork(config.timing, opens=opens)
        self.history = Conversation(call.call_id, (dict(m) for m in config.convo))
        # The script's variables: SWMLVars, and ai_agents_global_data shared with ai_sidecar (global_data.py)
        self.variables: dict[str, Any] = variables if variables is not None else {}
        self.global_store = GlobalDataStore(variables if persist_global_data else None, call_id=call.call_id)
        self.global_data_: dict[str, Any] = self.global_store.initial(config.global_data)
        # call_log / raw_call_log / post-prompt dates and times for SWAIG bodies (call_log.py)
        self.record = CallRecorder(
            self.history, lambda: int(wall_time() * 1_000_000), lambda: self.tools.system_prompt(self.config.prompt)
        )
        self.view = LlmView()  # what the LLM sees of the history, the request in flight (history_ops.py)
        self.result = "success"
        self._commands: asyncio.Queue[TurnCommand | None] = asyncio.Queue()
        self._reply: Reply | None = None
        self._reply_task: asyncio.Task[None] | None = None
        self._reply_bargeable = True
        self._preemptive_text: str | None = None
        self._finals: dict[int, asyncio.Task[str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # SWAIG SWML actions run on the call's script (agents/ai/swml_actions.py); while an inline
        # document runs, the caller's audio and digits are its, not the conversation's.
        self.swml_actions = SessionSwml(
            call,
            scripts if scripts is not None else NoSwmlRunner(),
            start=self._start,
            finish=self._finish,
            tasks=self._tasks,
            system=self.add_system_message,
            reply=self._start_reply,
            llm=llm,
            llm_settings=lambda: engines.llm_settings(config),
            history=lambda: self.history,
        )
        self._cursor = 0
        self._outbound: deque[tuple[int, int, Pcm]] = deque(maxlen=64)  # (start mark, end mark, pcm@rate)
        self._first_frame_mark: int | None = None
        self._fillers = itertools.cycle(config.speech_fillers) if config.speech_fillers else None
        self._done = False
        # The history entry of each reply that got one (for the barge-in cut); weak: replies come and go.
        self._entries: weakref.WeakKeyDictionary[Reply, dict[str, Any]] = weakref.WeakKeyDictionary()
        self.handle = AiAgentHandle(self)
        self.checks = TurnChecks(
            engines,
            turn=self.turn,
            listener=self.listener,
            emit=call.events.emit,
            start=self._start,
            apply=self._apply,
        )
        # background_file, hold_on_process, number format, smart format, remote ASR, thinking,
        # inner dialog, cache_mode (agents/ai/session_features.py)
        self.features = SessionFeatures(
            call,
            config.features,
            llm=llm,
            llm_settings=lambda: engines.llm_settings(config),
            blocking=engines.blocking,
            history=self.history,
            start=self._start,
            remote_asr=engines.remote_asr,
            response_cache=engines.response_cache,
        )
        # SWAIG actions' state: hold, background audio, LLM knobs, hints, voice (controls.py).
        self.controls = SessionControls(
            call,
            llm=self.features.llm(llm),
            tts=tts,
            wrap_tts=lambda tts: Louder(self.features.spoken(self.usage.counted(tts)), config.timing.ai_volume_db),
            blocking=engines.blocking,
            voices=engines.voices,
            start=self._start,
            resume=self._resume,
            attention_prompt=config.attention_timeout_prompt,
        )
        # ai.languages / languages_enabled: the language heard and spoken (languages.py)
        voices = engines.voices
        self.languages = LanguageState(
            config.languages,
            enabled=config.ops.languages_enabled,
            change_voice=self.controls.change_voice,
            open_voice=self.controls._open_voice,  # the first voice is there before the opening
            knows_voice=voices.knows if isinstance(voices, VoiceTable) else lambda name: False,
            note=self.add_system_message,
            emit=call.events.emit,
        )
        # debug_webhook_url/level, debug, verbose_logs, audible_debug/latency (debug_hooks.py)
        self.debug = DebugHooks(
            call,
            config.ops,
            identity=debug_identity(call, config.ops),
            speak=self.speak,
            start=self._start,
            totals=self.usage.totals,
        )
        self.usage.on_request, self.usage.on_response = self.debug.llm_request, self.debug.llm_response
        self.debug.watch(self.history)
        self.controls.llm.functions_on_timeout = config.turn_taking.functions_on_no_response
        # pause mode, function gates, transparent barge, interruption notes (agents/ai/turn_taking.py)
        self.turn_taking = TurnTaking(
            config.turn_taking,
            transparent_barge=config.transparent_barge,
            emit=call.events.emit,
            tools=self.tools,
            current_reply=self.controls.current_reply,
            silence=self.controls.llm.silence,
            barging=lambda: self.turn.agent is Agent.PAUSED,
            function_fillers=config.function_fillers,
        )

    # -- the loop --------------------------------------------------------------------------------
    async def run(self) -> AiFinished:
        taps = self.call.media.taps
        subscriptions: list[Subscription[Any]] = [
            taps.listen(self._on_voice, vad=self.engines.vad, name="ai"),
            taps.outbound.subscribe(self._on_sent, name="ai"),
            taps.dtmf.subscribe(self._on_dtmf, name="ai"),
        ]
        for warning in self.config.warnings:
            self.call.events.emit(AiConfigWarning(warning=warning))
        await self.languages.start()
        await self._lifecycle("start", self)  # SWAIG includes, then startup_hook
        self.call.events.emit(AiStarted(model=self.config.model, tools=len(self.tools.tool_definitions())))
        self.features.begin(self.controls.mixer)  # background_file, inner dialog (session_features.py)
        try:
            self._timing_tick()
            ended = asyncio.ensure_future(self.call.ended.wait())
            getter: asyncio.Future[Any] | None = None
            try:
                while not self._done:
                    getter = asyncio.ensure_future(self._commands.get())
                    await asyncio.wait({getter, ended}, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        break
                    command = getter.result()
                    if command is not None:
                        await self._handle(command)
            finally:
                ended.cancel()
                # Cancelled mid-wait (the call's teardown), the pending get would outlive the
                # session: a leaked task, later "Task was destroyed but it is pending!".
                if getter is not None:
                    getter.cancel()
        finally:
            for subscription in subscriptions:
                subscription.close()
            self.controls.close()
            self.features.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.config.ops.enable_accounting:
                self.call.events.emit(AiAccounting(totals=self.usage.totals()))
            self.call.events.emit(AiFinishedEvent(result=self.result, turns=len(self.history)))
            # hangup_hook and the post-prompt summary run even when the caller hung up (the usual
            # end); shielded, so the call's teardown cancelling us does not lose the summary.
            await asyncio.shield(self._wrap_up())
        variables: dict[str, Any] = {"ai_result": self.result}
        variables.update(await asyncio.shield(self.swml_actions.variables()))  # transfer_summary
        return AiFinished(result=self.result, variables=variables)

    def _start(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _finish(self, result: str = "success") -> None:
        self.result = result
        self._done = True
        self._commands.put_nowait(None)

    # -- in the tick: the turn manager's commands ------------------------------------------------
    def _apply(self, commands: list[TurnCommand]) -> None:
        events = self.call.events
        for cmd in commands:
            if isinstance(cmd, PausePlayout):
                self.call.media.playout.pause()
                events.emit(BargePaused(caller_sample=cmd.at, cursor=cmd.cursor))
            elif isinstance(cmd, ResumePlayout):
                self.call.media.playout.resume()
                events.emit(BargeResumed(caller_sample=cmd.at, cursor=cmd.cursor))
                self.turn_taking.barge_settled()
            elif isinstance(cmd, FlushReply):
                self._flush(cmd)
            elif isinstance(cmd, SpeechStarted):
                events.emit(TurnSpeechStarted(caller_sample=cmd.at, decided_at=cmd.decided_at))
            elif isinstance(cmd, SpeechEnded):
                events.emit(TurnSpeechEnded(caller_sample=cmd.at))
            elif isinstance(cmd, CommitTurn):
                events.emit(
                    TurnEndpoint(
                        caller_sample=cmd.decided_at,
                        speech_end=cmd.speech_end,
                        reason=cmd.reason,
                        preemptive=self._preemptive_text is not None,
                    )
                )
                if (
                    cmd.text is not None
                    and self._reply is not None
                    and self._preemptive_text is not None
                    and cmd.text == self._preemptive_text
                ):
                    # Release the preemptive reply now, inside the tick: its first audio is ready.
                    self.controls.caller_spoke()
                    self.history.append({"role": "user", "content": cmd.text})
                    self._preemptive_text = None
                    self._first_frame_mark = self.call.media.playout.end_mark
                    self._reply.commit()
                    continue
                self._commands.put_nowait(cmd)
            else:
                self._commands.put_nowait(cmd)

    # -- off the tick ----------------------------------------------------------------------------
    async def _handle(self, cmd: TurnCommand) -> None:
        if self.clockwork.stopping:  # hard_stop_time passed: the agent says its last words only
            return
        if isinstance(cmd, TranscribePartial):
            if self.engines.asr_slots.partial_free():
                self._start(self._partial(cmd.start, cmd.upto))
        elif isinstance(cmd, PrepareFinal):
            for stale in self._finals.values():
                stale.cancel()  # the caller went on: a final not started yet is wasted work
            final = self._start(self._final(cmd.start, cmd.upto))
            self._finals = {cmd.upto: final}
            self.checks.prepare(cmd, final)
        elif isinstance(cmd, CheckEndOfTurn):
            self.checks.check(cmd)
        elif isinstance(cmd, StartPreemptive):
            if self.turn_taking.paused or self.turn_taking.holding:
                return  # answered at the endpoint, if at all: wake words, held words (turn_taking.py)
            self._start_reply([{"role": "user", "content": cmd.text}], preemptive=True)
            self._preemptive_text = cmd.text  # after _start_reply, which clears it
        elif isinstance(cmd, CancelPreemptive | DiscardUtterance):
            if self._preemptive_text is not None:
                self._cancel_reply()
            if isinstance(cmd, DiscardUtterance):
                self.call.events.emit(TurnDiscarded(caller_sample=cmd.start, reason=cmd.reason))
                if cmd.reason == "barge_not_confirmed":  # transparent_barge: the words join the next turn
                    self.turn_taking.not_cut(self._discarded_text())
        elif isinstance(cmd, CommitTurn):
            await self._commit(cmd)
        elif isinstance(cmd, NudgeCaller):
            if self.controls.quiet() or self.turn_taking.paused:
                return  # hold, wait_for_user, background audio with wait, paused: no attention prompt
            self.history.append({"role": "system", "content": self.config.attention_timeout_prompt})
            self._start_reply(nudge=True)
        elif isinstance(cmd, DigitsEntered):
            if self.turn_taking.admit(cmd.digits + cmd.terminator):
                self._user_turn(cmd.digits + cmd.terminator)
        elif isinstance(cmd, EndConversation):
            if self.controls.holding:
                return  # a hold (up to 900 s) is not inactivity; the manager re-arms its timer
            self.call.events.emit(AiInactivity(caller_sample=cmd.at, reason=cmd.reason))
            self._finish("success")

    async def _commit(self, cmd: CommitTurn) -> None:
        text = cmd.text
        if text is None:
            pending = self._finals.get(cmd.speech_end)
            text = await pending if pending is not None else await self._final(cmd.start, cmd.speech_end)
        self._cancel_reply()
        if not count_words(text):
            self._recover("empty_transcript", "no words in the caller's turn")
            return
        if self.turn_taking.admit(text):  # paused: only a turn with the wake words is answered
            self._user_turn(self.turn_taking.caller_turn(text))

    def _user_turn(self, text: str) -> None:
        self.tools.begin_turn()  # SWAIG's loop guards reset per caller turn
        self.controls.caller_spoke()
        self._cancel_reply()
        self.history.append({"role": "user", "content": text})
        self._start_reply()

    def _discarded_text(self) -> str:
        """The final transcript of the utterance just discarded ("" when it is not there yet)."""
        final = next(iter(self._finals.values()), None)
        return final.result() if final is not None and final.done() and not final.cancelled() else ""
