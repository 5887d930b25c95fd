"""Loads deploy/kamailio/render.py (a script, not a package module) for tests that render its config."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

RENDER = Path(__file__).resolve().parents[2] / "deploy" / "kamailio" / "render.py"


def load_render() -> Any:
    spec = importlib.util.spec_from_file_location("kamailio_render", RENDER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
