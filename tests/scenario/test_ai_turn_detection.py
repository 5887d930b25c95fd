"""Semantic end of turn: the turn manager's policy on a sample timeline, then a call on the manual clock.

The detector is a fake behind `EndOfTurnDetector`: on the timeline a `TurnVerdict` is sent by
hand; in the call `ToneTurnDetector` calls a turn complete when the caller's tone is one of its
"finished" frequencies (as `ToneAsr` maps tones to phrases), and `GatedExecutor` holds its
answers back to deliver them late.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

import numpy as np
import pytest

from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.pipeline.turn import (
    FRAME_SAMPLES,
    CancelPreemptive,
    CheckEndOfTurn,
    CommitTurn,
    FrameAnalyzed,
    StartPreemptive,
    Transcript,
    TurnCommand,
    TurnManager,
    TurnParams,
    TurnVerdict,
)
from tests.scenario.ai_fakes import InlineExecutor, Scenario, ScriptedLlm, tone

MS = 16  # caller samples per millisecond

# ---- the pure policy -----------------------------------------------------------------------------


class Timeline:
    def __init__(self, params: TurnParams) -> None:
        self.turn = TurnManager(params)
        self.frame = 0
        self.log: list[tuple[int, TurnCommand]] = []

    def run(self, frames: int, voiced: bool) -> None:
        for _ in range(frames):
            for cmd in self.turn.handle(FrameAnalyzed(self.frame * FRAME_SAMPLES, voiced)):
                self.log.append((self.frame, cmd))
            self.frame += 1

    def send(self, event: Any) -> list[TurnCommand]:
        out = self.turn.handle(event)
        self.log.extend((self.frame, c) for c in out)
        return out

    def of(self, kind: type) -> list[tuple[int, Any]]:
        return [(f, c) for f, c in self.log if isinstance(c, kind)]


ON = TurnParams(turn_detection=True, partial_interval_ms=10_000)


def speak(t: Timeline, text: str = "what time is it") -> None:
    """Frames 10..59 voiced, a final transcript at once: the first unvoiced sample is 60 * 320."""
    t.run(10, False)
    t.run(50, True)
    t.run(3, False)  # the hangover: TRAILING from frame 62, PrepareFinal
    t.send(Transcript(text, final=True, upto=60 * FRAME_SAMPLES))


def test_off_by_default_in_turn_params_and_the_fixed_rule_asks_nothing() -> None:
    assert TurnParams().turn_detection is False
    t = Timeline(TurnParams(partial_interval_ms=10_000))
    speak(t)
    t.run(100, False)
    assert not t.of(CheckEndOfTurn)
    [(frame, commit)] = t.of(CommitTurn)
    assert frame == 94 and commit.reason == "end_of_speech"


def test_complete_verdict_ends_the_turn_at_once_after_turn_detection_ms() -> None:
    t = Timeline(ON)
    speak(t)
    t.run(10, False)  # frames 63..72
    [(frame, check)] = t.of(CheckEndOfTurn)
    # Frame 72 is the first whose end has 250 ms of silence after sample 60 * 320.
    assert frame == 72 and check == CheckEndOfTurn(start=10 * FRAME_SAMPLES, upto=73 * FRAME_SAMPLES)
    assert not t.of(CommitTurn)
    [commit] = t.send(TurnVerdict(check.upto, 0.8))
    assert isinstance(commit, CommitTurn) and commit.reason == "end_of_turn"
    assert commit.text == "what time is it" and commit.speech_end == 60 * FRAME_SAMPLES
    assert commit.decided_at - commit.speech_end == 260 * MS  # 250 ms, whole frames
    assert t.of(StartPreemptive)  # the preemptive reply started with the final, before the verdict
    t.run(60, False)
    assert len(t.of(CommitTurn)) == 1 and len(t.of(CheckEndOfTurn)) == 1


@pytest.mark.parametrize(
    ("eos_ms", "check_frames", "commit_frame"),
    [
        (700, [72], 94),  # a re-check at 510 ms would answer after the 700 ms bound: not asked
        (1500, [72, 85, 98, 111], 134),  # every 250 ms (whole frames) while a verdict can still count
    ],
)
def test_incomplete_verdicts_ask_again_while_a_verdict_can_come_before_end_of_speech(
    eos_ms: int, check_frames: list[int], commit_frame: int
) -> None:
    t = Timeline(TurnParams(turn_detection=True, end_of_speech_ms=eos_ms, partial_interval_ms=10_000))
    speak(t)
    for _ in range(100):
        t.run(1, False)
        for _, check in t.of(CheckEndOfTurn)[-1:]:
            t.send(TurnVerdict(check.upto, 0.2))
    assert [f for f, _ in t.of(CheckEndOfTurn)] == check_frames
    [(frame, commit)] = t.of(CommitTurn)
    assert frame == commit_frame and commit.reason == "end_of_speech"  # the upper bound, as without detection


def test_clearly_unfinished_text_vetoes_the_verdict_and_raises_the_bound_to_the_cap() -> None:
    t = Timeline(ON)
    speak(t, "I'd like to book a table for")
    for _ in range(120):
        t.run(1, False)
        if t.log[-1][0] == t.frame - 1 and isinstance(t.log[-1][1], CheckEndOfTurn):
            # Even a confident "complete" from the audio does not end "… for".
            t.send(TurnVerdict(t.log[-1][1].upto, 0.99))
    assert [f for f, _ in t.of(CheckEndOfTurn)] == [72]  # no re-check: the text vetoes any verdict
    [(frame, commit)] = t.of(CommitTurn)
    assert frame == 159 and commit.reason == "end_of_speech"  # max(700, 2000) ms: 60 + 100 - 1
    assert commit.decided_at - commit.speech_end == 2000 * MS


def test_re_checks_wait_for_the_final_transcript() -> None:
    t = Timeline(TurnParams(turn_detection=True, end_of_speech_ms=1500, partial_interval_ms=10_000))
    t.run(10, False)
    t.run(50, True)
    t.run(13, False)
    [(_, check)] = t.of(CheckEndOfTurn)
    t.send(TurnVerdict(check.upto, 0.2))
    t.run(20, False)  # 660 ms of silence, no final yet: no re-check (the final needs the CPU)
    assert len(t.of(CheckEndOfTurn)) == 1
    t.send(Transcript("what time is it", final=True, upto=60 * FRAME_SAMPLES))
    t.run(1, False)
    assert len(t.of(CheckEndOfTurn)) == 2  # the text does not veto: judge the longer silence


def test_a_verdict_before_the_final_transcript_waits_for_it() -> None:
    t = Timeline(ON)
    t.run(10, False)
    t.run(50, True)
    t.run(13, False)  # the hangover, then the first check at frame 72; no final yet
    [(_, check)] = t.of(CheckEndOfTurn)
    assert t.send(TurnVerdict(check.upto, 0.99)) == []  # "complete", but judged with no text yet
    t.run(2, False)
    out = t.send(Transcript("what time is it", final=True, upto=60 * FRAME_SAMPLES))
    assert [type(c) for c in out] == [StartPreemptive, CommitTurn]  # the text arrives: it ends at once
    assert out[1].reason == "end_of_turn" and out[1].text == "what time is it"


def test_a_waiting_verdict_is_vetoed_by_an_unfinished_final() -> None:
    t = Timeline(ON)
    t.run(10, False)
    t.run(50, True)
    t.run(13, False)
    [(_, check)] = t.of(CheckEndOfTurn)
    t.send(TurnVerdict(check.upto, 0.99))
    out = t.send(Transcript("I'd like to book a table for", final=True, upto=60 * FRAME_SAMPLES))
    assert [type(c) for c in out] == [StartPreemptive]  # speculative work starts; the turn goes on
    t.run(30, True)  # the caller goes on after 0.9 s
    assert t.of(CancelPreemptive) and not t.of(CommitTurn)


def test_end_of_speech_waits_for_a_late_final_and_ends_when_it_comes() -> None:
    t = Timeline(ON)
    t.run(10, False)
    t.run(50, True)
    t.run(3, False)  # TRAILING, PrepareFinal; the final is slow (a busy box)
    for _ in range(60):  # 1.2 s of silence with no final: past end_of_speech (700 ms)
        t.run(1, False)
        for _, check in t.of(CheckEndOfTurn)[-1:]:
            t.send(TurnVerdict(check.upto, 0.2))
    assert not t.of(CommitTurn)  # the partial alone never ends the turn at the 700 ms bound
    out = t.send(Transcript("what time is it", final=True, upto=60 * FRAME_SAMPLES))
    assert [type(c) for c in out] == [StartPreemptive, CommitTurn]  # ends as the text comes
    assert out[1].reason == "end_of_speech" and out[1].text == "what time is it"


def test_a_late_unfinished_final_keeps_the_turn_open_to_the_cap() -> None:
    t = Timeline(ON)
    t.run(10, False)
    t.run(50, True)
    t.send(Transcript("I would like to speak", final=False, upto=50 * FRAME_SAMPLES))
    t.run(3, False)
    t.run(45, False)  # 900 ms of silence: the partial's "... speak" would have ended it at 700
    assert not t.of(CommitTurn)
    assert [type(c) for c in t.send(Transcript("I would like to speak with", final=True, upto=60 * FRAME_SAMPLES))] == [
        StartPreemptive
    ]
    t.run(20, True)  # the caller goes on after 1.3 s
    assert t.of(CancelPreemptive) and not t.of(CommitTurn)


def test_without_a_final_the_cap_ends_the_turn() -> None:
    t = Timeline(ON)
    t.run(10, False)
    t.run(50, True)
    t.run(120, False)
    [(frame, commit)] = t.of(CommitTurn)
    assert commit.text is None and commit.decided_at - commit.speech_end == 2000 * MS


@pytest.mark.parametrize(("eos_ms", "cap_ms"), [(400, 2000), (1500, 2000), (3000, 3000)])
def test_the_cap_is_2000_ms_never_below_end_of_speech(eos_ms: int, cap_ms: int) -> None:
    t = Timeline(TurnParams(turn_detection=True, end_of_speech_ms=eos_ms, partial_interval_ms=10_000))
    speak(t, "and then um")
    t.run(200, False)
    [(_, commit)] = t.of(CommitTurn)
    assert cap_ms * MS <= commit.decided_at - commit.speech_end < (cap_ms + 20) * MS


def test_a_verdict_for_an_earlier_silence_or_after_the_endpoint_is_ignored() -> None:
    t = Timeline(ON)
    speak(t)
    t.run(10, False)
    [(_, check)] = t.of(CheckEndOfTurn)
    t.run(5, True)  # the caller goes on during the check: the preemptive reply is cancelled
    assert t.of(CancelPreemptive)
    assert t.send(TurnVerdict(check.upto, 0.99)) == []  # judged the old silence
    t.run(3, False)
    assert t.send(TurnVerdict(check.upto, 0.99)) == []  # still the old silence, now in a new one
    t.send(Transcript("what time is it now", final=True, upto=78 * FRAME_SAMPLES))  # the new silence's
    t.run(40, False)
    [(_, commit)] = t.of(CommitTurn)
    assert commit.reason == "end_of_speech"
    late = t.of(CheckEndOfTurn)[-1][1]
    assert t.send(TurnVerdict(late.upto, 0.99)) == []  # after the endpoint: nothing


def test_detection_can_be_turned_off_live() -> None:
    t = Timeline(ON)
    t.turn.set_params(turn_detection=False)
    speak(t)
    t.run(60, False)
    assert not t.of(CheckEndOfTurn) and t.of(CommitTurn)[0][0] == 94


def test_ai_params_turn_detection_on_by_default_and_mapped() -> None:
    default = AiSessionConfig.from_params({"prompt": {"text": "t"}}).turn
    assert default.turn_detection is True and default.turn_detection_ms == 250 and default.end_of_speech_ms == 700
    off = AiSessionConfig.from_params(
        {"prompt": {"text": "t"}, "params": {"enable_turn_detection": False, "turn_detection_timeout": 400}}
    )
    assert off.turn.turn_detection is False and off.turn.turn_detection_ms == 400 and not off.warnings
    assert AiSessionConfig.from_params({"params": {"enable_turn_detection": "false"}}).turn.turn_detection is False


# ---- on a call -------------------------------------------------------------------------------------


class ToneTurnDetector:
    """Complete when the caller's dominant tone is one of `complete_hz` (a "finished" phrase)."""

    def __init__(self, complete_hz: set[int]) -> None:
        self.complete_hz = complete_hz
        self.calls: list[int] = []  # samples of audio per call

    def probability(self, pcm: np.ndarray) -> float:
        self.calls.append(len(pcm))
        spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
        peak_hz = float(np.argmax(spectrum)) * 16000 / max(1, len(pcm))
        return 0.9 if any(abs(peak_hz - hz) < 25 for hz in self.complete_hz) else 0.1


