"""The pure turn manager on a sample timeline: exact frames for endpoints, pause, resume and cuts."""

from __future__ import annotations

import pytest

from mediaserver.pipeline.turn import (
    FRAME_SAMPLES,
    CancelPreemptive,
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
    heard_words,
)


class Timeline:
    """Feeds one FrameAnalyzed per 20 ms frame and remembers at which frame each command came."""

    def __init__(self, params: TurnParams) -> None:
        self.turn = TurnManager(params)
        self.frame = 0
        self.log: list[tuple[int, TurnCommand]] = []

    def run(self, frames: int, voiced: bool) -> None:
        for _ in range(frames):
            for cmd in self.turn.handle(FrameAnalyzed(self.frame * FRAME_SAMPLES, voiced)):
                self.log.append((self.frame, cmd))
            self.frame += 1

    def send(self, event: object) -> list[TurnCommand]:
        out = self.turn.handle(event)  # type: ignore[arg-type]
        self.log.extend((self.frame, c) for c in out)
        return out

    def frames_of(self, kind: type) -> list[int]:
        return [f for f, c in self.log if isinstance(c, kind)]

    def first(self, kind: type) -> TurnCommand:
        return next(c for _, c in self.log if isinstance(c, kind))


@pytest.mark.parametrize("eos_ms", [250, 700, 1500])
def test_end_of_speech_timeout_fires_exactly_that_long_after_the_last_voiced_frame(eos_ms: int) -> None:
    t = Timeline(TurnParams(end_of_speech_ms=eos_ms, partial_interval_ms=10_000))
    t.run(10, False)
    t.run(50, True)  # frames 10..59 voiced
    t.send(Transcript("hello there", final=False, upto=60 * FRAME_SAMPLES))
    t.run(200, False)  # first unvoiced frame is 60
    assert t.frames_of(SpeechStarted) == [11]  # onset_frames = 2: decided on frame 11
    assert t.first(SpeechStarted).at == 10 * FRAME_SAMPLES  # type: ignore[union-attr]
    assert t.frames_of(SpeechEnded) == [62]  # hangover 3 frames: 60, 61, 62
    assert t.first(PrepareFinal) == PrepareFinal(start=10 * FRAME_SAMPLES, upto=60 * FRAME_SAMPLES)
    # Endpoint decided at the end of the frame where silence since sample 60*320 reaches eos.
    expected = 60 + -(-eos_ms // 20) - 1  # whole frames: 250 ms needs 13
    assert t.frames_of(CommitTurn) == [expected]
    commit = t.first(CommitTurn)
    assert isinstance(commit, CommitTurn)
    assert commit.speech_end == 60 * FRAME_SAMPLES and commit.reason == "end_of_speech"
    assert eos_ms * 16 <= commit.decided_at - commit.speech_end < eos_ms * 16 + FRAME_SAMPLES


def test_final_transcript_in_trailing_silence_starts_preemptive_and_commits_it_with_text() -> None:
    t = Timeline(TurnParams(end_of_speech_ms=700))
    t.run(20, True)
    t.run(5, False)
    t.send(Transcript("what time is it", final=True, upto=20 * FRAME_SAMPLES))
    assert t.frames_of(StartPreemptive) == [25]
    t.run(40, False)
    commit = t.first(CommitTurn)
    assert isinstance(commit, CommitTurn) and commit.text == "what time is it"


def test_voice_during_trailing_silence_cancels_the_preemptive_reply() -> None:
    t = Timeline(TurnParams(end_of_speech_ms=700))
    t.run(20, True)
    t.run(5, False)
    t.send(Transcript("book a table", final=True, upto=20 * FRAME_SAMPLES))
    t.run(2, True)  # the caller goes on: "...for two"
    assert t.frames_of(CancelPreemptive) == [26]
    t.run(10, True)
    t.run(40, False)
    commit = t.first(CommitTurn)
    assert isinstance(commit, CommitTurn) and commit.text is None  # the old final is stale


def test_speech_timeout_caps_an_utterance() -> None:
    t = Timeline(TurnParams(speech_timeout_ms=2000, speech_event_timeout_ms=0, partial_interval_ms=400))
    t.run(200, True)
    commit = t.first(CommitTurn)
    assert isinstance(commit, CommitTurn) and commit.reason == "speech_timeout"
    # Onset sample 0, 2000 ms = 100 frames; the caller goes on: a fresh utterance from frame 100.
    assert t.frames_of(CommitTurn) == [99, 199]
    assert t.frames_of(TranscribePartial) == []  # agent quiet, speech-event timer off: nothing reads partials


def test_partials_every_400_ms_over_the_agent_and_half_the_speech_event_window_when_it_is_quiet() -> None:
    quiet = Timeline(TurnParams(speech_event_timeout_ms=1400, partial_interval_ms=400))
    quiet.run(100, True)
    assert quiet.frames_of(TranscribePartial) == [36, 71]  # every 700 ms after the onset decision (frame 1)
    talking = Timeline(TurnParams(speech_event_timeout_ms=1400, partial_interval_ms=400))
    talking.send(ReplyQueued("hello there", (WordMark("hello", 4000), WordMark("there", 8000)), 160_000))
    talking.run(100, True)
    assert talking.frames_of(TranscribePartial)[:3] == [20, 40, 60]  # every 400 ms: barge-in confirmation


def test_speech_event_timeout_ends_an_utterance_whose_transcript_stopped_changing() -> None:
    t = Timeline(TurnParams(speech_event_timeout_ms=1400, partial_interval_ms=10_000))
    t.run(30, True)
    t.send(Transcript("hello", final=False, upto=30 * FRAME_SAMPLES))  # text changes at frame 30's end
    t.run(100, True)  # then noise the VAD keeps calling speech...
    assert not t.frames_of(CommitTurn)  # ...but a recognizer that has not reported again proves nothing
    t.send(Transcript("hello", final=False, upto=130 * FRAME_SAMPLES))
    t.send(Transcript("hello", final=False, upto=130 * FRAME_SAMPLES))  # two results, no new words
    t.run(1, True)
    commit = t.first(CommitTurn)
    assert isinstance(commit, CommitTurn) and commit.reason == "speech_event_timeout"
    assert t.frames_of(CommitTurn) == [130]


def test_first_word_timeout_drops_a_short_wordless_burst_but_a_long_one_is_a_turn() -> None:
    t = Timeline(TurnParams(first_word_timeout_ms=1000, end_of_speech_ms=500))
    t.run(10, True)  # 200 ms cough
    t.run(5, False)
    t.send(Transcript("", final=True, upto=10 * FRAME_SAMPLES))
    t.run(30, False)
    assert t.frames_of(DiscardUtterance) == [10 + 25 - 1] and not t.frames_of(CommitTurn)
    t2 = Timeline(TurnParams(first_word_timeout_ms=1000, end_of_speech_ms=500))
    t2.run(60, True)  # 1.2 s of voice with no words: a turn (the session says "didn't catch that")
    t2.run(5, False)
    t2.send(Transcript("", final=True, upto=60 * FRAME_SAMPLES))
    t2.run(30, False)
    assert t2.frames_of(CommitTurn) == [60 + 25 - 1] and not t2.frames_of(DiscardUtterance)


def _talking(t: Timeline, words: int = 10, samples_per_word: int = 1600, bargeable: bool = True) -> None:
    marks = tuple(WordMark(f"w{i}", (i + 1) * samples_per_word) for i in range(words))
    t.send(ReplyQueued(" ".join(w.text for w in marks), marks, words * samples_per_word, bargeable=bargeable))


def test_barge_in_pauses_in_the_onset_frame_and_flushes_on_words_with_the_heard_cut() -> None:
    t = Timeline(TurnParams(far_end_delay_samples=320))
    _talking(t)
    t.run(10, False)
    t.send(PlayoutAdvanced(cursor=5 * 1600 + 400))  # mid-word 6 (w5)
    t.run(2, True)  # one voiced frame over the agent pauses it: frame 10
    assert t.frames_of(PausePlayout) == [10]
    pause = t.first(PausePlayout)
    assert isinstance(pause, PausePlayout) and pause.cursor == 8400
    t.send(PlayoutAdvanced(cursor=8400))
    t.run(5, True)
    t.send(Transcript("wait stop", final=False, upto=17 * FRAME_SAMPLES))
    flush = t.first(FlushReply)
    assert isinstance(flush, FlushReply)
    # cursor 8400 less 320 far-end samples = 8080: w0..w4 end at 1600..8000, all heard; w5 is cut.
    assert flush.heard_text == "w0 w1 w2 w3 w4" and flush.heard_words == 5 and flush.total_words == 10
    assert t.turn.agent.name == "QUIET"


def test_a_reply_ready_while_the_caller_speaks_again_waits_before_its_first_frame() -> None:
    """The endpoint took a pause for the end of the turn; the caller goes on before the reply's
    first audio: the reply is paused before a frame leaves, then flushed unheard on words, or
    resumed from its start after a cough."""
    for text, settles in (("opening hours on saturday", FlushReply), ("", ResumePlayout)):
        t = Timeline(TurnParams(end_of_speech_ms=300, barge_confirm_ms=800, partial_interval_ms=10_000))
        t.run(20, True)
        t.run(20, False)  # frames 20..39: the endpoint at 300 ms of silence
        assert t.frames_of(CommitTurn)
        t.run(4, True)  # the caller goes on: onset on frame 41
        assert t.frames_of(SpeechStarted)[-1] == 41 and not t.frames_of(PausePlayout)
        _talking(t)  # the reply's first audio is queued now, over the caller
        assert t.frames_of(PausePlayout) == [44]  # at once, before the next frame
        t.send(PlayoutAdvanced(cursor=0))
        t.run(3, False)
        t.send(Transcript(text, final=True, upto=44 * FRAME_SAMPLES))
        t.run(50, False)
        assert t.frames_of(settles), text
        if settles is FlushReply:
            flush = t.first(FlushReply)
            assert isinstance(flush, FlushReply) and flush.heard_words == 0 and flush.heard_text == ""
        else:
            assert not t.frames_of(FlushReply) and t.turn.agent.name == "TALKING"


def test_a_reply_queued_in_the_callers_silence_is_not_paused() -> None:
    t = Timeline(TurnParams(end_of_speech_ms=300, partial_interval_ms=10_000))
    t.run(20, True)
    t.run(20, False)
    _talking(t)
    t.run(10, False)
    assert not t.frames_of(PausePlayout) and t.turn.agent.name == "TALKING"


def test_cough_resumes_from_the_paused_position_after_the_window() -> None:
    t = Timeline(TurnParams(barge_confirm_ms=800))
    _talking(t)
    t.run(10, False)
    t.run(5, True)  # 100 ms burst (frames 10..14), onset decided on frame 10
    t.run(60, False)
    assert t.frames_of(PausePlayout) == [10]
    # No transcript: the window runs from the end of the caller's voice (frame 15): 40 frames.
    assert t.frames_of(ResumePlayout) == [54]
    assert not t.frames_of(FlushReply)
    assert t.frames_of(DiscardUtterance) == [54]


def test_final_transcript_without_words_resumes_at_once() -> None:
    t = Timeline(TurnParams(barge_confirm_ms=800))
    _talking(t)
    t.run(10, False)
    t.run(5, True)
    t.run(5, False)
    out = t.send(Transcript("", final=True, upto=15 * FRAME_SAMPLES))
    assert [type(c) for c in out] == [DiscardUtterance, ResumePlayout]


def test_backchannel_and_min_words_do_not_flush_but_match_string_does() -> None:
    t = Timeline(TurnParams(barge_min_words=2))
    _talking(t)
    t.run(2, True)
    t.run(5, False)
    t.send(Transcript("uh-huh okay", final=True, upto=2 * FRAME_SAMPLES))  # backchannels only
    assert t.frames_of(ResumePlayout) and not t.frames_of(FlushReply)
    t2 = Timeline(TurnParams(barge_min_words=5, barge_match=r"\bstop\b"))
    _talking(t2)
    t2.run(3, True)
    t2.send(Transcript("stop", final=False, upto=3 * FRAME_SAMPLES))
    assert t2.frames_of(FlushReply)


@pytest.mark.parametrize("params", [TurnParams(enable_barge=False), TurnParams()])
def test_no_pause_when_barge_is_disabled_or_reply_not_bargeable(params: TurnParams) -> None:
    t = Timeline(params)
    _talking(t, bargeable=params.enable_barge is False)
    t.run(30, True)
    assert not t.frames_of(PausePlayout)


def test_interrupt_on_noise_flushes_after_a_second_of_wordless_voice() -> None:
    t = Timeline(TurnParams(interrupt_on_noise=True, noise_barge_ms=1000, speech_event_timeout_ms=0))
    _talking(t)
    t.run(80, True)
    assert t.frames_of(FlushReply) == [49]


def test_attention_and_inactivity_timeouts_and_digits() -> None:
    t = Timeline(
        TurnParams(
            attention_timeout_ms=5000, inactivity_timeout_ms=10_000, digit_timeout_ms=1000, digit_terminators="#"
        )
    )
    _talking(t)
    t.run(100, False)
    t.send(ReplyDone())
    t.run(600, False)
    assert t.frames_of(NudgeCaller) == [100 + 250 - 1]
    assert t.frames_of(EndConversation) == [499]  # no caller voice since sample 0
    t.send(DigitPressed("1", t.frame * FRAME_SAMPLES))
    t.send(DigitPressed("2", t.frame * FRAME_SAMPLES))
    assert t.send(DigitPressed("#", t.frame * FRAME_SAMPLES)) == [DigitsEntered("12", "#")]
    t.send(DigitPressed("7", t.frame * FRAME_SAMPLES))
    start = t.frame
    t.run(60, False)
    assert t.frames_of(DigitsEntered)[-1] == start + 50 - 1


def test_heard_words_cut_at_word_boundaries() -> None:
    words = [WordMark("a", 100), WordMark("b", 200), WordMark("c", 300)]
    assert [w.text for w in heard_words(words, 199)] == ["a"]
    assert [w.text for w in heard_words(words, 200)] == ["a", "b"]
    assert heard_words(words, 0) == []
