"""Inference worker threads that run below the event loop's scheduling priority.

Theory of operation: on 2 cores, Whisper, Piper and smart-turn threads compete with the event
loop for the CPU, and every 20 ms media tick the loop loses is a late frame (issue 16). Linux
keeps a nice value per thread (`setpriority(PRIO_PROCESS, tid, …)` names one thread, not the
process), and the scheduler weighs a thread at nice 10 about 9x and one at 19 about 68x lighter
than one at 0, so a loop thread that wakes for its tick runs soon while the inference threads
take what is left (the loop needs little CPU, so inference loses almost nothing). Measured with
three busy inference threads on 2 cores (benchmarks/inference_priority.py), nice 19 brought the
ticker's median lateness near that of no inference at all where nice 10 only halved it; that is
the default ([performance] inference_nice).

`inference_executor` builds a `ThreadPoolExecutor` whose `initializer` lowers each worker's
priority to the main thread's nice plus `nice` (capped at 19). The engines' own threads are
covered by inheritance: a new Linux thread starts with the nice of the thread that created it,
so every engine is loaded inside such a worker (engine_loading.py: `load_tts`, `load_ai_engines`), and the
threads CTranslate2 (its replica worker) and onnxruntime (intra-op pools when threads > 1)
spawn while loading are niced too. With one intra-op thread onnxruntime runs on the calling
(niced) worker itself. One pool escapes inheritance: numpy's OpenBLAS starts its worker threads
when numpy is first imported, by the main thread, at the loop's priority, and Whisper's mel
filterbank is a matrix product that OpenBLAS would hand them. `single_threaded_blas` keeps every
BLAS call on its calling thread instead (the products here are small; a pool buys nothing).
`thread_nices` reads every thread's nice from /proc so tests and the startup log can check that
this held.

Nice alone leaves the loop waiting: measured in the server at 12 AI conversations, its thread
spent ~5 % of the wall clock on a run queue and was preempted ~330 times a second (schedstat),
since the kernel's EEVDF scheduler still gives a niced thread a full time slice once its turn
comes. `idle_policy` ([performance] inference_sched_idle, on by default) also moves the workers
to SCHED_IDLE, which a waking normal thread preempts at once: the ticker's late frames at 12
conversations went from 178-291 to 42-117 (`python -m benchmarks.capacity ai --levels 12`,
alternating runs). `favour_the_loop` ([performance] loop_realtime_priority, gil_switch_ms)
goes further where the process may: the loop thread on SCHED_FIFO preempts every normal
thread, the load generator of a benchmark or an LLM server on the same box included (15-20
late frames), and a 1 ms GIL switch interval shortens its waits for the GIL (4-8).

Raising a nice value needs no privilege; lowering it back does, so a worker never tries. Where
the OS has no per-thread priority (not Linux), the workers run at the loop's priority and
`lower_thread_priority` says so once in the log.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = [
    "MAX_NICE",
    "executor_nices",
    "favour_the_loop",
    "inference_executor",
    "lower_thread_priority",
    "main_thread_nice",
    "single_threaded_blas",
    "thread_nices",
]

log = logging.getLogger(__name__)

MAX_NICE = 19  # the lowest priority Linux allows
_NICE_FIELD = 16  # field 19 of /proc/<pid>/task/<tid>/stat, counted after the ")" of the name
_warned = False


def main_thread_nice() -> int:
    """The process's main thread's nice (on Linux the pid names the main thread)."""
    return os.getpriority(os.PRIO_PROCESS, os.getpid())


def lower_thread_priority(nice: int, idle_policy: bool = False) -> int:
    """Run the calling thread at the main thread's nice + `nice` (at most 19); returns its nice.

    Never raises the thread's priority: a thread already lower (inherited from a niced creator)
    stays where it is. `idle_policy` also moves it to SCHED_IDLE, which any normal thread that
    wakes preempts at once (nice only weighs the shares), inherited by the threads it creates.
    """
    global _warned
    tid = threading.get_native_id()
    if idle_policy:
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError) as error:
            log.warning("inference threads keep the normal scheduling policy: %s", error)
    if nice <= 0:
        return os.getpriority(os.PRIO_PROCESS, 0)
    try:
        target = min(MAX_NICE, main_thread_nice() + nice)
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if target > current:
            os.setpriority(os.PRIO_PROCESS, tid, target)
        return os.getpriority(os.PRIO_PROCESS, tid)
    except (AttributeError, OSError) as error:  # no per-thread priority here: run at the loop's
        if not _warned:
            _warned = True
            log.warning("inference threads keep the event loop's priority: %s", error)
        return 0


def favour_the_loop(realtime_priority: int, switch_ms: float) -> tuple[str, Callable[[], None]]:
    """Run on the event loop's thread: put it on SCHED_FIFO at `realtime_priority` (1-99; 0 leaves
    its policy) and set the GIL switch interval to `switch_ms`. Returns the policy it runs with
    (for the startup log) and an undo, for a server stopped inside a longer-lived process (tests).

    SCHED_FIFO needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least the priority (Docker:
    `ulimits: rtprio`); without either the loop stays on the normal policy, said in the log.
    SCHED_RESET_ON_FORK: a thread the loop starts (every executor's workers are started lazily,
    from the loop) begins on the normal policy at nice 0, so only this thread is real-time. A
    shorter switch interval bounds how long the loop waits for the GIL when a worker thread's
    Python holds it (the default is 5 ms, a quarter of a frame).
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(switch_ms / 1000.0)
    policy = "normal"
    restore: Callable[[], None] = lambda: None  # noqa: E731 - the undo of "nothing changed"
    if realtime_priority > 0:
        try:
            before, params = os.sched_getscheduler(0), os.sched_getparam(0)
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(realtime_priority))
            policy = f"fifo {realtime_priority}"
            restore = lambda: os.sched_setscheduler(0, before, params)  # noqa: E731
        except (AttributeError, OSError) as error:  # no privilege, or not Linux
            log.warning("the event loop keeps the normal scheduling policy: %s", error)

    def undo() -> None:
        sys.setswitchinterval(interval)
        with contextlib.suppress(OSError):
            restore()

    return policy, undo