class GatedExecutor(Executor):
    """Runs jobs at once, except the detector's, which wait for `release()`: a late verdict."""

    def __init__(self, detector: ToneTurnDetector) -> None:
        self.detector = detector
        self.held: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if self.detector in (getattr(fn, "__self__", None), *args[:1]):  # the detector's own job
            self.held.append((future, fn, args))
            return future
        future.set_result(fn(*args, **kwargs))
        return future

    def release(self) -> None:
        held, self.held = self.held, []
        for future, fn, args in held:
            future.set_result(fn(*args))


def call(detector: ToneTurnDetector | None, phrases: dict[int, str], **params: object) -> Scenario:
    return Scenario(
        {"prompt": {"text": "t"}, "params": {"wait_for_user": True, **params}},
        llm=ScriptedLlm(["It is noon.", "second answer"]),
        phrases=phrases,
        detector=detector,
    )


def silence_to_endpoint_ms(s: Scenario) -> int:
    [ended] = s.events("turn_speech_ended")[-1:]
    [endpoint] = s.events("turn_endpoint")
    return (endpoint["caller_sample"] - ended["caller_sample"]) // MS


async def test_complete_turn_ends_turn_detection_timeout_after_speech_and_plays_the_preemptive_reply() -> None:
    detector = ToneTurnDetector({700})
    s = call(detector, {700: "what time is it"})
    await s.start()
    await s.play(ticks=10)
    await s.play(tone(700, 1000), ticks=60)
    [endpoint] = s.events("turn_endpoint")
    assert endpoint["reason"] == "end_of_turn" and endpoint["preemptive"] is True
    assert silence_to_endpoint_ms(s) == 260  # 250 ms of silence in whole 20 ms frames (was 700)
    [check] = s.events("turn_check")
    assert check["probability"] == 0.9 and check["caller_sample"] == endpoint["caller_sample"]
    assert detector.calls == [check["caller_sample"] - 10 * 320]  # from the onset: under 8 s
    [tick] = s.ticks_of("turn_endpoint")
    assert s.agent_ticks()[0] == tick + 1  # the preemptive reply, released in the tick
    assert s.tts.spoken == ["It is noon."] and len(s.llm.requests) == 1
    await s.finish()


