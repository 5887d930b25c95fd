"""Inference threads run below the event loop: real engines, niced threads read from /proc (issue 16).

The app's executors are built and the engines loaded exactly as `MediaServer` does (in its
`blocking` worker), then Whisper, Piper and smart-turn each run once. Every thread that appeared
meanwhile (the workers, CTranslate2's replica thread, onnxruntime's) and every thread that spent
CPU on the inference must carry the loop's nice + `[performance] inference_nice`; the test's own
(main) thread, which stands for the event loop, must keep its priority.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from mediaserver.app import MediaServer
from mediaserver.engine_loading import load_ai_engines, load_tts
from mediaserver.kernel.speech import SpeechSynthesizer
from mediaserver.pipeline.engine_process import EngineProcess
from mediaserver.pipeline.inference_threads import MAX_NICE, executor_nices, main_thread_nice, thread_nices
from mediaserver.settings import load_settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's"),
]

NICE = 7  # not the default, so the setting is what is tested


def _cpu_ticks() -> dict[int, int]:
    """utime + stime of every thread, in clock ticks (fields 14 and 15 of /proc/.../stat)."""
    ticks: dict[int, int] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks[int(task.name)] = int(fields[11]) + int(fields[12])
    return ticks


def test_every_inference_thread_runs_below_the_loop() -> None:
    settings = load_settings(overrides={"performance.inference_nice": NICE, "performance.inference_process": False})
    loop_nice = main_thread_nice()
    expected = min(MAX_NICE, loop_nice + NICE)
    before = set(thread_nices())
    server = MediaServer(settings)
    blocking = server.blocking
    try:
        tts = blocking.submit(load_tts, settings).result()
        engines = blocking.submit(load_ai_engines, settings, SpeechSynthesizer(tts, blocking), blocking).result()
        assert engines.detector is not None and engines.detector_executor is not None
        speech = np.concatenate([chunk.pcm for chunk in tts.synthesize("Please check my order status.")])
        ticks = _cpu_ticks()
        for _ in range(3):  # enough CPU for every busy thread to show in its tick count
            blocking.submit(engines.asr.transcribe, speech[::2].copy()).result()  # ~16 kHz from 22.05: fine here
            blocking.submit(lambda: list(tts.synthesize("One moment please."))).result()
            engines.detector_executor.submit(engines.detector.probability, speech[::2].copy()).result()
        spent = {tid for tid, n in _cpu_ticks().items() if n > ticks.get(tid, 0)}
        nices = thread_nices()
        new = {tid: nice for tid, (_name, nice) in nices.items() if tid not in before}
        main = nices[os.getpid()][1]

        assert len(new) >= 3, new  # 2 engine workers or 1 + CTranslate2's, and the turn detector's
        assert set(new.values()) == {expected}, new
        # ... and on SCHED_IDLE ([performance] inference_sched_idle, on by default), engine threads too
        assert {os.sched_getscheduler(tid) for tid in new} == {os.SCHED_IDLE}, new
        assert all(nices[tid][1] == expected for tid in spent - {os.getpid()} if tid in nices), (spent, nices, before)
        assert spent & set(new), "no new thread did the inference"
        assert main == loop_nice  # the loop's thread keeps its priority
        assert set(executor_nices(blocking)) == {expected}
        detector_worker = engines.detector_executor
        assert isinstance(detector_worker, ThreadPoolExecutor)
        assert set(executor_nices(detector_worker)) == {expected}
        detector_worker.shutdown(wait=True)
    finally:
        blocking.shutdown(wait=True)


def test_with_inference_in_worker_processes_every_worker_thread_runs_below_the_loop() -> None:
    """[performance] inference_process: Whisper, Piper and smart-turn each in a worker process
    whose every thread carries the loop's nice + inference_nice, answering."""
    settings = load_settings(overrides={"performance.inference_nice": NICE, "performance.inference_process": True})
    expected = min(MAX_NICE, main_thread_nice() + NICE)
    server = MediaServer(settings)
    blocking = server.blocking
    try:
        tts = blocking.submit(load_tts, settings).result()
        engines = blocking.submit(load_ai_engines, settings, SpeechSynthesizer(tts, blocking), blocking).result()
        workers = [getattr(engine, "worker", None) for engine in (tts, engines.asr, engines.detector)]
        assert all(isinstance(w, EngineProcess) for w in workers), workers
        speech = np.concatenate([chunk.pcm for chunk in tts.synthesize("Please check my order status.")])
        assert "order" in engines.asr.transcribe(speech[::2].copy()).text.lower()
        assert engines.detector is not None and 0.0 <= engines.detector.probability(speech[::2].copy()) <= 1.0
        pids = {w.pid for w in workers if isinstance(w, EngineProcess)}
        assert len(pids) == 3 and os.getpid() not in pids
        for pid in pids:
            nices = {int(task.name): _nice(task) for task in Path(f"/proc/{pid}/task").iterdir()}
            assert set(nices.values()) == {expected}, (pid, nices)
        assert main_thread_nice() == expected - NICE or expected == MAX_NICE
    finally:
        for worker in workers:
            if isinstance(worker, EngineProcess):
                worker.close()
        blocking.shutdown(wait=True)


def _nice(task: Path) -> int:
    return int((task / "stat").read_text().rpartition(")")[2].split()[16])
