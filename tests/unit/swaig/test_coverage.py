"""The params and actions tables of the closing note cover the schema and the applier exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mediaserver.swaig.actions import ACTIONS
from mediaserver.swaig.coverage import ACTION_STATUS, PARAMS

signalwire = pytest.importorskip("signalwire")


def test_every_schema_param_is_classified() -> None:
    schema = json.loads((Path(signalwire.__file__).parent / "schema.json").read_text())
    keys = set((schema.get("$defs") or schema["definitions"])["AIParams"]["properties"])
    assert len(keys) == 92
    assert set(PARAMS) == keys
    assert {status for status, _ in PARAMS.values()} == {"honoured", "accepted-ignored"}


def test_every_action_has_a_status() -> None:
    assert set(ACTION_STATUS) - {"<unknown>"} == set(ACTIONS)