async def test_incomplete_turn_does_not_end_at_700_ms_when_the_caller_resumes_at_1200_ms() -> None:
    detector = ToneTurnDetector({600})
    s = call(detector, {500: "I'd like to book a table for", 600: "I'd like to book a table for two."})
    await s.start()
    await s.play(tone(500, 600), ticks=60)  # 1.2 s of silence after a voice ending on "… for"
    assert not s.events("turn_endpoint") and len(s.events("turn_check")) == 1  # "… for" vetoes: no re-check
    assert len(s.llm.requests) == 1  # the preemptive reply to "… for", started at the first silence
    await s.play(tone(600, 1000), ticks=40)
    [endpoint] = s.events("turn_endpoint")
    assert endpoint["reason"] == "end_of_turn" and silence_to_endpoint_ms(s) == 260
    assert s.session.history[0] == {"role": "user", "content": "I'd like to book a table for two."}
    # The preemptive reply to "… for" was cancelled: generated, never played nor kept.
    assert len(s.llm.requests) == 2 and s.session.history[1] == {"role": "assistant", "content": "second answer"}
    assert s.agent_ticks()[0] == s.ticks_of("turn_endpoint")[0] + 1
    await s.finish()


async def test_incomplete_turn_ends_at_the_cap_when_the_caller_stays_silent() -> None:
    detector = ToneTurnDetector(set())
    s = call(detector, {500: "I'd like to book a table for"})
    await s.start()
    await s.play(tone(500, 600), ticks=130)
    [endpoint] = s.events("turn_endpoint")
    assert endpoint["reason"] == "end_of_speech" and silence_to_endpoint_ms(s) == 2000  # the cap
    assert [c["probability"] for c in s.events("turn_check")] == [0.1]
    assert s.tts.spoken == ["It is noon."]
    await s.finish()


