"""The turn manager: endpointing and reversible barge-in as pure state machines (docs/design.md §4).

Theory of operation
-------------------
Time is the caller's inbound sample clock at 16 kHz (`at`, a sample index); the kernel feeds one
`FrameAnalyzed(at, voiced)` per 20 ms tick (`voiced` is the VAD's verdict after the echo gate),
and nothing here reads a clock. `TurnManager.handle(event)` returns the commands to carry out,
in order; the kernel applies `PausePlayout` / `ResumePlayout` / `FlushReply` in the same tick
(so no agent frame leaves after the decision) and runs the rest (ASR, LLM) off the tick.

Two machines, each an Enum plus a transition table plus one exception:

* **Listening** (`Listen`): IDLE -> (`onset_frames` voiced frames) -> SPEAKING -> (`hangover_frames`
  unvoiced frames) -> TRAILING -> (`end_of_speech_ms` of silence since the first unvoiced frame)
  -> endpoint, back to IDLE. Voice in TRAILING goes back to SPEAKING and cancels any preemptive
  reply. Entering TRAILING asks for the final transcript at once (`PrepareFinal`), so the
  recognizer works during the silence the endpoint waits for anyway; a final transcript that
  arrives in TRAILING starts a preemptive reply (`StartPreemptive`), committed by `CommitTurn`
  at the endpoint. Other endpoints: `speech_timeout_ms` caps an utterance, `speech_event_timeout_ms`
  ends one whose transcript stopped changing while the recognizer kept reporting (a noise that
  VAD keeps calling speech; a pause and resume restarts that window), and an
  utterance with no word by `first_word_timeout_ms` after its onset is dropped as noise once the
  caller is silent (`DiscardUtterance`).
* **Semantic end of turn** (`turn_detection`, off unless the params turn it on): after
  `turn_detection_ms` of trailing silence the manager asks the end-of-turn detector
  (`CheckEndOfTurn(start, upto)`). A `TurnVerdict(at, probability)` for the current silence,
  combined with that silence's final transcript (`end_of_turn.end_of_turn_probability`; a
  verdict that comes before the final waits for it), ends the turn at once when complete
  (`CommitTurn`, reason "end_of_turn"), else the manager keeps listening, asking again every
  `turn_recheck_ms` once the final is known and does not veto. Clearly unfinished text
  ("… for", "… and", "um") vetoes a "complete". `end_of_speech_ms` stays the upper bound, raised
  to `max(end_of_speech_ms, unfinished_cap_ms)` while the final transcript is clearly unfinished
  or not there yet. A verdict for an older silence (the caller spoke since) or one after the endpoint is ignored.
* **Agent** (`Agent`): QUIET -> (`ReplyQueued`) -> TALKING -> (caller onset: `barge_onset_frames`
  voiced frames, 1 by default, since the pause is undone if nothing confirms it) -> PAUSED in the
  same frame -> words confirmed (`barge_min_words` non-backchannel words, or `barge_match` matches)
  -> `FlushReply(heard_text)` -> QUIET; or a final transcript without enough words, or (when no
  transcript settles it) `barge_confirm_ms` of caller silence -> `ResumePlayout` from the exact
  sample where it paused -> TALKING. `interrupt_on_noise` flushes after `noise_barge_ms`
  of wordless voice. A reply marked `bargeable=False` (static_greeting_no_barge) never pauses,
  nor does any reply with `enable_barge` off. A reply whose first audio is queued while the
  caller is speaking (they went on after the endpoint) is paused before its first frame, the
  same reversible barge-in.

Heard text: `ReplyQueued` carries each word with the playout mark (played-sample position, at
the call's codec rate) of its end; `PlayoutAdvanced(cursor)` reports the played cursor. At a
flush, the words whose end lies at or before `cursor - far_end_delay_samples` are what the
caller heard (their phone still buffers the last few tens of milliseconds we sent).

Attention and inactivity: with the agent QUIET and the caller IDLE, `attention_timeout_ms` of
silence gives `NudgeCaller` (once per quiet spell) and `inactivity_timeout_ms` without caller
speech gives `EndConversation`. DTMF: digits collect until a terminator or `digit_timeout_ms`
without a new one, then `DigitsEntered`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum

from mediaserver.audio.frame import samples_per_frame
from mediaserver.pipeline.end_of_turn import COMPLETE_THRESHOLD, end_of_turn_probability, is_unfinished
from mediaserver.pipeline.turn_events import (
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
    TurnEvent,
    TurnVerdict,
    WordMark,
)
from mediaserver.rates import PIPELINE_RATE

__all__ = [
    "AGENT_TRANSITIONS",
    "Agent",
    "BACKCHANNELS",
    "CancelPreemptive",
    "CheckEndOfTurn",
    "CommitTurn",
    "DigitPressed",
    "DigitsEntered",
    "DiscardUtterance",
    "EndConversation",
    "FRAME_SAMPLES",
    "FlushReply",
    "FrameAnalyzed",
    "LISTEN_TRANSITIONS",
    "Listen",
    "NudgeCaller",
    "PausePlayout",
    "PlayoutAdvanced",
    "PrepareFinal",
    "ReplyDone",
    "ReplyQueued",
    "ResumePlayout",
    "SAMPLE_RATE",
    "SpeechEnded",
    "SpeechStarted",
    "StartPreemptive",
    "TranscribePartial",
    "Transcript",
    "TurnCommand",
    "TurnError",
    "TurnEvent",
    "TurnManager",
    "TurnParams",
    "TurnVerdict",
    "WordMark",
    "count_words",
    "heard_words",
]

SAMPLE_RATE = PIPELINE_RATE  # the speech pipeline's rate, defined once in mediaserver.rates
FRAME_SAMPLES = samples_per_frame(SAMPLE_RATE)  # 20 ms: 320 samples

# Words that acknowledge rather than interrupt ("uh-huh" while the agent talks): they never
# count towards barge_min_words, so a backchannel resumes the reply (backchannels stopping the
# bot is a recurring complaint about voice bots, e.g. pipecat-ai/pipecat#984, livekit/agents#2339).
BACKCHANNELS = frozenset(
    {
        "uh-huh",
        "uhhuh",
        "mhm",
        "mm-hmm",
        "mmhmm",
        "hmm",
        "mm",
        "uh",
        "um",
        "ah",
        "oh",
        "yeah",
        "yep",
        "ok",
        "okay",
        "right",
        "sure",
        "aha",
    }
)


class TurnError(Exception):
    """An event the turn manager cannot take in its current state (a kernel bug)."""


# ---- parameters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnParams:
    end_of_speech_ms: int = 700
    speech_event_timeout_ms: int = 1400
    first_word_timeout_ms: int = 1000
    speech_timeout_ms: int = 60_000
    attention_timeout_ms: int = 0  # 0 = off
    inactivity_timeout_ms: int = 600_000
    enable_barge: bool = True
    barge_min_words: int = 1
    barge_match: str = ""  # a regex; a match confirms the barge-in whatever the word count
    interrupt_on_noise: bool = False
    noise_barge_ms: int = 1000
    barge_confirm_ms: int = 1500  # caller quiet this long over a paused reply, no words: resume
    onset_frames: int = 2  # voiced frames in a row that make an onset (40 ms)
    barge_onset_frames: int = 1  # the same over agent speech: the pause it starts is reversible
    hangover_frames: int = 3  # unvoiced frames in a row that end the voiced part (60 ms)
    partial_interval_ms: int = 400  # partial ASR cadence over the agent (quiet: `_partial_interval`)
    digit_timeout_ms: int = 3000
    digit_terminators: str = ""
    far_end_delay_samples: int = 0  # at the playout rate
    # Semantic end of turn (SWML enable_turn_detection / turn_detection_timeout). Off here, so a
    # bare TurnParams is the fixed silence rule; the `ai` verb's config turns it on by default.
    turn_detection: bool = False
    turn_detection_ms: int = 250  # trailing silence before the first CheckEndOfTurn
    turn_recheck_ms: int = 250  # then again as the silence grows
    unfinished_cap_ms: int = 2000  # the bound for a clearly unfinished transcript: max(eos, this)

    def samples(self, ms: int) -> int:
        return ms * SAMPLE_RATE // 1000


# ---- states and tables --------------------------------------------------------------------------


class Listen(Enum):
    IDLE = "idle"
    SPEAKING = "speaking"
    TRAILING = "trailing"


class Agent(Enum):
    QUIET = "quiet"
    TALKING = "talking"
    PAUSED = "paused"


class _Onset: ...


class _Hangover: ...


class _Endpoint: ...


class _Resumed: ...


class _Discarded: ...


class _Queued: ...


class _Barged: ...


class _Confirmed: ...


class _NotConfirmed: ...


class _Finished: ...


LISTEN_TRANSITIONS: dict[Listen, dict[type, Listen]] = {
    Listen.IDLE: {_Onset: Listen.SPEAKING},
    Listen.SPEAKING: {_Hangover: Listen.TRAILING, _Endpoint: Listen.IDLE, _Discarded: Listen.IDLE},
    Listen.TRAILING: {_Resumed: Listen.SPEAKING, _Endpoint: Listen.IDLE, _Discarded: Listen.IDLE},
}
AGENT_TRANSITIONS: dict[Agent, dict[type, Agent]] = {
    Agent.QUIET: {_Queued: Agent.TALKING},
    Agent.TALKING: {_Queued: Agent.TALKING, _Barged: Agent.PAUSED, _Finished: Agent.QUIET},
    Agent.PAUSED: {
        _Queued: Agent.PAUSED,
        _Confirmed: Agent.QUIET,
        _NotConfirmed: Agent.TALKING,
        _Finished: Agent.QUIET,
    },
}


def _next_listen(state: Listen, trigger: type) -> Listen:
    try:
        return LISTEN_TRANSITIONS[state][trigger]
    except KeyError:
        raise TurnError(f"{trigger.__name__.lstrip('_')} in listen state {state.name}") from None


def _next_agent(state: Agent, trigger: type) -> Agent:
    try:
        return AGENT_TRANSITIONS[state][trigger]
    except KeyError:
        raise TurnError(f"{trigger.__name__.lstrip('_')} in agent state {state.name}") from None


def p_samples(params: TurnParams, ms: int) -> int:
    return params.samples(ms)


def count_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[\w'-]+", text.lower()) if w.strip("-'")]


def heard_words(words: tuple[WordMark, ...] | list[WordMark], cursor: int) -> list[WordMark]:
    """The words whose last sample had been played at `cursor` (a word boundary cut)."""
    return [w for w in words if w.end_mark <= cursor]


# ---- the manager --------------------------------------------------------------------------------


@dataclass
class _Utterance:
    start: int
    voiced_end: int
    last_partial_at: int
    text: str = ""
    text_changed_at: int = 0
    final_text: str | None = None
    final_upto: int = -1
    preemptive: bool = False
    unchanged_results: int = 0
    next_check: int = -1  # trailing silence (samples) at which to ask the end-of-turn detector next
    verdict: float | None = None  # the detector's latest probability for this silence


@dataclass
class _Reply:
    words: list[WordMark] = field(default_factory=list)
    end_mark: int = 0
    bargeable: bool = True
    paused_at: int = -1  # caller sample of the barge onset
    paused_cursor: int = 0


class TurnManager:
    def __init__(self, params: TurnParams | None = None) -> None:
        self.params = params or TurnParams()
        self.listen = Listen.IDLE
        self.agent = Agent.QUIET
        self.cursor = 0
        self._barge_re = re.compile(self.params.barge_match, re.IGNORECASE) if self.params.barge_match else None
        self._run_voiced = 0
        self._run_unvoiced = 0
        self._run_start = 0
        self._utt: _Utterance | None = None
        self._reply: _Reply | None = None
        self._now = 0
        self._last_activity = 0  # last caller voice or agent audio, for attention/inactivity
        self._last_caller_voice = 0
        self._nudged = False
        self._digits = ""
        self._last_digit_at = -1
        self._silence_start = 0

    # -- public ----------------------------------------------------------------------------------
    def handle(self, event: TurnEvent) -> list[TurnCommand]:
        out: list[TurnCommand] = []
        if isinstance(event, FrameAnalyzed):
            self._frame(event, out)
        elif isinstance(event, Transcript):
            self._transcript(event, out)
        elif isinstance(event, ReplyQueued):
            self._queued(event, out)
        elif isinstance(event, PlayoutAdvanced):
            self.cursor = event.cursor
        elif isinstance(event, ReplyDone):
            if self.agent is not Agent.QUIET:
                self.agent = _next_agent(self.agent, _Finished)
            self._reply = None
            self._last_activity = self._now
            self._nudged = False
        elif isinstance(event, DigitPressed):
            self._digit(event, out)
        elif isinstance(event, TurnVerdict):
            self._verdict(event, out)
        return out

    @property
    def utterance_start(self) -> int | None:
        return self._utt.start if self._utt else None

    @property
    def check_due(self) -> int | None:
        """The `upto` of the next `CheckEndOfTurn` if the caller stays silent; None when none is due.

        Checks come in the first frame whose end has the silence they wait for, so this is the
        speech end plus that silence in whole frames. The kernel may start the detector early on
        that audio (session.py); the manager still asks, and judges only a verdict for this silence.
        """
        utt = self._utt
        if utt is None or not self.params.turn_detection or self.listen is not Listen.TRAILING or utt.next_check < 0:
            return None
        if utt.next_check >= self._silence_bound(utt):
            return None  # the silence bound ends the turn first
        return utt.voiced_end + -(-utt.next_check // FRAME_SAMPLES) * FRAME_SAMPLES

    def set_params(self, **changes: object) -> None:
        """Live parameter changes (SWAIG `settings` / `update_settings` actions)."""
        self.params = replace(self.params, **changes)  # type: ignore[arg-type]
        self._barge_re = re.compile(self.params.barge_match, re.IGNORECASE) if self.params.barge_match else None

    # -- frames ----------------------------------------------------------------------------------
    def _frame(self, ev: FrameAnalyzed, out: list[TurnCommand]) -> None:
        p = self.params
        self._now = end = ev.at + FRAME_SAMPLES
        if ev.voiced:
            if self._run_voiced == 0:
                self._run_start = ev.at
            self._run_voiced += 1
            self._run_unvoiced = 0
            self._last_caller_voice = end
        else:
            if self._run_unvoiced == 0:
                self._silence_start = ev.at
            self._run_unvoiced += 1
            self._run_voiced = 0

        # Over the agent one voiced frame pauses it: the pause is reversible and the confirmer and
        # the transcript decide what it was; everywhere else an onset takes `onset_frames`.
        onset = p.barge_onset_frames if self._can_barge() else p.onset_frames
        if self.listen is Listen.IDLE and self._run_voiced >= onset:
            self._transition_listen(_Onset)
            self._utt = _Utterance(start=self._run_start, voiced_end=end, last_partial_at=end, text_changed_at=end)
            out.append(SpeechStarted(at=self._run_start, decided_at=end))
            self._barge(out)
        elif self.listen is Listen.TRAILING and self._run_voiced >= onset:
            self._transition_listen(_Resumed)
            assert self._utt is not None
            self._utt.final_text = None
            self._utt.next_check = -1
            self._utt.verdict = None
            # The pause is not "the transcript stopped changing while the caller spoke": a caller
            # who resumes after a long mid-sentence pause (turn detection allows up to 2 s) gets a
            # fresh speech_event_timeout window.
            self._utt.text_changed_at = end
            self._utt.unchanged_results = 0
            if self._utt.preemptive:
                self._utt.preemptive = False
                out.append(CancelPreemptive())
            self._barge(out)
        elif self.listen is Listen.SPEAKING and self._run_unvoiced >= p.hangover_frames:
            self._transition_listen(_Hangover)
            assert self._utt is not None
            self._utt.voiced_end = self._silence_start
            self._utt.next_check = p.samples(p.turn_detection_ms)
            out.append(SpeechEnded(at=self._silence_start))
            out.append(PrepareFinal(start=self._utt.start, upto=self._silence_start))

        if self._utt is not None:
            self._utterance_timers(end, out)
        if self.agent is Agent.PAUSED:
            self._barge_timers(end, out)
        self._idle_timers(end, out)
        if self._digits and self._last_digit_at >= 0 and end - self._last_digit_at >= p.samples(p.digit_timeout_ms):
            out.append(DigitsEntered(self._digits, terminator=""))
            self._digits = ""

    def _utterance_timers(self, now: int, out: list[TurnCommand]) -> None:
        p, utt = self.params, self._utt
        assert utt is not None
        if self.listen is Listen.SPEAKING:
            utt.voiced_end = now
            interval = self._partial_interval()
            if interval and now - utt.last_partial_at >= p.samples(interval):
                utt.last_partial_at = now
                out.append(TranscribePartial(start=utt.start, upto=now))
            if now - utt.start >= p.samples(p.speech_timeout_ms):
                self._endpoint(now, "speech_timeout", out)
                return
            # Only once the recognizer has reported the same text again: a slow recognizer is not
            # a caller who stopped making sense.
            if (
                p.speech_event_timeout_ms
                and utt.unchanged_results >= 2
                and now - utt.text_changed_at >= p.samples(p.speech_event_timeout_ms)
            ):
                self._endpoint(now, "speech_event_timeout", out)
                return
        # Over a paused reply the turn waits for its transcript (flush or resume) or the window.
        if self.listen is not Listen.TRAILING or self.agent is Agent.PAUSED:
            return
        silence = now - utt.voiced_end
        if not p.turn_detection:
            if silence >= p.samples(p.end_of_speech_ms):
                self._endpoint(now, "end_of_speech", out)
            return
        if silence >= self._silence_bound(utt):
            self._endpoint(now, "end_of_speech", out)
        elif 0 <= utt.next_check <= silence and self._check_useful(utt, silence):
            utt.next_check = silence + p.samples(max(p.turn_recheck_ms, 20))
            out.append(CheckEndOfTurn(start=utt.start, upto=now))

    def _partial_interval(self) -> int:
        """Milliseconds between partial transcripts now; 0: none.

        Over the agent's speech partials confirm a barge-in: `partial_interval_ms`. With the
        agent quiet only the speech-event timer reads them (the turn's text comes from the
        final), so half its window is enough: it still sees text, then the same text twice, and
        fires within one such interval of where it did. Each partial is a Whisper pass the
        final may wait for as the caller stops: fewer of them is a faster final."""
        p = self.params
        if self.agent is not Agent.QUIET:
            return p.partial_interval_ms
        if not p.speech_event_timeout_ms:
            return 0
        return max(p.partial_interval_ms, p.speech_event_timeout_ms // 2)

    def _check_useful(self, utt: _Utterance, silence: int) -> bool:
        """Whether a detector run now could change the decision (each costs ~0.25 s of a core).

        The first check of a silence always runs. A re-check waits for this silence's final
        transcript (the verdict is judged with it, and the final needs the CPU first), is
        skipped when that text vetoes anyway, and when its verdict could not come before the
        silence bound ends the turn regardless (an inference takes about `turn_recheck_ms`): with
        the default 700 ms bound, a re-check asked at 500 ms answered after the endpoint."""
        if utt.verdict is None:
            return True
        if utt.final_text is None or utt.final_upto < utt.voiced_end:
            return False
        if silence + self.params.samples(self.params.turn_recheck_ms) >= self._silence_bound(utt):
            return False
        return not is_unfinished(utt.final_text)

    def _silence_bound(self, utt: _Utterance) -> int:
        """Trailing silence that ends the turn whatever the detector says (turn detection on).

        `end_of_speech_ms` once this silence's final transcript is known and not clearly
        unfinished; the longer cap while it is unfinished or still being recognized. Waiting for
        a late final costs no latency (the reply needs its text), and ending the turn without it
        judged a pause by the partial, which misses the last words: "I'd like to speak" ended
        turns whose final would have read "... with" (the turn benchmark's false cut-offs)."""
        p = self.params
        final = utt.final_text if utt.final_upto >= utt.voiced_end else None
        if final is None or is_unfinished(final):
            return p.samples(max(p.end_of_speech_ms, p.unfinished_cap_ms))
        return p.samples(p.end_of_speech_ms)

    def _verdict(self, ev: TurnVerdict, out: list[TurnCommand]) -> None:
        utt = self._utt
        if (
            utt is None
            or not self.params.turn_detection
            or self.listen is not Listen.TRAILING
            or self.agent is Agent.PAUSED
            or ev.at < utt.voiced_end  # judged an earlier silence: the caller has spoken since
        ):
            return
        utt.verdict = ev.probability
        self._decide(utt, out)

    def _decide(self, utt: _Utterance, out: list[TurnCommand]) -> None:
        """End the turn on a "complete" verdict, judged with this silence's final transcript.

        The verdict waits for the final: the reply needs that text anyway (the preemptive reply
        starts with it), so waiting costs nothing, and the audio model alone calls most
        mid-sentence pauses complete. Clearly unfinished text ("… for", "um") vetoes: the turn
        then ends only at the longer silence bound, or when the caller goes on.
        """
        if utt.verdict is None or utt.final_text is None or utt.final_upto < utt.voiced_end:
            return
        if end_of_turn_probability(utt.verdict, utt.final_text) >= COMPLETE_THRESHOLD:
            self._endpoint(self._now, "end_of_turn", out)

    def _endpoint(self, now: int, reason: str, out: list[TurnCommand]) -> None:
        utt = self._utt
        assert utt is not None
        if self.agent is Agent.PAUSED:
            # Speech capped by a timeout over a reply still paused: the caller means it.
            self._flush(now, out)
        text = utt.final_text if utt.final_upto >= utt.voiced_end else None
        if (
            text is not None
            and not count_words(text)
            and utt.voiced_end - utt.start < p_samples(self.params, self.params.first_word_timeout_ms)
        ):
            self._discard("no_words", out)  # a short wordless burst (cough, click): not a turn
            return
        self._transition_listen(_Endpoint)
        self._run_voiced = 0  # a caller who goes on starts a fresh utterance from here
        out.append(CommitTurn(start=utt.start, speech_end=utt.voiced_end, decided_at=now, text=text, reason=reason))
        self._utt = None
        self._last_activity = now
        self._nudged = False

    def _discard(self, reason: str, out: list[TurnCommand]) -> None:
        utt = self._utt
        assert utt is not None
        self._transition_listen(_Discarded)
        if utt.preemptive:
            out.append(CancelPreemptive())
        out.append(DiscardUtterance(start=utt.start, reason=reason))
        self._utt = None
        if self.agent is Agent.PAUSED:
            self._resume(self._now, out)

    def _idle_timers(self, now: int, out: list[TurnCommand]) -> None:
        p = self.params
        if self.listen is not Listen.IDLE or self.agent is not Agent.QUIET:
            self._last_activity = now
            return
        quiet = now - self._last_activity
        if p.attention_timeout_ms and not self._nudged and quiet >= p.samples(p.attention_timeout_ms):
            self._nudged = True
            out.append(NudgeCaller(at=now))
        if p.inactivity_timeout_ms and now - self._last_caller_voice >= p.samples(p.inactivity_timeout_ms):
            self._last_caller_voice = now  # once
            out.append(EndConversation(at=now, reason="inactivity_timeout"))

    # -- barge-in --------------------------------------------------------------------------------
    def _can_barge(self) -> bool:
        reply = self._reply
        return self.agent is Agent.TALKING and reply is not None and self.params.enable_barge and reply.bargeable

    def _barge(self, out: list[TurnCommand]) -> None:
        reply = self._reply
        if not self._can_barge() or reply is None:
            return
        self.agent = _next_agent(self.agent, _Barged)
        reply.paused_at = self._run_start
        reply.paused_cursor = self.cursor
        out.append(PausePlayout(at=self._now, cursor=self.cursor))
        if self._utt is not None and self._confirmed(self._utt.text):
            self._flush(self._now, out)

    def _barge_timers(self, now: int, out: list[TurnCommand]) -> None:
        p, reply = self.params, self._reply
        assert reply is not None
        if self._utt is not None and self._confirmed(self._utt.final_text or self._utt.text):
            self._flush(now, out)
            return
        if self.listen is Listen.TRAILING and self._utt is not None and self._utt.final_text is not None:
            self._discard("barge_not_confirmed", out)  # the final transcript has too few words: resume
            return
        since = now - reply.paused_at
        if p.interrupt_on_noise and self.listen is Listen.SPEAKING and since >= p.samples(p.noise_barge_ms):
            self._flush(now, out)
            return
        # Fallback when no transcript settles it: the caller has been quiet for the whole window.
        quiet = now - self._last_caller_voice
        if self.listen is not Listen.SPEAKING and quiet >= p.samples(p.barge_confirm_ms):
            if self._utt is not None:
                self._discard("barge_not_confirmed", out)  # resumes the reply
            else:
                self._resume(now, out)

    def _confirmed(self, text: str) -> bool:
        if self._barge_re is not None and self._barge_re.search(text):
            return True
        words = [w for w in count_words(text) if w not in BACKCHANNELS]
        return len(words) >= max(1, self.params.barge_min_words)

    def _flush(self, now: int, out: list[TurnCommand]) -> None:
        reply = self._reply
        assert reply is not None
        self.agent = _next_agent(self.agent, _Confirmed)
        heard = heard_words(reply.words, reply.paused_cursor - self.params.far_end_delay_samples)
        out.append(
            FlushReply(
                at=now,
                cursor=reply.paused_cursor,
                heard_text=" ".join(w.text for w in heard),
                heard_words=len(heard),
                total_words=len(reply.words),
            )
        )
        self._reply = None

    def _resume(self, now: int, out: list[TurnCommand]) -> None:
        reply = self._reply
        assert reply is not None
        self.agent = _next_agent(self.agent, _NotConfirmed)
        out.append(ResumePlayout(at=now, cursor=reply.paused_cursor))

    def _queued(self, ev: ReplyQueued, out: list[TurnCommand]) -> None:
        starting = self.agent is Agent.QUIET
        if self._reply is None:
            self._reply = _Reply(bargeable=ev.bargeable)
        self._reply.words.extend(ev.words)
        self._reply.end_mark = ev.end_mark
        self._reply.bargeable = ev.bargeable
        self.agent = _next_agent(self.agent, _Queued)
        if starting and self.listen is Listen.SPEAKING:
            # The caller spoke again between the endpoint and our first audio (a pause the
            # endpoint took for the end of the turn): the reply must not start over them. It is
            # a barge-in before the first frame, settled the same way (words flush it unheard, a
            # cough resumes it).
            self._barge(out)

    # -- transcripts and digits ------------------------------------------------------------------
    def _transcript(self, ev: Transcript, out: list[TurnCommand]) -> None:
        utt = self._utt
        if utt is None or ev.upto < utt.start:
            return  # a late result for an utterance that is over
        text = ev.text.strip()
        if text != utt.text:
            utt.text = text
            utt.text_changed_at = self._now
            utt.unchanged_results = 0
        else:
            utt.unchanged_results += 1
        if ev.final and ev.upto >= utt.voiced_end and self.listen is Listen.TRAILING:
            utt.final_text, utt.final_upto = text, ev.upto
            if count_words(text) and self.agent is not Agent.PAUSED and not utt.preemptive:
                utt.preemptive = True
                out.append(StartPreemptive(text))
            if self.params.turn_detection and self.agent is not Agent.PAUSED:
                self._decide(utt, out)  # a verdict that came first was waiting for this text
                if self._utt is utt and self._now - utt.voiced_end >= self._silence_bound(utt):
                    self._endpoint(self._now, "end_of_speech", out)  # the bound passed while it was recognized
        if self.agent is Agent.PAUSED:
            self._barge_timers(self._now, out)

    def _digit(self, ev: DigitPressed, out: list[TurnCommand]) -> None:
        self._last_activity = ev.at
        self._nudged = False
        if ev.digit in self.params.digit_terminators:
            out.append(DigitsEntered(self._digits, terminator=ev.digit))
            self._digits = ""
            self._last_digit_at = -1
            return
        self._digits += ev.digit
        self._last_digit_at = ev.at

    def _transition_listen(self, trigger: type) -> None:
        self.listen = _next_listen(self.listen, trigger)
