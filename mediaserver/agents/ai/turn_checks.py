"""The end-of-turn detector's checks for one AI session: started early, answered when asked.

Theory of operation: the pure `TurnManager` asks `CheckEndOfTurn(start, upto)` after
`turn_detection_timeout` of silence and takes the answer back as `TurnVerdict(upto, p)`. An
inference takes about as long as that silence on a busy 2-core box, so asked only then the
verdict would come ~500 ms after the speech. `prepare` (at the manager's `PrepareFinal`, the
hangover, ~60 ms of silence) runs the detector, once that silence's ASR final is done, on the
audio of the check that will follow (`TurnManager.check_due`), the not-yet-heard silence assumed
(`assume_silence`): smart-turn's verdict moves a lot with the trailing silence's length, so
judging only up to the speech end would change it. `check` answers the manager from that early
run when it is for the same silence, else runs the detector now; one check at a time per call.
`heard_frame` drops the early run once the caller goes on. Early runs happen only with the
detector's own worker: in the shared pool they would delay the ASR final started at the same moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mediaserver.agents.ai.listen import Listener
from mediaserver.audio.frame import Pcm
from mediaserver.events import OMIT, AiFailure, CallEvent, TurnCheck
from mediaserver.pipeline.end_of_turn import EndOfTurnDetector
from mediaserver.pipeline.turn import (
    Agent,
    CheckEndOfTurn,
    Listen,
    PrepareFinal,
    TurnCommand,
    TurnManager,
    TurnVerdict,
)
from mediaserver.rates import PIPELINE_RATE

DETECTOR_WINDOW = 8 * PIPELINE_RATE  # the end-of-turn detector hears the caller's last 8 s


@dataclass
class _EarlyCheck:
    """A detector run started as the caller's voiced part ended, to answer the check that follows."""

    start: int  # the utterance's onset
    upto: int  # the `upto` of the check it answers (`TurnManager.check_due`)
    task: asyncio.Task[tuple[float, int, int] | None]  # (probability, wall ms, CPU ms); None: it failed


class DetectorEngines(Protocol):
    """What the checks read of the session's `AiEngines`, when they run (a protocol: no cycle)."""

    detector: EndOfTurnDetector | None
    detector_executor: Executor | None  # the detector's own worker; None: `blocking`, only when asked
    blocking: Executor