async def test_incomplete_turn_with_neutral_text_ends_at_end_of_speech_timeout() -> None:
    s = call(ToneTurnDetector(set()), {700: "what time is it"}, end_of_speech_timeout=900)
    await s.start()
    await s.play(tone(700, 600), ticks=80)
    assert s.events("turn_endpoint")[0]["reason"] == "end_of_speech" and silence_to_endpoint_ms(s) == 900
    await s.finish()


async def test_late_complete_verdict_ends_the_turn_when_it_comes() -> None:
    detector = ToneTurnDetector({700})
    s = call(detector, {700: "what time is it"})
    gate = GatedExecutor(detector)
    s.engines.blocking = gate
    await s.start()
    await s.play(tone(700, 600), ticks=20)
    assert len(gate.held) == 1 and not s.events("turn_endpoint")  # asked at 260 ms, no answer yet
    await s.play(ticks=5)
    assert len(gate.held) == 1  # one check at a time: the re-asks wait for it
    gate.release()
    await s.play(ticks=1)
    [endpoint] = s.events("turn_endpoint")
    assert endpoint["reason"] == "end_of_turn"
    assert s.ticks_of("turn_endpoint") == s.ticks_of("turn_check")
    await s.finish()


async def test_caller_resuming_during_the_check_discards_its_verdict_and_the_preemptive_reply() -> None:
    detector = ToneTurnDetector({500, 600})
    s = call(detector, {500: "book a table", 600: "book a table for two"})
    gate = GatedExecutor(detector)
    s.engines.blocking = gate
    await s.start()
    await s.play(tone(500, 600), ticks=18)  # checked at 260 ms of silence, held
    assert len(gate.held) == 1 and len(s.llm.requests) == 1
    await s.play(tone(600, 1000))  # the caller goes on
    gate.release()  # "complete", but for the silence before
    await s.play(ticks=5)
    assert not s.events("turn_endpoint")
    await s.play(ticks=30)
    gate.release()  # the check of the new silence
    await s.play(ticks=30)
    [endpoint] = s.events("turn_endpoint")
    assert endpoint["reason"] == "end_of_turn"
    # The preemptive reply to "book a table" was generated, never played nor kept.
    assert s.session.history == [
        {"role": "user", "content": "book a table for two"},
        {"role": "assistant", "content": "second answer"},
    ]
    assert s.agent_ticks()[0] == s.ticks_of("turn_endpoint")[0] + 1
    await s.finish()


