"""What the session hears, in the tick and off it: the caller's frames, digits, what left, ASR.

Theory of operation: `Hearing` is a mixin of `AiSession` (session.py). The leg's taps call
`_on_voice` (the shared 16 kHz view of the inbound audio, one frame per 20 ms tick), `_on_dtmf`
(digits) and `_on_sent` (each agent frame as it leaves) inside the tick. A frame goes through the
`Listener` (VAD, echo gate fed with the level of what just left, `_outbound_level`) into the turn
manager, whose commands are applied at once (`_apply`, session.py). While an inline SWML document
runs, the caller's audio and digits are its (swml_actions.py). Off the tick, `_partial` and
`_final` transcribe the caller's audio in the ASR executor, finals ahead of partials
(`asr_slots.py`; `_transcribe`: the current language, SWAIG hints and confidence, smart format,
hint rules) and hand the `Transcript` back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import numpy as np

from mediaserver.agents.ai.accounting import Usage
from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.controls import SessionControls
from mediaserver.agents.ai.debug_hooks import DebugHooks
from mediaserver.agents.ai.engines import AiEngines
from mediaserver.agents.ai.languages import LanguageState
from mediaserver.agents.ai.listen import SILENCE_DB, Listener, rms_dbfs
from mediaserver.agents.ai.reply import Reply
from mediaserver.agents.ai.session_features import SessionFeatures
from mediaserver.agents.ai.swml_actions import SessionSwml
from mediaserver.agents.ai.timing import Clockwork
from mediaserver.agents.ai.turn_checks import TurnChecks
from mediaserver.agents.ai.turn_taking import TurnTaking
from mediaserver.audio.frame import Pcm
from mediaserver.events import AiFailure, TurnAsrFinal, TurnFirstAgentFrame
from mediaserver.kernel.call import Call
from mediaserver.kernel.taps import Digit, SentFrame, VoiceFrame
from mediaserver.pipeline.asr import apply_hint_rules, hotwords_text
from mediaserver.pipeline.turn import (
    FRAME_SAMPLES,
    Agent,
    DigitPressed,
    FrameAnalyzed,
    PlayoutAdvanced,
    Transcript,
    TurnCommand,
    TurnManager,
)


class Hearing:
    """The listening hooks and ASR of `AiSession`; the attributes below are the session's."""

    call: Call
    config: AiSessionConfig
    engines: AiEngines
    usage: Usage
    turn: TurnManager
    listener: Listener
    checks: TurnChecks
    controls: SessionControls
    features: SessionFeatures
    languages: LanguageState
    turn_taking: TurnTaking
    swml_actions: SessionSwml
    clockwork: Clockwork
    debug: DebugHooks
    _reply: Reply | None
    _cursor: int
    _outbound: deque[tuple[int, int, Pcm]]
    _first_frame_mark: int | None
    # The session's own steps (session.py, lifecycle.py)
    _apply: Callable[[list[TurnCommand]], None]
    _user_turn: Callable[[str], None]
    _timing_tick: Callable[[], None]

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

    # -- off the tick: ASR ----------------------------------------------------------------------
    async def _transcribe(self, start: int, upto: int, final: bool = True) -> str:
        pcm = self.listener.audio(start, upto)
        loop = asyncio.get_running_loop()
        controls = self.controls  # dynamic hints and confidence thresholds of SWAIG actions
        asr = self.features.recognizer(self.engines.asr)  # openai_asr_engine: the remote one first
        hotwords = hotwords_text(self.config.hotwords + controls.hint_words)
        languages = self.languages  # the current language; with languages_enabled, the one heard
        slots = self.engines.asr_slots
        if final:
            await slots.acquire_final()  # a partial took its slot before it was started (`_partial`)
        running = loop.run_in_executor(
            self.engines.asr_executor or self.engines.blocking, lambda: languages.transcribe(asr, pcm, hotwords)
        )
        try:
            result, heard = await running
        except asyncio.CancelledError:
            running.add_done_callback(lambda _: slots.release())  # the slot is busy until the thread is done
            raise
        slots.release()
        self.usage.heard(len(pcm), asr.sample_rate)
        text = controls.accepted(result, final=final, over_agent=self.turn.agent is not Agent.QUIET)
        if final and text.strip():
            languages.heard(heard)
        text = self.features.transcript(text.strip())  # asr_smart_format
        return apply_hint_rules(text, self.config.hint_rules + controls.hint_rules)

    async def _partial(self, start: int, upto: int) -> None:
        slots = self.engines.asr_slots  # finals first: a partial never waits, nor makes a final wait
        if not slots.try_partial():
            return  # skipped, not retried: the next partial or the final hears this audio
        budget = self.engines.partial_budget  # shared by every call: many callers speaking, fewer partials each
        if not budget.try_start():
            slots.release()
            return
        try:
            text = await self._transcribe(start, upto, final=False)
        finally:
            budget.done()
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
