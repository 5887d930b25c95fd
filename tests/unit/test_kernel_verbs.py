"""The kernel's verbs are found by discovery (kernel/verbs/registry.py): one module per verb,
every declaring module found, no name declared twice, the interpreter and executor fed from it."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import mediaserver.kernel.verbs as verbs_package
from mediaserver.kernel.executor import HANDLERS
from mediaserver.kernel.verbs import registry
from mediaserver.kernel.verbs.context import KernelVerb
from mediaserver.kernel.verbs.tap import StopTap, Tap
from mediaserver.swml.builders import BUILDERS
from mediaserver.swml.document import document_from_data
from mediaserver.swml.effects import Unsupported
from mediaserver.swml.errors import SwmlError
from mediaserver.swml.interpreter import Interpreter


def _declaring_modules() -> set[str]:
    """Modules of the package that assign VERB or VERBS at top level, read from the source."""
    found = set()
    for path in Path(verbs_package.__file__).parent.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if any(isinstance(t, ast.Name) and t.id in ("VERB", "VERBS") for t in targets):
                found.add(f"mediaserver.kernel.verbs.{path.stem}")
    return found


def test_every_module_that_declares_a_verb_is_discovered() -> None:
    declaring = _declaring_modules()
    assert set(registry.verb_modules()) == declaring
    assert {"mediaserver.kernel.verbs.tap", "mediaserver.kernel.verbs.denoise"} <= declaring


def test_names_are_unique_schema_verbs_and_moved_verbs_left_swml() -> None:
    names = [verb.name for verb in registry.kernel_verbs()]
    assert len(names) == len(set(names))
    assert {"user_event", "denoise", "stop_denoise", "detect_machine", "tap", "stop_tap"} <= set(names)
    assert not set(names) & set(BUILDERS)  # a verb lives in one place: its kernel module
    for verb in registry.kernel_verbs():
        assert dataclasses.is_dataclass(verb.effect) and "path" in {f.name for f in dataclasses.fields(verb.effect)}
        assert HANDLERS[verb.effect] is verb.handle  # the executor's table derives from the declarations


def test_two_modules_declaring_one_name_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    first = registry.kernel_verbs()[0]
    twice = {"pkg.a": (first,), "pkg.b": (KernelVerb(first.name, Tap, first.build, first.handle),)}
    monkeypatch.setattr(registry, "verb_modules", lambda: twice)
    with pytest.raises(ValueError, match=f"{first.name!r} is declared twice: pkg.a and pkg.b"):
        registry.kernel_verbs.__wrapped__()
    monkeypatch.setattr(
        registry, "verb_modules", lambda: {"pkg.c": (KernelVerb("goto", Tap, first.build, first.handle),)}
    )
    with pytest.raises(ValueError, match="'goto' is not a schema verb the kernel can execute"):
        registry.kernel_verbs.__wrapped__()


def test_the_interpreter_takes_kernel_builders_and_stays_pure_without_them() -> None:
    doc = document_from_data(
        {"sections": {"main": [{"tap": {"uri": "rtp://127.0.0.1:${vars.port}", "rtp_ptime": 40}}, "stop_tap"]}}
    )
    interp = Interpreter(doc, {"port": 4000}, builders=registry.kernel_builders())
    assert interp.start() == Tap(path="sections.main[0]", uri="rtp://127.0.0.1:4000", ptime_ms=40)
    assert interp.resume(None) == StopTap(path="sections.main[1]")
    assert isinstance(Interpreter(doc).start(), Unsupported)  # swml alone knows nothing of the kernel
    with pytest.raises(ValueError, match="control verbs cannot have effect builders: goto"):
        Interpreter(doc, builders={"goto": BUILDERS["answer"]})


def test_a_bad_tap_ptime_is_a_document_error_with_its_path() -> None:
    doc = document_from_data({"sections": {"main": [{"tap": {"uri": "rtp://h:1", "rtp_ptime": 30}}]}})
    with pytest.raises(SwmlError, match=r"sections.main\[0\].tap.rtp_ptime: expected a multiple of 20 ms"):
        Interpreter(doc, builders=registry.kernel_builders()).start()