async def test_verdict_after_the_silence_bound_is_ignored() -> None:
    detector = ToneTurnDetector({700})
    s = call(detector, {700: "what time is it"})
    gate = GatedExecutor(detector)
    s.engines.blocking = gate
    await s.start()
    await s.play(tone(700, 600), ticks=60)
    [endpoint] = s.events("turn_endpoint")
    assert endpoint["reason"] == "end_of_speech" and silence_to_endpoint_ms(s) == 700
    gate.release()
    await s.play(ticks=20)
    assert len(s.events("turn_endpoint")) == 1 and s.tts.spoken == ["It is noon."]
    await s.finish()


async def test_without_a_detector_or_with_detection_off_the_fixed_silence_rule_stays() -> None:
    for detector, params in ((None, {}), (ToneTurnDetector({700}), {"enable_turn_detection": False})):
        s = call(detector, {700: "what time is it"}, **params)
        await s.start()
        await s.play(tone(700, 600), ticks=60)
        assert s.events("turn_endpoint")[0]["reason"] == "end_of_speech" and silence_to_endpoint_ms(s) == 700
        assert not s.events("turn_check") and (detector is None or not detector.calls)
        await s.finish()


# ---- the early check on the detector's own worker -----------------------------------------------


class DetectorWorker(Executor):
    """The detector's own executor in a test: runs a job at `release()` (or at once: `gated=False`),
    never one cancelled while it waited, and records who ran on it."""

    def __init__(self, gated: bool = True) -> None:
        self.gated = gated
        self.held: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = []
        self.ran: list[Any] = []  # the bound object of each job run (the detector)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.held.append((future, fn, args))
        if not self.gated:
            self.release()
        return future

    def release(self) -> None:
        held, self.held = self.held, []
        for future, fn, args in held:
            if future.set_running_or_notify_cancel():
                self.ran.append(args[0] if args else getattr(fn, "__self__", None))
                future.set_result(fn(*args))


