"""Engines in worker processes (pipeline/engine_process.py): the same answers as in process,
streamed sentences, errors and a dead worker handled, and the worker at the configured nice."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mediaserver.pipeline.engine_process import (
    EngineProcess,
    EngineProcessDied,
    EngineSpec,
    RemoteDetector,
    RemoteTts,
    named_spec,
    remote_recognizer,
)
from mediaserver.pipeline.engines import AsrOptions, TtsOptions, TurnOptions, load_engine
from tests.support.speech import resample

FAKE = "tests.support.fake_engines"


def _nice_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[16])


@pytest.fixture
def counter() -> Iterator[EngineProcess]:
    worker = EngineProcess(EngineSpec(f"{FAKE}:counter", None, nice=5, lanes=2, name="counter"))
    yield worker
    worker.close()


def test_calls_streams_and_an_abandoned_stream_leaves_its_lane_clean(counter: EngineProcess) -> None:
    assert counter.info["sample_rate"] == 8000 and counter.info["voice_id"] == "counter"
    assert counter.call("echo", {"a": [1, 2]}) == {"a": [1, 2]}
    assert list(counter.stream("synthesize", "4")) == [0, 1, 2, 3]
    abandoned = counter.stream("synthesize", "1000")
    assert next(abandoned) == 0
    abandoned.close()  # the rest of that answer is drained, not read by the next caller
    assert [list(counter.stream("synthesize", "3")) for _ in range(3)] == [[0, 1, 2]] * 3
    assert counter.call("echo", "after") == "after"


def test_an_engine_error_is_raised_in_the_caller_and_the_worker_goes_on(counter: EngineProcess) -> None:
    with pytest.raises(ValueError, match="no such thing"):
        counter.call("fail")
    assert counter.call("echo", 7) == 7


def test_a_dead_worker_fails_the_call_and_the_next_call_starts_a_new_one(counter: EngineProcess) -> None:
    first = counter.pid
    with pytest.raises(EngineProcessDied):
        counter.call("die")
    assert counter.call("echo", "again") == "again"
    assert counter.pid != first


def test_the_worker_runs_at_the_nice_asked_for(counter: EngineProcess) -> None:
    assert counter.pid is not None and counter.pid != os.getpid()
    assert _nice_of(counter.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 5 == counter.info["nice"]


def test_a_factory_that_fails_names_itself() -> None:
    with pytest.raises(RuntimeError, match="broken.*no model at /nowhere"):
        EngineProcess(EngineSpec(f"{FAKE}:broken", "/nowhere", name="broken"))


def test_the_bundled_engines_answer_in_a_worker_exactly_as_in_process() -> None:
    """Whisper's recognition and smart-turn's probability bit for bit; Piper's chunks (its
    synthesis samples noise, so no two runs match, in process either) sentence for sentence,
    word for word and within 15 % of the length."""
    text = "I would like to book a table. For two people, please."
    local_tts = load_engine("tts", "piper", TtsOptions())
    tts = RemoteTts(EngineProcess(named_spec("tts", "piper", TtsOptions(), nice=19, lanes=2)))
    try:
        here, there = list(local_tts.synthesize(text)), list(tts.synthesize(text))
        assert len(there) == len(here) == 2 and tts.sample_rate == local_tts.sample_rate
        for a, b in zip(here, there, strict=True):
            assert a.text == b.text and [w.text for w in a.words] == [w.text for w in b.words]
            assert abs(len(a.pcm) - len(b.pcm)) < 0.15 * len(a.pcm) and b.pcm.dtype == np.int16
        assert tts.voice_id == local_tts.voice_id
    finally:
        tts.worker.close()
    voice = np.concatenate([chunk.pcm for chunk in there])
    pcm = np.clip(resample(voice, local_tts.sample_rate, 16000), -32768, 32767).astype(np.int16)
    asr = remote_recognizer(EngineProcess(named_spec("asr", "whisper", AsrOptions(), nice=19, lanes=1)))
    detector = RemoteDetector(EngineProcess(named_spec("end_of_turn", "smart_turn", TurnOptions(), nice=19, lanes=1)))
    try:
        heard = asr.transcribe(pcm)
        assert heard == load_engine("asr", "whisper", AsrOptions()).transcribe(pcm)
        assert heard.text.lower().startswith("i would like to book a table"), heard
        probability, cpu_s = detector.probability_timed(pcm)
        assert probability == load_engine("end_of_turn", "smart_turn", TurnOptions()).probability(pcm)
        assert cpu_s > 0  # the worker thread's own CPU time, for turn_check's cpu_ms
        assert not hasattr(asr, "transcribe_language")  # tiny.en hears English only
    finally:
        asr.worker.close()
        detector.worker.close()