class TurnChecks:
    def __init__(
        self,
        engines: DetectorEngines,
        *,
        turn: TurnManager,
        listener: Listener,
        emit: Callable[[CallEvent], None],
        start: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
        apply: Callable[[list[TurnCommand]], None],
    ) -> None:
        self.engines = engines
        self.turn = turn
        self.listener = listener
        self.emit = emit
        self.start = start
        self.apply = apply
        self._checking = False  # a check is in an executor
        self._early: _EarlyCheck | None = None  # the early check of the current silence

    def heard_frame(self) -> None:
        """After each caller frame: a caller who went on (or a turn that ended) voids the early run."""
        if self._early is not None and self.turn.listen is not Listen.TRAILING:
            self._drop_early()

    def prepare(self, cmd: PrepareFinal, final: asyncio.Future[Any] | None = None) -> None:
        """The voiced part ended: run the detector on the audio of the check that will follow,
        once `final` (this silence's ASR final, started just before) is done."""
        self._drop_early()
        detector, executor, turn = self.engines.detector, self.engines.detector_executor, self.turn
        if (
            detector is None
            or executor is None
            or not turn.params.turn_detection
            or turn.listen is not Listen.TRAILING
            or turn.agent is Agent.PAUSED  # no verdict counts over a paused reply
            or turn.utterance_start != cmd.start
        ):
            return
        due = turn.check_due
        if due is None:
            return
        first = max(cmd.start, due - DETECTOR_WINDOW)
        pcm = assume_silence(self.listener.audio(first, due), due - first, cmd.upto - first)
        self._early = _EarlyCheck(cmd.start, due, self.start(self._detect_after(final, detector, executor, pcm)))

    def check(self, cmd: CheckEndOfTurn) -> None:
        if not self._checking:  # one at a time: the next check comes with more silence
            self._checking = True
            self.start(self._check(cmd))

    def _drop_early(self) -> None:
        early, self._early = self._early, None
        if early is not None:
            early.task.cancel()  # still queued for the worker: it never runs

    async def _detect_after(
        self, final: asyncio.Future[Any] | None, detector: EndOfTurnDetector, executor: Executor, pcm: Pcm
    ) -> tuple[float, int, int] | None:
        """`_detect` once `final` is done. The reply waits for the ASR final (its text goes to the
        LLM), the verdict does not: it is needed at `turn_detection_timeout` of silence and is
        judged with that final anyway. Run side by side on two cores the detector slowed the final
        (whole sentences, 2.8 s, one thread each: median 107 -> 127 ms); after it, the verdict is
        still ready before the first check (60 ms hangover + ~110 ms final + ~50 ms detector)."""
        if final is not None:
            await asyncio.wait([final])  # done, failed or cancelled alike; never cancels it
        return await self._detect(detector, executor, pcm)

    async def _detect(self, detector: EndOfTurnDetector, executor: Executor, pcm: Pcm) -> tuple[float, int, int] | None:
        """One inference: (probability, wall ms, CPU ms), or None (logged) when the detector fails.

        Wall time includes the wait for the worker; CPU time is the worker thread's own, which
        is what a call costs the box."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            probability, cpu_s = await loop.run_in_executor(executor, _timed, detector, pcm)
        except Exception as exc:  # the silence bound still ends the turn
            self.emit(AiFailure(kind="turn_detector_error", error=repr(exc)))
            return None
        return probability, round((loop.time() - started) * 1000), round(cpu_s * 1000)

    async def _check(self, cmd: CheckEndOfTurn) -> None:
        """Answer `CheckEndOfTurn`: from the early run of this silence if there is one, else run
        the detector on the caller's last 8 s now; feed back its verdict."""
        detector = self.engines.detector
        try:
            if detector is None:
                return
            early = self._early
            upto = cmd.upto
            used = early is not None and early.start == cmd.start and early.upto == upto
            if used and early is not None:
                try:
                    result = await early.task
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise
                    return  # dropped: the caller went on, this silence is over
                finally:
                    if self._early is early:
                        self._early = None  # used once: a re-check judges the longer silence
            else:
                self._drop_early()
                pcm = self.listener.audio(max(cmd.start, upto - DETECTOR_WINDOW), upto)
                result = await self._detect(detector, self.engines.detector_executor or self.engines.blocking, pcm)
            if result is None:
                return
            probability, ms, cpu_ms = result
            p = round(probability, 4)
            self.emit(TurnCheck(caller_sample=upto, probability=p, ms=ms, cpu_ms=cpu_ms, early=True if used else OMIT))
            self.apply(self.turn.handle(TurnVerdict(upto, probability)))
        finally:
            self._checking = False


def _timed(detector: EndOfTurnDetector, pcm: Pcm) -> tuple[float, float]:
    """`detector.probability(pcm)` and the CPU seconds it took: this thread's, or for a detector
    in a worker process (engine_process.py) the worker thread's, which it reports."""
    timed = getattr(detector, "probability_timed", None)
    if timed is not None:
        probability, cpu_s = timed(pcm)
        return float(probability), float(cpu_s)
    before = time.thread_time()
    probability = detector.probability(pcm)
    return probability, time.thread_time() - before


def assume_silence(heard: Pcm, length: int, speech: int) -> Pcm:
    """`heard` (ending `speech` samples or more after its start) made `length` long as if the
    caller stays silent: the not-yet-heard end is the line's own silence, the hangover heard
    after the speech repeated (zeros when none was heard). smart-turn's verdict moves with the
    length of the trailing silence (up to 0.5-0.9 between 0 and 260 ms of it on synthetic speech),
    so the early check judges audio as long as the check's."""
    missing = length - len(heard)
    if missing <= 0:
        return heard
    quiet = heard[speech:]
    fill = np.resize(quiet, missing) if len(quiet) else np.zeros(missing, dtype=np.int16)
    return np.concatenate([heard, fill.astype(np.int16)])