class SharedPool(InlineExecutor):
    """The engines' shared pool (ASR, TTS), recording what ran there."""

    def __init__(self) -> None:
        self.ran: list[Any] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.ran.append(args[0] if args else getattr(fn, "__self__", None))
        return super().submit(fn, *args, **kwargs)


def with_worker(s: Scenario, worker: DetectorWorker) -> SharedPool:
    pool = SharedPool()
    s.engines.blocking = pool
    s.engines.detector_executor = worker
    return pool


async def test_early_check_starts_at_the_hangover_on_its_own_worker_and_answers_the_first_check() -> None:
    detector = ToneTurnDetector({700})
    s = call(detector, {700: "what time is it"})
    worker = DetectorWorker()
    pool = with_worker(s, worker)
    await s.start()
    await s.play(ticks=10)
    await s.play(tone(700, 1000), ticks=6)  # the hangover (60 ms of silence, heard 2 ticks late): it starts
    assert len(worker.held) == 1 and not s.events("turn_check")
    worker.release()  # ready well before 250 ms of silence
    await s.play(ticks=20)
    [endpoint] = s.events("turn_endpoint")
    assert endpoint["reason"] == "end_of_turn" and endpoint["preemptive"] is True
    assert silence_to_endpoint_ms(s) == 260  # not 260 + the inference: its verdict was waiting
    [check] = s.events("turn_check")
    assert check["early"] is True and check["caller_sample"] == endpoint["caller_sample"]
    # One run, on the audio of the check it answered (the unheard silence assumed): no second call.
    assert detector.calls == [check["caller_sample"] - 10 * 320]
    assert worker.ran == [detector] and detector not in pool.ran and pool.ran  # ASR ran in the pool
    assert s.tts.spoken == ["It is noon."]
    await s.finish()


