"""The AI conversation loop on a live call: listener, turn manager, ASR, replies, barge-in.

Theory of operation: the session subscribes to the call leg's taps (kernel/taps.py): the shared
16 kHz view of the inbound audio (`taps.inbound16`, one frame per 20 ms tick, inside the tick,
before this tick's outbound frame is taken), the digits (`taps.dtmf`) and what left
(`taps.outbound`). Other consumers (a `record_call` started before the `ai` verb, the sidecar)
keep their own subscriptions beside ours. Each frame goes through the `Listener` (16 kHz, VAD,
echo gate) into the pure `TurnManager`; its playout
commands are applied right there, in the same tick, so that after a `PausePlayout` decision not
one more agent frame is sent (`Playout.pause` keeps the queue and the exact sample position for
`ResumePlayout`). Everything slow is queued to `run()`'s loop: ASR passes run in the bounded
engine executor (partials are skipped while one is in flight: backpressure; finals wait), a
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
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mediaserver.agents.ai import conversations
from mediaserver.agents.ai.accounting import AiAccounting, Usage
from mediaserver.agents.ai.call_log import CallRecorder
from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.context_switch import switch_context
from mediaserver.agents.ai.controls import NoVoices, SessionControls, VoiceCatalog
from mediaserver.agents.ai.conversations import Conversations, NoConversations
from mediaserver.agents.ai.debug_hooks import DebugHooks
from mediaserver.agents.ai.fillers import SPEECH_FILLER_DELAY_S, play_loops, speak_filler, speech_filler_after
from mediaserver.agents.ai.global_data import GlobalDataStore
from mediaserver.agents.ai.handle import AiAgentHandle
from mediaserver.agents.ai.history_ops import LlmView
from mediaserver.agents.ai.languages import LanguageState, VoiceTable
from mediaserver.agents.ai.listen import SILENCE_DB, EchoGate, Listener, rms_dbfs
from mediaserver.agents.ai.reply import Reply, ReplyFailed, Synthesizer
from mediaserver.agents.ai.session_features import SessionFeatures
from mediaserver.agents.ai.swml_actions import SessionSwml
from mediaserver.agents.ai.timing import AiHardStop, Clockwork, Louder, louder
from mediaserver.agents.ai.tools import StaticToolRunner, ToolRunner
from mediaserver.agents.ai.turn_checks import TurnChecks
from mediaserver.agents.ai.turn_taking import TurnTaking
from mediaserver.audio.frame import Pcm
from mediaserver.clock import wall_time
from mediaserver.errors import HangupCause
from mediaserver.events import (
    AiChangeContext,
    AiChangeStep,
    AiConfigWarning,
    AiFailure,
    AiInactivity,
    AiSettingsUpdated,
    AiStarted,
    AiSummary,
    AiToggleFunctions,
    BargeFlushed,
    BargePaused,
    BargeResumed,
    TurnAsrFinal,
    TurnDiscarded,
    TurnEndpoint,
    TurnFirstAgentFrame,
    TurnSpeechEnded,
    TurnSpeechStarted,
)
from mediaserver.events import (
    AiFinished as AiFinishedEvent,
)
from mediaserver.kernel.agent import Conversation
from mediaserver.kernel.call import Call
from mediaserver.kernel.fetch import swml_call
from mediaserver.kernel.services import NoSwmlRunner, SwmlRunner
from mediaserver.kernel.taps import Digit, SentFrame, Subscription, VoiceFrame
from mediaserver.pipeline.asr import SpeechRecognizer, apply_hint_rules, hotwords_text
from mediaserver.pipeline.end_of_turn import EndOfTurnDetector
from mediaserver.pipeline.llm import LanguageModel, LlmError, LlmEvent, LlmSettings, TextDelta
from mediaserver.pipeline.tts import TtsChunk
from mediaserver.pipeline.turn import (
    FRAME_SAMPLES,
    Agent,
    CancelPreemptive,
    CheckEndOfTurn,
    CommitTurn,
    DigitPressed,
    DigitsEntered,
    DiscardUtterance,
    EndConversation,
    FlushReply,
    FrameAnalyzed,
    NudgeCaller,
    PausePlayout,
    PlayoutAdvanced,
    PrepareFinal,
    ReplyDone,
    ReplyQueued,
    ResumePlayout,
    SpeechEnded,
    SpeechStarted,
    StartPreemptive,
    TranscribePartial,
    Transcript,
    TurnCommand,
    TurnManager,
    TurnParams,
    WordMark,
    count_words,
)
from mediaserver.pipeline.vad import SpeechConfirmer, VoiceActivityDetector, energy_floor_from_level
from mediaserver.swaig.post_prompt import summary_messages
from mediaserver.swml.effects import AiFinished

log = logging.getLogger(__name__)

_no_detector_logged = False


@dataclass
class AiEngines:
    """What a session needs; the runner builds one per call from shared engines."""

    vad: Callable[[], VoiceActivityDetector]
    asr: SpeechRecognizer
    llm: LanguageModel
    tts: Synthesizer
    blocking: Executor
    confirmer: Callable[[], SpeechConfirmer | None] = lambda: None
    llm_settings: Callable[[AiSessionConfig], LlmSettings] = lambda config: LlmSettings()
    asr_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    phrase_cache: dict[str, list[TtsChunk]] = field(default_factory=dict)
    far_end_delay_ms: int = 40
    first_token_timeout_s: float = 10.0
    # The end-of-turn detector (thread-safe, shared); None: the fixed silence rule (end_of_speech_timeout).
    detector: EndOfTurnDetector | None = None
    # The detector's own worker (app.py: one thread, "turn-detector"), so that a check never waits
    # behind, nor delays, an ASR final or a TTS clause in `blocking`. With it the session starts an
    # early check when the caller's voice ends; None (embedders, tests): the detector runs in
    # `blocking` and only when the manager asks (an early check there would compete with the ASR
    # final, which starts at the same moment).
    detector_executor: Executor | None = None
    # The voices SWAIG change_voice may pick (piper_tts.PiperVoices); NoVoices: the one voice only.
    voices: VoiceCatalog = field(default_factory=NoVoices)
    # params.openai_asr_engine: model name -> a recognizer of the configured transcription endpoint
    # (pipeline/engines/openai_asr.py); None: none configured, the local recognizer transcribes.
    remote_asr: Callable[[str], SpeechRecognizer] | None = None
    # params.cache_mode: the process's response cache (agents/ai/response_cache.py), shared by calls
    response_cache: dict[str, tuple[LlmEvent, ...]] = field(default_factory=dict)
    # Where conversation_id + save_conversation keep conversations ([swml] conversations_dir).
    conversations: Conversations = field(default_factory=NoConversations)


class AiSession:
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
        self.turn = TurnManager(_fixed_silence(turn) if engines.detector is None else turn)
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
            identity=_debug_identity(call, config),
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

    async def _lifecycle(self, name: str, *args: Any) -> None:
        """Call a ToolRunner lifecycle hook (SWAIG's start/finish); a failing hook is logged only."""
        hooks: dict[str, Callable[..., Awaitable[None]]] = {"start": self.tools.start, "finish": self.tools.finish}
        try:
            await hooks[name](*args)
        except Exception as exc:
            self.call.events.emit(AiFailure(kind=f"swaig_{name}", error=repr(exc)))

    async def _wrap_up(self) -> None:
        self.record.ended(self.call.is_over)
        summary = await self._summarize() if self.config.post_prompt else None
        ops, store = self.config.ops, self.engines.conversations
        await conversations.save(store, ops, self.history, summary, self.engines.blocking, self._store_failed)
        await self._lifecycle("finish", self.global_data_, summary, self.history)
        await self.debug.close()  # session_end, and what the debug webhook has not sent yet

    def _store_failed(self, error: str) -> None:
        self.call.events.emit(AiFailure(kind="conversation_store", error=error))

    def usage_totals(self) -> dict[str, Any] | None:
        """The post-prompt body's `total_*` fields, with params.enable_accounting (post_prompt.py)."""
        return self.usage.totals() if self.config.ops.enable_accounting else None

    async def _summarize(self) -> str | None:
        """One non-spoken LLM call over the conversation with the post_prompt (SWML `post_prompt`)."""
        messages: list[dict[str, Any]] = summary_messages(
            self.view.expand(self.config.post_prompt, (self.call, self.global_data_)), self.history
        )
        parts: list[str] = []
        try:
            async with asyncio.timeout(self.engines.first_token_timeout_s * 3):
                async for event in self.llm.stream(messages, settings=self.engines.llm_settings(self.config)):
                    if isinstance(event, TextDelta):
                        parts.append(event.text)
        except (LlmError, TimeoutError) as exc:
            self.call.events.emit(AiFailure(kind="post_prompt", error=str(exc)))
            return None
        summary = "".join(parts).strip()
        self.call.events.emit(AiSummary(chars=len(summary)))
        return summary

    def _start(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _finish(self, result: str = "success") -> None:
        self.result = result
        self._done = True
        self._commands.put_nowait(None)

    # -- in the tick -----------------------------------------------------------------------------
    def _on_voice(self, voice: VoiceFrame) -> None:
        if self.swml_actions.paused:
            return  # an inline SWML document runs: the caller's audio is its (swml_actions.py)
        voice = self.controls.frame(voice)  # on hold the caller is heard as silence
        playout = self.call.media.playout
        cursor = playout.played_samples
        self.listener.echo.played(self._outbound_level(self._cursor, cursor))
        if cursor != self._cursor:
            self._cursor = cursor
            self.turn.handle(PlayoutAdvanced(cursor))
        at, voiced = self.listener.hear(voice, agent_talking=self.turn.agent is not Agent.QUIET)
        self._apply(self.turn.handle(FrameAnalyzed(at, voiced)))
        self.checks.heard_frame()
        quiet = self.turn.agent is Agent.QUIET and self.turn.utterance_start is None and self._reply is None
        held = self.turn_taking.frame(at, quiet)  # transparent_barge_max_time passed: answer held words
        if held:
            self._user_turn(held)

    def _timing_tick(self) -> None:
        """The opening after initial_sleep_ms, the hard stop at hard_stop_time (the AI's tick clock)."""
        if self.clockwork.opening_due():
            seeded = sum(1 for m in self.config.convo if m["role"] == "user")
            if self.user_turns() > seeded:
                pass  # the caller spoke during the initial sleep and is being answered: no opening
            elif self.config.static_greeting:
                self._start(self._say(self.config.static_greeting, bargeable=not self.config.static_greeting_no_barge))
            elif not self.config.wait_for_user:
                self._start_reply()
        if self.clockwork.hard_stop_due():
            self._start(self._hard_stop())

    async def _hard_stop(self) -> None:
        """Cut the agent, say hard_stop_prompt (not interruptible), end the AI; caller turns go unanswered."""
        prompt = self.config.timing.hard_stop_prompt
        self.call.events.emit(AiHardStop(elapsed_ms=self.clockwork.elapsed_ms, prompt=prompt))
        task, self._reply, self._reply_task = self._reply_task, None, None
        if task is not None:
            task.cancel()
        self.call.media.stop_playout()
        self.turn.set_params(enable_barge=False)
        if prompt:
            await self._say(prompt, bargeable=False)
        self._finish("success")

    def _on_sent(self, frame: SentFrame) -> None:
        # Runs as the tick's agent frame leaves, so the log names the tick it went out in.
        cursor = frame.played_samples
        if self._first_frame_mark is not None and cursor > self._first_frame_mark:
            self.call.events.emit(TurnFirstAgentFrame(cursor=cursor, caller_sample=self.listener.samples))
            self._first_frame_mark = None
        self.clockwork.advance(len(frame.pcm) * 1000 // frame.sample_rate)
        self._timing_tick()
        self.debug.pump()

    def _on_dtmf(self, digit: Digit) -> None:
        if self.swml_actions.paused:
            return  # an inline SWML document runs: the digits are its
        self._apply(self.turn.handle(DigitPressed(digit.digit, self.listener.samples)))

    def _outbound_level(self, start: int, end: int) -> float:
        if end <= start:
            return SILENCE_DB
        # What just left, from our own copy (at the TTS rate: positions scale by the chunk's ratio).
        parts = []
        for a, b, pcm in self._outbound:
            if b > start and a < end:
                ratio = len(pcm) / max(1, b - a)
                parts.append(pcm[int(max(0, start - a) * ratio) : int(max(0, min(end, b) - a) * ratio)])
        return rms_dbfs(np.concatenate(parts)) if parts else SILENCE_DB

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

    def _flush(self, cmd: FlushReply) -> None:
        self.call.media.stop_playout()
        self.call.events.emit(
            BargeFlushed(
                caller_sample=cmd.at,
                cursor=cmd.cursor,
                heard_text=cmd.heard_text,
                heard_words=cmd.heard_words,
                total_words=cmd.total_words,
            )
        )
        reply, task = self._reply, self._reply_task
        self._reply = self._reply_task = None
        if task is not None:
            task.cancel()
        if reply is not None:
            self._keep_heard(reply, cmd.heard_text)
            self.controls.reply_ended(reply)
        if note := self.config.turn_taking.interruption_note:  # acknowledge_interruptions, interrupt_prompt
            self.history.append({"role": "system", "content": note})

    def _keep_heard(self, reply: Reply, heard: str) -> None:
        """Cut the interrupted assistant turn in the history to the words the caller heard."""
        entry = self._entries.get(reply)
        if entry is not None:
            if heard:
                entry["content"] = heard
                self.history.updated(entry)
            else:
                self.history.remove(entry)
        elif heard:
            self.history.extend(reply.new_messages)
            self.history.append({"role": "assistant", "content": heard})

    # -- off the tick ----------------------------------------------------------------------------
    async def _handle(self, cmd: TurnCommand) -> None:
        if self.clockwork.stopping:  # hard_stop_time passed: the agent says its last words only
            return
        if isinstance(cmd, TranscribePartial):
            if not self.engines.asr_slots.locked():
                self._start(self._partial(cmd.start, cmd.upto))
        elif isinstance(cmd, PrepareFinal):
            for stale in self._finals.values():
                stale.cancel()  # the caller went on: a final not started yet is wasted work
            self._finals = {cmd.upto: self._start(self._final(cmd.start, cmd.upto))}
            self.checks.prepare(cmd)
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

    async def _transcribe(self, start: int, upto: int, final: bool = True) -> str:
        pcm = self.listener.audio(start, upto)
        loop = asyncio.get_running_loop()
        controls = self.controls  # dynamic hints and confidence thresholds of SWAIG actions
        asr = self.features.recognizer(self.engines.asr)  # openai_asr_engine: the remote one first
        hotwords = hotwords_text(self.config.hotwords + controls.hint_words)
        languages = self.languages  # the current language; with languages_enabled, the one heard
        async with self.engines.asr_slots:
            result, heard = await loop.run_in_executor(
                self.engines.blocking, lambda: languages.transcribe(asr, pcm, hotwords)
            )
        self.usage.heard(len(pcm), asr.sample_rate)
        text = controls.accepted(result, final=final, over_agent=self.turn.agent is not Agent.QUIET)
        if final and text.strip():
            languages.heard(heard)
        text = self.features.transcript(text.strip())  # asr_smart_format
        return apply_hint_rules(text, self.config.hint_rules + controls.hint_rules)

    async def _partial(self, start: int, upto: int) -> None:
        text = await self._transcribe(start, upto, final=False)
        self._apply(self.turn.handle(Transcript(text, final=False, upto=upto)))

    async def _final(self, start: int, upto: int) -> str:
        # The hangover's audio goes in too (the final starts at the hangover): VAD calls the soft
        # tail of a last word ("… to", "… for") silence, and the end-of-turn veto needs that word.
        tail = self.turn.params.hangover_frames * FRAME_SAMPLES
        try:
            text = await self._transcribe(start, upto + tail)
        except Exception as exc:
            self.call.events.emit(AiFailure(kind="asr_error", error=repr(exc)))
            text = ""
        self.call.events.emit(TurnAsrFinal(caller_sample=upto, text=text))
        self._apply(self.turn.handle(Transcript(text, final=True, upto=upto)))
        return text

    # -- replies ---------------------------------------------------------------------------------
    def _messages(self, extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        # system prompt of the moment (base + conscience + current step, `${…}` expanded), the
        # history the model may see (replace_in_history, step/context history ops applied)
        facts = (self.call, self.global_data_)
        window = self.config.sliding_window
        return self.view.next_request(self.tools, self.config.prompt, self.history, facts, extra, window)

    def _new_reply(self, messages: list[dict[str, Any]], preemptive: bool = False) -> Reply:
        return Reply(
            self.call,
            llm=self.controls.llm,  # the engine's, as SWAIG actions steer it (steering.py)
            llm_settings=self.engines.llm_settings(self.config),
            tts=self.controls.tts,  # with the ai_volume gain; change_voice swaps it
            # pause_conversation, function_wait_for_talking, barge_functions; thinking, hold_on_process
            tools=self.features.tools(self.turn_taking.tools),
            control=self,
            messages=messages,
            on_queued=self._queued,
            on_event=self.call.events.emit,
            pronounce=self.config.pronounce,
            quick_stops=self.config.quick_stops,
            fillers=self.turn_taking.tools.reply_fillers,
            preemptive=preemptive,
            first_token_timeout_s=self.engines.first_token_timeout_s,
        )

    def _start_reply(
        self, extra: list[dict[str, Any]] | None = None, preemptive: bool = False, nudge: bool = False
    ) -> None:
        self._cancel_reply()
        reply = self._new_reply(self._messages(extra), preemptive)
        self._reply = reply
        self._reply_bargeable = True
        if not preemptive:
            self._first_frame_mark = self.call.media.playout.end_mark
        self._reply_task = self._start(self._run_reply(reply))
        if self._fillers is not None:  # speech_fillers: a slow LLM turn gets one (fillers.py)
            fillers = self._fillers
            self._start(
                speech_filler_after(reply, lambda: next(fillers), lambda: self._reply is reply, SPEECH_FILLER_DELAY_S)
            )
        self.controls.track(self._reply_task, reply, nudge=nudge)

    def _resume(self, note: str, nudge: bool = False) -> None:
        """The agent takes a turn on its own (after a hold; an attention prompt held back)."""
        self.history.append({"role": "system", "content": note})
        self._start_reply(nudge=nudge)

    def _cancel_reply(self) -> None:
        if self._reply_task is not None and self._reply is not None and not self._reply.committed.is_set():
            self._reply_task.cancel()  # unheard: a preemptive reply that the endpoint did not commit
            self._reply = self._reply_task = None
        self._preemptive_text = None

    async def _run_reply(self, reply: Reply) -> None:
        failure: ReplyFailed | None = None
        try:
            await reply.run()
            self.history.extend(reply.new_messages)
            if reply.text:
                entry = {"role": "assistant", "content": reply.text}
                self.history.append(entry)
                self._entries[reply] = entry
            if reply.last_mark is not None:
                await self.call.wait_played(reply.last_mark)
        except* ReplyFailed as group:
            first = group.exceptions[0]
            assert isinstance(first, ReplyFailed)
            failure = first
        self.controls.reply_ended(reply)  # post_process actions, after the answer was spoken
        if failure is not None:
            self._recover(failure.kind, failure.detail)
            return
        if self._reply is reply:
            self._reply = self._reply_task = None
            self._apply(self.turn.handle(ReplyDone()))
            if self.tools.turn_done():  # contexts/steps: end, skip_to_next_step; skip_user_turn
                self._start_reply()

    def _queued(self, chunk: TtsChunk, words: tuple[WordMark, ...], start: int, end: int) -> None:
        self._outbound.append((start, end, chunk.pcm))
        self._apply(self.turn.handle(ReplyQueued(chunk.text, words, end, bargeable=self._reply_bargeable)))

    async def _say(self, text: str, *, bargeable: bool = True, history: bool = True) -> None:
        """Speak fixed text (greeting, filler, recovery, SWAIG say) through the phrase cache."""
        text = self.features.written(text)  # tts_number_format
        reply = self._new_reply([])
        self._reply, self._reply_bargeable = reply, bargeable
        self._first_frame_mark = self.call.media.playout.end_mark
        cache, key = self.engines.phrase_cache, self.controls.cache_key(text)  # keyed by voice once changed
        try:
            if key in cache:
                for chunk in cache[key]:
                    reply.enqueue(louder(chunk, self.config.timing.ai_volume_db))
            else:
                chunks = [chunk async for chunk in self.controls.voice_tts.stream(text)]
                cache[key] = chunks  # unscaled: the cache is shared by calls with their own ai_volume
                for chunk in chunks:
                    reply.enqueue(louder(chunk, self.config.timing.ai_volume_db))
        except Exception as exc:
            self.call.events.emit(AiFailure(kind="tts_failure", error=repr(exc)), level=logging.ERROR)
            return
        if history:
            entry = {"role": "assistant", "content": text}
            self.history.append(entry)
            self._entries[reply] = entry
        if reply.last_mark is not None:
            await self.call.wait_played(reply.last_mark)
        if self._reply is reply:
            self._reply = None
            self._apply(self.turn.handle(ReplyDone()))

    def _recover(self, kind: str, detail: str) -> None:
        self.call.events.emit(AiFailure(kind=kind, error=detail))
        phrase = self.config.recovery.get(kind)
        if phrase and (kind != "tts_failure" or phrase in self.engines.phrase_cache):
            self._start(self._say(phrase, history=False))

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


def _debug_identity(call: Call, config: AiSessionConfig) -> dict[str, Any]:
    """Who a debug event is about, as webhook bodies name it (swaig/request.py)."""
    identity = {
        "call_id": call.call_id,
        "ai_session_id": str(call.info.get("ai_session_id") or call.call_id),
        "app_name": config.ops.app_name,
    }
    if config.ops.conversation_id:
        identity["conversation_id"] = config.ops.conversation_id
    return identity


def _fixed_silence(params: TurnParams) -> TurnParams:
    """Without a detector `end_of_speech_timeout` of silence ends every turn (said once per process)."""
    global _no_detector_logged
    if params.turn_detection and not _no_detector_logged:
        _no_detector_logged = True
        log.info("no end-of-turn detector: turns end after end_of_speech_timeout of silence")
    return replace(params, turn_detection=False)


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
