"""The history ops' pure parts: replace_in_history on a conversation, and what a move queues."""

from __future__ import annotations

from typing import Any

import pytest

from mediaserver.kernel.agent import Conversation
from mediaserver.swaig.contexts import ContextEngine
from mediaserver.swaig.history_ops import ResetHistory, StepEntered, replace_pair, replacement_of
from mediaserver.swaig.step_flow import StepFlow


def call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}


def conversation() -> Conversation:
    return Conversation(
        "c",
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [call("a"), call("b")]},
            {"role": "tool", "tool_call_id": "a", "content": "A"},
            {"role": "tool", "tool_call_id": "b", "content": "B"},
        ],
    )


def test_replace_pair_keeps_the_other_call_of_the_same_message_and_reports_every_change() -> None:
    history = conversation()
    seen: list[str] = []
    history.subscribe(lambda event: seen.append(event.kind))
    assert replace_pair(history, "a", True)
    assert history[1]["tool_calls"] == [call("b")] and [m.get("tool_call_id") for m in history[2:]] == ["b"]
    assert replace_pair(history, "b", "Looked it up.")
    assert list(history) == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Looked it up."}]
    assert seen == ["removed", "updated", "removed", "updated"]
    assert not replace_pair(history, "zz", True)


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ([{"replace_in_history": True}, {"set_global_data": {}}], True),
        ({"replace_in_history": "Welcome!"}, "Welcome!"),
        ([{"replace_in_history": False}], None),
        ([{"replace_in_history": "true"}], True),
        ([{"say": "x"}], None),
    ],
)
def test_replacement_of_reads_the_action_list(actions: Any, expected: bool | str | None) -> None:
    assert replacement_of(actions) == expected


def test_a_context_move_queues_the_step_left_then_its_entry_parameters() -> None:
    contexts = {
        "default": {"steps": [{"name": "a", "text": "A.", "reset": {"user_prompt": "hello"}}], "valid_contexts": ["b"]},
        "b": {
            "steps": [{"name": "b1", "text": "B.", "history": "hide"}],
            "full_reset": True,
            "system_prompt": "New base.",
            "isolated": True,
        },
    }
    engine = ContextEngine(contexts)
    flow = StepFlow(engine)
    assert flow.move("change_context", lambda: engine.go_context("b")) == "b"
    ops = flow.take_ops()
    assert isinstance(ops[0], StepEntered) and (ops[0].left, ops[0].mode) == ("a", "hide")
    assert "A." in ops[0].left_block
    assert ops[1] == ResetHistory(wipe=True, user_prompt="hello")  # the system prompt replaces the base
    assert flow.system_prompt("Old base.").startswith("New base.\n\n## Instructions")
    assert flow.take_ops() == []
