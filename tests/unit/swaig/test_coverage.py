"""The coverage tables tell the truth: every key classified once, every claim names a test that exists.

The old check (every key listed) could not catch a claim without evidence; these fail when an
"honoured" entry names a test function that is not in its file, when a "not-applicable" entry
has no reason, and when the committed `docs/swml-coverage.md` is not what the tables generate.
"""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path

import pytest

from mediaserver.swaig.actions import ACTIONS
from mediaserver.swaig.coverage import ACTION_STATUS, HONOURED, NOT_APPLICABLE, NOT_YET, PARAMS, STATUSES, Entry
from mediaserver.swaig.coverage_doc import DOC, render

signalwire = pytest.importorskip("signalwire")

ROOT = Path(__file__).resolve().parents[3]
TABLES = {"params": PARAMS, "actions": ACTION_STATUS}


@cache
def _tests_in(path: str) -> frozenset[str]:
    """`name` and `Class::name` for every test function of a file (methods included)."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef):
            found |= {
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            }
    return frozenset(found)


def test_exists_finds_functions_and_methods_and_rejects_the_rest() -> None:
    names = _tests_in("tests/unit/swaig/test_coverage.py")
    assert "test_exists_finds_functions_and_methods_and_rejects_the_rest" in names
    assert "_Probe::test_method" in names and "test_no_such_thing" not in names


class _Probe:  # not collected (no Test prefix): only here so the parser's method case is checked
    def test_method(self) -> None:
        pass


def test_every_schema_param_is_classified_exactly_once() -> None:
    schema = json.loads((Path(signalwire.__file__).parent / "schema.json").read_text())
    keys = set((schema.get("$defs") or schema["definitions"])["AIParams"]["properties"])
    assert len(keys) == 92
    assert set(PARAMS) == keys  # a dict: each key once
    assert all(isinstance(e, Entry) and e.status in STATUSES for e in PARAMS.values())


def test_every_action_has_an_entry() -> None:
    assert set(ACTION_STATUS) - {"<unknown>"} == set(ACTIONS)
    assert all(isinstance(e, Entry) and e.status in STATUSES for e in ACTION_STATUS.values())


@pytest.mark.parametrize("table", TABLES)
def test_every_honoured_entry_names_a_test_that_exists(table: str) -> None:
    missing = []
    for key, entry in TABLES[table].items():
        if entry.status != HONOURED:
            continue
        path, sep, name = entry.test.partition("::")
        if not (sep and name and path.startswith("tests/") and path.endswith(".py")):
            missing.append(f"{key}: {entry.test!r} is not tests/<file>.py::<test>")
        elif not (ROOT / path).is_file():
            missing.append(f"{key}: no file {path}")
        elif name not in _tests_in(path) or not name.rpartition("::")[2].startswith("test_"):
            missing.append(f"{key}: no test {name} in {path}")
        if not entry.where:
            missing.append(f"{key}: honoured but no module named")
    assert not missing, "\n".join(missing)


def test_not_applicable_entries_have_a_reason_and_are_few() -> None:
    na = {k: e for k, e in PARAMS.items() if e.status == NOT_APPLICABLE}
    assert all(len(e.test.split()) >= 4 and "\n" not in e.test for e in na.values()), na
    assert len(na) <= 12
    assert not [k for k, e in ACTION_STATUS.items() if e.status == NOT_APPLICABLE and not e.test]
    assert not [k for t in TABLES.values() for k, e in t.items() if e.status == NOT_YET and e.test]


def test_the_committed_doc_is_what_the_tables_generate() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "run: python -m mediaserver.swaig.coverage_doc"
    assert "docs/swml-coverage.md" in (ROOT / "README.md").read_text(encoding="utf-8")
