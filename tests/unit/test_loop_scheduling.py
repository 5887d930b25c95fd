"""The event loop's thread ahead of everything else, the inference threads behind it (issue 16)."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mediaserver.pipeline.inference_threads import favour_the_loop, inference_executor

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux scheduling policies")


def _in_a_fresh_thread(work: Callable[[], Any]) -> Any:
    """Run `work` on a new thread (what it does to its scheduling stays there) and return its result."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(work()))
    thread.start()
    thread.join()
    return out[0]


def _may_run_realtime() -> bool:
    limit = resource.getrlimit(resource.RLIMIT_RTPRIO)[0]
    return os.geteuid() == 0 or limit == resource.RLIM_INFINITY or limit >= 5


def test_the_loop_thread_goes_fifo_its_new_threads_do_not_and_undo_puts_both_back() -> None:
    def work() -> tuple[str, int, int, float, int, float]:
        policy, undo = favour_the_loop(5, 1.0)
        mine, interval = os.sched_getscheduler(0), sys.getswitchinterval()
        child = _in_a_fresh_thread(lambda: os.sched_getscheduler(0))
        undo()
        return policy, mine, child, interval, os.sched_getscheduler(0), sys.getswitchinterval()

    before = sys.getswitchinterval()
    policy, during, child, interval, after, interval_after = _in_a_fresh_thread(work)
    assert interval == pytest.approx(0.001) and interval_after == before
    assert after == os.SCHED_OTHER
    assert child == os.SCHED_OTHER  # SCHED_RESET_ON_FORK: the executors' workers are not real-time
    if _may_run_realtime():
        assert policy == "fifo 5" and during & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO
    else:
        assert policy == "normal" and during == os.SCHED_OTHER


_UNPRIVILEGED = """
import logging, os, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
from mediaserver.pipeline.inference_threads import favour_the_loop
policy, undo = favour_the_loop(5, 5.0)
print(policy, os.sched_getscheduler(0) == os.SCHED_OTHER)
"""


def test_without_the_privilege_the_loop_stays_normal_and_says_so() -> None:
    command = [sys.executable, "-c", _UNPRIVILEGED]
    if os.geteuid() == 0:  # root keeps its uid but loses CAP_SYS_NICE (util-linux's setpriv)
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is not installed")
        command = ["setpriv", "--bounding-set", "-sys_nice", "--inh-caps", "-sys_nice", *command]
    done = subprocess.run(
        command,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0)),  # noqa: PLW1509
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stderr
    assert "keeps the normal scheduling policy" in done.stdout
    assert done.stdout.strip().endswith("normal True"), done.stdout


def test_idle_policy_workers_run_on_sched_idle_at_their_nice() -> None:
    pool = inference_executor(1, "idle-test", 3, idle_policy=True)
    try:
        policy, nice = pool.submit(lambda: (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))).result()
    finally:
        pool.shutdown(wait=True)
    assert policy == os.SCHED_IDLE
    assert nice >= 3