# OpenBLAS's thread-count setter under the names numpy's and scipy's builds and plain OpenBLAS give it.
_BLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")


def single_threaded_blas() -> list[str]:
    """Make every OpenBLAS loaded in this process run BLAS on the calling thread; returns the libraries."""
    import numpy  # noqa: F401 - loads numpy's OpenBLAS, whose pool is the one to stop using

    done: list[str] = []
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux
        return done
    libraries = sorted({line.split()[-1] for line in maps.splitlines() if "openblas" in line.rsplit("/", 1)[-1]})
    for library in libraries:
        handle = ctypes.CDLL(library)
        for name in _BLAS_SETTERS:
            setter = getattr(handle, name, None)
            if setter is not None:
                setter(ctypes.c_int(1))
                done.append(Path(library).name)
                break
    return done


def inference_executor(
    max_workers: int, thread_name_prefix: str, nice: int, *, idle_policy: bool = False
) -> ThreadPoolExecutor:
    """A thread pool whose workers run `nice` steps below the main thread (0: at its priority)."""
    return ThreadPoolExecutor(
        max_workers=max_workers,
        thread_name_prefix=thread_name_prefix,
        initializer=lower_thread_priority,
        initargs=(nice, idle_policy),
    )


def thread_nices() -> dict[int, tuple[str, int]]:
    """Every thread of this process: native id -> (name, nice), read from /proc (Linux only)."""
    found: dict[int, tuple[str, int]] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended while we looked
            continue
        name, _, rest = stat.partition(" (")[2].rpartition(")")
        found[int(task.name)] = (name, int(rest.split()[_NICE_FIELD]))
    return found


def executor_nices(executor: ThreadPoolExecutor) -> list[int]:
    """The nice of each worker `executor` has started so far (for the startup log and tests)."""
    nices = thread_nices()
    workers = [t.native_id for t in list(executor._threads)]  # noqa: SLF001 - the stdlib keeps no public list
    return [nices[tid][1] for tid in workers if tid is not None and tid in nices]
