"""`mediaserver bench NAME`: run a benchmark runner from the source checkout's benchmarks/ folder.

The runners live beside the package, not inside it (they use tests/support for real peers and
synthesized speech), so this works from an editable install or a clone, and says so otherwise.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def runners(folder: Path) -> dict[str, str]:
    """Runner name -> first line of its docstring, for every module in `folder` with a `main()`."""
    found: dict[str, str] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if not any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
            continue
        doc = (ast.get_docstring(tree) or "").strip().splitlines()
        found[path.stem] = doc[0] if doc else ""
    return found


def run_bench(name: str | None, args: list[str], checkout: Path = CHECKOUT) -> int:
    folder = checkout / "benchmarks"
    if not folder.is_dir():
        print(
            f"mediaserver bench: no benchmarks/ folder beside {checkout / 'mediaserver'}: run it from a "
            "source checkout (pip install -e .)",
            file=sys.stderr,
        )
        return 2
    available = runners(folder)
    if not name:
        width = max(map(len, available), default=0)
        for runner, summary in available.items():
            print(f"{runner:<{width}}  {summary}")
        return 0
    if name not in available:
        print(f"mediaserver bench: no runner {name!r}; runners: {', '.join(available)}", file=sys.stderr)
        return 2
    # The checkout first on the path: its benchmarks/ and tests/ packages, as `python -m` from the root.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))}
    return subprocess.call([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=checkout, env=env)
