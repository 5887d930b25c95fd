"""Events into and commands out of the turn manager (`mediaserver.pipeline.turn`).

Positions: `at`, `upto`, `start`, `speech_end`, `decided_at` are samples on the caller's 16 kHz
inbound clock; `cursor` and `end_mark` are played-sample positions at the call's codec rate.
Events are past tense (what happened), commands imperative (what the kernel must do).
"""

from __future__ import annotations

from dataclasses import dataclass

# ---- events (inputs) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameAnalyzed:
    at: int  # first sample of the 20 ms frame
    voiced: bool


@dataclass(frozen=True)
class Transcript:
    text: str
    final: bool
    upto: int  # the utterance audio it covers ends here (caller samples)


@dataclass(frozen=True)
class WordMark:
    text: str
    end_mark: int  # playout position (codec-rate played samples) of the word's last sample


@dataclass(frozen=True)
class ReplyQueued:
    """More audio of the current reply is queued (one call per TTS chunk)."""

    text: str
    words: tuple[WordMark, ...]
    end_mark: int
    bargeable: bool = True


@dataclass(frozen=True)
class PlayoutAdvanced:
    cursor: int  # played samples at the playout rate


@dataclass(frozen=True)
class ReplyDone:
    """The reply is complete (its text is final) and all of its audio has been played."""


@dataclass(frozen=True)
class DigitPressed:
    digit: str
    at: int


@dataclass(frozen=True)
class TurnVerdict:
    """The end-of-turn detector's answer to `CheckEndOfTurn(start, upto)`."""

    at: int  # the `upto` of the check it answers: the audio it judged ends here
    probability: float  # P(turn complete) from the audio alone; the manager adds the transcript's hint


TurnEvent = FrameAnalyzed | Transcript | ReplyQueued | PlayoutAdvanced | ReplyDone | DigitPressed | TurnVerdict

# ---- commands (outputs) -------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechStarted:
    at: int  # first voiced sample of the onset
    decided_at: int  # end of the frame where the onset was decided


@dataclass(frozen=True)
class SpeechEnded:
    at: int  # first unvoiced sample after the voice


@dataclass(frozen=True)
class TranscribePartial:
    start: int
    upto: int


@dataclass(frozen=True)
class PrepareFinal:
    start: int
    upto: int


@dataclass(frozen=True)
class CheckEndOfTurn:
    """Ask the end-of-turn detector about the caller's audio [start, upto); answer with `TurnVerdict(upto, p)`."""

    start: int
    upto: int


@dataclass(frozen=True)
class StartPreemptive:
    text: str


@dataclass(frozen=True)
class CancelPreemptive:
    pass


@dataclass(frozen=True)
class CommitTurn:
    start: int  # utterance onset
    speech_end: int  # caller's last voiced sample + 1
    decided_at: int  # the endpoint decision
    text: str | None  # the final transcript when it is already known
    reason: str  # "end_of_speech" | "end_of_turn" | "speech_timeout" | "speech_event_timeout"


@dataclass(frozen=True)
class DiscardUtterance:
    start: int
    reason: str


@dataclass(frozen=True)
class PausePlayout:
    at: int
    cursor: int


@dataclass(frozen=True)
class ResumePlayout:
    at: int
    cursor: int


@dataclass(frozen=True)
class FlushReply:
    at: int
    cursor: int
    heard_text: str
    heard_words: int
    total_words: int


@dataclass(frozen=True)
class NudgeCaller:
    at: int


@dataclass(frozen=True)
class EndConversation:
    at: int
    reason: str


@dataclass(frozen=True)
class DigitsEntered:
    digits: str
    terminator: str


TurnCommand = (
    SpeechStarted
    | SpeechEnded
    | TranscribePartial
    | PrepareFinal
    | CheckEndOfTurn
    | StartPreemptive
    | CancelPreemptive
    | CommitTurn
    | DiscardUtterance
    | PausePlayout
    | ResumePlayout
    | FlushReply
    | NudgeCaller
    | EndConversation
    | DigitsEntered
)
