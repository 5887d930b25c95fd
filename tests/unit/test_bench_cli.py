"""`mediaserver bench`: lists and runs the checkout's benchmark runners; progress bars on request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.progress import progress
from mediaserver.bench import run_bench, runners

REPO = Path(__file__).resolve().parents[2]


def test_runners_are_the_modules_with_a_main() -> None:
    found = runners(REPO / "benchmarks")
    assert {"turns", "latency", "capacity", "bargein", "denoise"} <= set(found)
    # Library modules (no main) are not runners.
    assert "stats" not in found and "progress" not in found
    assert found["turns"].startswith("Turn taking at the wire")


def test_bench_without_a_name_lists_runners(capsys) -> None:
    assert run_bench(None, []) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("turns ") for line in lines)


def test_unknown_runner_is_refused_with_the_list(capsys) -> None:
    assert run_bench("nosuch", []) == 2
    err = capsys.readouterr().err
    assert "no runner 'nosuch'" in err and "turns" in err


def test_bench_outside_a_checkout_says_so(tmp_path: Path, capsys) -> None:
    assert run_bench("turns", [], checkout=tmp_path) == 2
    assert "source checkout" in capsys.readouterr().err


def test_bench_runs_the_runner_with_its_arguments() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mediaserver", "bench", "report", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",  # not the checkout: the command finds it itself
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and "README" in done.stdout


def test_progress_forced_on_draws_on_stderr(monkeypatch, capsys) -> None:
    monkeypatch.setenv("MS_PROGRESS", "1")
    assert list(progress(range(3), desc="levels")) == [0, 1, 2]
    captured = capsys.readouterr()
    assert "levels" in captured.err and "3/3" in captured.err
    assert captured.out == ""


def test_progress_off_draws_nothing(monkeypatch, capsys) -> None:
    monkeypatch.setenv("MS_PROGRESS", "0")
    with progress(total=2, desc="calls") as bar:
        bar.update(2)
    assert capsys.readouterr().err == ""