async def test_early_check_waits_for_the_asr_final_of_its_silence() -> None:
    # Side by side on two cores the detector slowed the final, which the reply waits for.
    detector = ToneTurnDetector({700})
    s = call(detector, {700: "what time is it"})
    worker = DetectorWorker(gated=False)
    asr = DetectorWorker()  # the shared pool, gated: the final stays in it until released
    s.engines.blocking = asr
    s.engines.detector_executor = worker
    await s.start()
    await s.play(tone(700, 1000), ticks=8)
    assert asr.held and not detector.calls  # the hangover was 100 ms ago: the final is not done
    while asr.held:
        asr.release()
        await s.play(ticks=1)
    assert len(detector.calls) == 1  # now the early run
    await s.play(ticks=20)
    [endpoint] = s.events("turn_endpoint")
    assert endpoint["reason"] == "end_of_turn" and silence_to_endpoint_ms(s) == 260
    [check] = s.events("turn_check")
    assert check["early"] is True
    await s.finish()


async def test_caller_resuming_cancels_the_queued_early_check_and_the_next_silence_gets_its_own() -> None:
    detector = ToneTurnDetector({500, 600})
    s = call(detector, {500: "book a table", 600: "book a table for two"})
    worker = DetectorWorker()
    with_worker(s, worker)
    await s.start()
    await s.play(tone(500, 600), ticks=6)
    [(first, _, _)] = worker.held  # queued at the hangover, not run yet
    await s.play(tone(600, 1000))  # the caller goes on
    assert first.cancelled()
    await s.play(ticks=6)
    assert len(worker.held) == 2  # the new silence's early check
    worker.release()  # the first never runs; the second does
    assert len(detector.calls) == 1
    await s.play(ticks=20)
    [endpoint] = s.events("turn_endpoint")
    assert endpoint["reason"] == "end_of_turn" and silence_to_endpoint_ms(s) == 260
    [check] = s.events("turn_check")
    assert check["early"] is True and check["caller_sample"] == endpoint["caller_sample"]
    assert s.session.history[0] == {"role": "user", "content": "book a table for two"}
    await s.finish()


async def test_a_finished_early_verdict_is_discarded_when_the_caller_resumes() -> None:
    detector = ToneTurnDetector({500, 600})  # "complete" for both: only the silence decides
    s = call(detector, {500: "book a table", 600: "book a table for two"})
    worker = DetectorWorker(gated=False)
    with_worker(s, worker)
    await s.start()
    await s.play(tone(500, 600), ticks=7)  # the early verdict (complete) is in, not asked for yet
    assert len(detector.calls) == 1 and not s.events("turn_check")
    await s.play(tone(600, 1000), ticks=20)  # resumed at ~180 ms: that verdict is for the old silence
    [endpoint] = s.events("turn_endpoint")
    assert endpoint["reason"] == "end_of_turn" and silence_to_endpoint_ms(s) == 260
    assert len(detector.calls) == 2 and len(s.events("turn_check")) == 1  # the old one was never applied
    assert s.session.history[0] == {"role": "user", "content": "book a table for two"}
    await s.finish()


async def test_incomplete_early_verdict_then_rechecks_run_on_the_detector_worker() -> None:
    detector = ToneTurnDetector(set())
    s = call(detector, {700: "what time is it"}, end_of_speech_timeout=900)
    worker = DetectorWorker(gated=False)
    pool = with_worker(s, worker)
    await s.start()
    await s.play(tone(700, 600), ticks=80)
    [endpoint] = s.events("turn_endpoint")
    assert endpoint["reason"] == "end_of_speech" and silence_to_endpoint_ms(s) == 900
    checks = s.events("turn_check")
    # 260, 520 ms; not 780 (its verdict would come after the 900 ms bound)
    assert [c.get("early", False) for c in checks] == [True, False]
    assert len(detector.calls) == 2 and worker.ran == [detector] * 2 and detector not in pool.ran
    await s.finish()


async def test_no_early_check_without_the_detectors_own_worker() -> None:
    detector = ToneTurnDetector({700})
    s = call(detector, {700: "what time is it"})
    pool = SharedPool()
    s.engines.blocking = pool
    await s.start()
    await s.play(tone(700, 600), ticks=10)  # 200 ms of silence: nothing asked, nothing run
    assert not detector.calls
    await s.play(ticks=10)
    [check] = s.events("turn_check")
    assert "early" not in check and pool.ran.count(detector) == 1
    await s.finish()
