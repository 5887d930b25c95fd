"""Engines in a worker process: inference that shares no GIL and no crash with the event loop.

Theory of operation
-------------------
Niced inference threads (inference_threads.py) keep the CPU for the event loop, but not the GIL:
an inference thread at nice 19 that holds the GIL and is preempted by the OS keeps the loop
waiting until it runs again. `[performance] inference_process` moves each engine into a child
process instead, which has its own GIL, and a native crash there (onnxruntime, CTranslate2)
fails one call instead of the server. Measured at 12 AI conversations on the 2-core box
(`python -m benchmarks.capacity ai --levels 12 --repeats 1`, alternating runs): while the loop
still lost the CPU to inference threads, the media ticker's late frames were the same either way
(220 / 275 with threads, 221 / 302 with processes). Once the loop ran on SCHED_FIFO and the LLM
request stopped costing a millisecond on the loop (e91b618), the GIL was what remained: late
frames 6 / 3 with threads against 1 / 1 / 0 / 4 with processes, the loop thread blocking on the
GIL several times inside one tick (voluntary context switches counted per callback). The server
process's own CPU falls from 97 % to 27 % of a core. It stays off by default: three processes
each hold their model (memory) and start the server seconds later.

The child (`multiprocessing` "spawn": no copy of the parent's threads or sockets) is started by
a thread at the loop's nice + `nice`, so that it and every thread it makes inherit that nice. It
builds the engine from its factory ("package.module:function", given the options) and serves
`lanes` pipes, one thread per lane, so that as many calls run at once as the parent's executor
has workers (ASR: `[asr] workers`; the engine's model is thread-safe, as it is in process). A
call takes a free lane, sends `(method, args, kwargs)` and reads `("ok", value)`, or
`("item", value)` ... `("end", None)` for a generator (TTS streams each sentence as it is
ready), or `("error", exception)`. An abandoned generator drains its lane to the end before
the lane is reused. A child that dies makes the call raise `EngineProcessDied` (the session
speaks its recovery phrase) and the next call starts a new child.

The proxies (`RemoteRecognizer`, `RemoteLanguageRecognizer`, `RemoteTts`, `RemoteDetector`)
implement the engine Protocols, so sessions, the synthesizer and the turn checks use them
unchanged, from the executor threads that called the engines before. Blocking, like the engines.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from mediaserver.audio.frame import Pcm
from mediaserver.pipeline.asr import Recognition
from mediaserver.pipeline.tts import TtsChunk

__all__ = [
    "EngineProcess",
    "EngineSpec",
    "EngineProcessDied",
    "RemoteDetector",
    "RemoteLanguageRecognizer",
    "RemoteRecognizer",
    "RemoteTts",
    "load_named",
    "named_spec",
    "remote_recognizer",
]

log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0  # a model load on a busy box


class EngineProcessDied(RuntimeError):
    """The worker process ended (killed, crashed) during a call; the next call starts a new one."""


@dataclass(frozen=True)
class EngineSpec:
    """What the child builds: `factory` ("package.module:function") applied to `options`."""

    factory: str
    options: Any
    nice: int = 0
    lanes: int = 1
    name: str = "engine"
    idle: bool = False  # SCHED_IDLE too ([performance] inference_sched_idle), inherited like the nice


def load_named(row: tuple[str, str, Any]) -> Any:
    """The factory of an `ENGINES` row, (kind, name, options); a multilingual Whisper is wrapped
    as in process (whisper_languages.py), so the proxy hears a language per pass too."""
    from mediaserver.pipeline.engines import load_engine

    kind, name, options = row
    engine: Any = load_engine(kind, name, options)  # type: ignore[call-overload]  # kind checked by the table
    if kind == "asr":
        from mediaserver.pipeline.engines.whisper_languages import multilingual

        engine = multilingual(engine)
    return engine


def named_spec(kind: str, name: str, options: Any, *, nice: int, lanes: int, idle: bool = False) -> EngineSpec:
    """The spec of engine `name` of `kind` (the `ENGINES` table) in a worker."""
    row = (kind, name, options)
    return EngineSpec(f"{__name__}:load_named", row, nice=nice, lanes=lanes, name=f"{kind}-{name}", idle=idle)


def _build(spec: EngineSpec) -> Any:
    from mediaserver.pipeline.engines import import_factory

    return import_factory(spec.factory)(spec.options)


def _describe(engine: Any) -> dict[str, Any]:
    """The engine's attributes the parent's proxy answers without a round trip."""
    info: dict[str, Any] = {"pid": os.getpid(), "nice": os.getpriority(os.PRIO_PROCESS, 0)}
    for name in ("sample_rate", "voice_id"):
        if hasattr(engine, name):
            info[name] = getattr(engine, name)
    info["languages"] = hasattr(engine, "transcribe_language")
    return info


def _serve(spec: EngineSpec, conns: list[Connection]) -> None:
    """The child's main: nice, build, report, then one thread per lane until the parent goes."""
    # Already at its nice: started by a thread at that nice, every thread here inherits it.
    from mediaserver.pipeline.inference_threads import single_threaded_blas

    single_threaded_blas()  # BLAS products stay on the lane that asks (as in process)
    try:
        engine = _build(spec)
    except BaseException as exc:
        conns[0].send(("error", RuntimeError(f"{spec.factory}: {exc!r}")))
        return
    conns[0].send(("ready", _describe(engine)))
    threads = [threading.Thread(target=_lane, args=(engine, c), daemon=True) for c in conns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _lane(engine: Any, conn: Connection) -> None:
    while True:
        try:
            method, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return  # the parent went away
        try:
            if method == "probability_timed":  # the detector's CPU time is this thread's, here
                before = time.thread_time()
                value = engine.probability(*args, **kwargs)
                conn.send(("ok", (value, time.thread_time() - before)))
                continue
            result = getattr(engine, method)(*args, **kwargs)
            if method == "synthesize":
                for item in result:
                    conn.send(("item", item))
                conn.send(("end", None))
            else:
                conn.send(("ok", result))
        except Exception as exc:
            conn.send(("error", _picklable(exc)))


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.dumps(exc)
        return exc
    except Exception:
        return RuntimeError(repr(exc))


def _start_niced(process: multiprocessing.process.BaseProcess, nice: int, idle: bool) -> None:
    from mediaserver.pipeline.inference_threads import lower_thread_priority

    lower_thread_priority(nice, idle)
    process.start()


class EngineProcess:
    """One engine in a child process, called through `lanes` pipes (blocking, thread-safe)."""

    def __init__(self, spec: EngineSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._lanes: queue.Queue[Connection] = queue.Queue()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._generation = 0
        self._closed = False
        self.info: dict[str, Any] = {}
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        pairs = [ctx.Pipe() for _ in range(self.spec.lanes)]
        process = ctx.Process(
            target=_serve, args=(self.spec, [child for _, child in pairs]), name=self.spec.name, daemon=True
        )
        # Started from a thread at the loop's nice + `nice`: a new process and all its threads
        # inherit the nice of the thread that made them (the child's imports start threads
        # before any code of ours could nice it).
        starter = threading.Thread(
            target=_start_niced, args=(process, self.spec.nice, self.spec.idle), name=f"{self.spec.name}-start"
        )
        starter.start()
        starter.join()
        for _, child in pairs:
            child.close()  # the child holds its ends: a dead child reads as EOF here
        first = pairs[0][0]
        if not first.poll(START_TIMEOUT_S):
            process.kill()
            raise EngineProcessDied(f"{self.spec.name}: the worker did not start in {START_TIMEOUT_S:.0f} s")
        try:
            kind, value = first.recv()
        except (EOFError, OSError) as exc:
            raise EngineProcessDied(f"{self.spec.name}: the worker died while loading") from exc
        if kind == "error":
            process.join(5)
            raise value
        self.info = value
        self._process = process
        self._generation += 1
        self._lanes = queue.Queue()
        for parent, _ in pairs:
            self._lanes.put(parent)
        log.info(
            "engine worker started",
            extra={"engine": self.spec.name, "pid": value["pid"], "nice": value["nice"], "lanes": self.spec.lanes},
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _take(self) -> tuple[Connection, int]:
        with self._lock:
            if self._closed:
                raise EngineProcessDied(f"{self.spec.name}: closed")
            if self._process is None or not self._process.is_alive():
                if self._generation:
                    log.warning("engine worker gone: starting a new one", extra={"engine": self.spec.name})
                self._start()
            lanes, generation = self._lanes, self._generation
        return lanes.get(), generation

    def _lost(self, generation: int) -> None:
        """A lane read EOF: that worker is gone (or going); the next call starts a new one."""
        with self._lock:
            if generation == self._generation and self._process is not None:
                self._process.kill()
                self._process.join(5)
                self._process = None

    def _give(self, conn: Connection, generation: int) -> None:
        if generation == self._generation:
            self._lanes.put(conn)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        conn, generation = self._take()
        try:
            conn.send((method, args, kwargs))
            kind, value = conn.recv()
        except (EOFError, OSError) as exc:
            self._lost(generation)
            raise EngineProcessDied(f"{self.spec.name}: the worker ended during {method}") from exc
        self._give(conn, generation)
        if kind == "error":
            raise value
        return value

    def stream(self, method: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        conn, generation = self._take()
        ended = False
        try:
            conn.send((method, args, kwargs))
            while True:
                kind, value = conn.recv()
                if kind == "item":
                    yield value
                    continue
                ended = True
                if kind == "error":
                    raise value
                return
        except (EOFError, OSError) as exc:
            self._lost(generation)
            generation = -1  # a broken lane is never reused
            raise EngineProcessDied(f"{self.spec.name}: the worker ended during {method}") from exc
        finally:
            if generation >= 0:
                try:
                    while not ended:  # abandoned: the rest of this answer is read and dropped
                        ended = conn.recv()[0] != "item"
                except (EOFError, OSError):
                    generation = -1
                if generation >= 0:
                    self._give(conn, generation)

    def close(self) -> None:
        self._closed = True
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.join(5)


class RemoteRecognizer:
    """`SpeechRecognizer` in a worker process."""

    def __init__(self, worker: EngineProcess) -> None:
        self.worker = worker
        self.sample_rate: int = worker.info.get("sample_rate", 16000)

    def transcribe(self, pcm: Pcm, *, prompt: str | None = None, hotwords: str | None = None) -> Recognition:
        result: Recognition = self.worker.call("transcribe", pcm, prompt=prompt, hotwords=hotwords)
        return result


class RemoteLanguageRecognizer(RemoteRecognizer):
    """A multilingual recognizer in a worker process (agents/ai/languages.py `LanguageRecognizer`)."""

    def transcribe_language(
        self, pcm: Pcm, *, language: str | None, hotwords: str | None = None
    ) -> tuple[Recognition, str]:
        result: tuple[Recognition, str] = self.worker.call(
            "transcribe_language", pcm, language=language, hotwords=hotwords
        )
        return result


def remote_recognizer(worker: EngineProcess) -> RemoteRecognizer:
    """The proxy that matches what the child built (a multilingual one hears a language per pass)."""
    return RemoteLanguageRecognizer(worker) if worker.info.get("languages") else RemoteRecognizer(worker)


class RemoteTts:
    """`TtsEngine` in a worker process: each sentence's chunk comes as soon as it is synthesized."""

    def __init__(self, worker: EngineProcess) -> None:
        self.worker = worker
        self.sample_rate: int = worker.info["sample_rate"]
        self._voice_id: str = worker.info.get("voice_id", worker.spec.factory)

    @property
    def voice_id(self) -> str:
        return self._voice_id

    def synthesize(self, text: str) -> Iterator[TtsChunk]:
        return self.worker.stream("synthesize", text)


class RemoteDetector:
    """`EndOfTurnDetector` in a worker process; `probability_timed` adds the CPU it took there."""

    def __init__(self, worker: EngineProcess) -> None:
        self.worker = worker

    def probability(self, pcm: Pcm) -> float:
        return float(self.probability_timed(pcm)[0])

    def probability_timed(self, pcm: Pcm) -> tuple[float, float]:
        probability, cpu_s = self.worker.call("probability_timed", pcm)
        return float(probability), float(cpu_s)
