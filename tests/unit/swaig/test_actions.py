"""Actions built by the SDK's own FunctionResult helpers, applied in order through a fake AiControl."""

from __future__ import annotations

from typing import Any

import pytest

from mediaserver.swaig.actions import ACTIONS, apply_actions, parse_hold
from tests.unit.swaig.fakes import FakeControl

FunctionResult = pytest.importorskip("signalwire.core.function_result").FunctionResult


class FakeLocal:
    def __init__(self) -> None:
        self.toggled: list[tuple[str, bool]] = []
        self.meta: dict[str, Any] = {}

    def toggle(self, name: str, active: bool) -> bool:
        self.toggled.append((name, active))
        return name != "ghost"

    def meta_set(self, data: dict[str, Any]) -> None:
        self.meta.update(data)

    def meta_unset(self, keys: list[str] | None) -> None:
        if keys is None:
            self.meta.clear()
        for key in keys or []:
            self.meta.pop(key, None)

    def step_changed(self, name: str) -> str | None:
        return None if name == "nowhere" else name

    def context_changed(self, name: str) -> str | None:
        return name


def test_sdk_helpers_apply_in_order() -> None:
    result = (
        FunctionResult("ok")
        .update_global_data({"a": 1, "b": 2})
        .remove_global_data("a")
        .say("One moment")
        .hold(60)
        .toggle_functions([{"function": "f", "active": False}])
        .set_metadata({"m": 1})
        .swml_change_step("two")
        .swml_change_context("sales")
        .simulate_user_input("yes please")
        .update_settings({"temperature": 1.9, "top-p": 0.5})
        .set_end_of_speech_timeout(900)
        .hangup()
    )
    control, local = FakeControl(), FakeLocal()
    report = apply_actions(result.to_dict()["action"], control, {}, local)
    assert control.calls == [
        ("set_global_data", {"a": 1, "b": 2}),
        ("unset_global_data", ["a"]),
        ("say", "One moment"),
        ("hold", 60),
        ("toggle_functions", [{"function": "f", "active": False}]),
        ("change_step", "two"),
        ("change_context", "sales"),
        ("add_user_input", "yes please"),
        ("update_settings", {"temperature": 1.5, "top-p": 0.5}),  # clamped to 1.5
        ("update_settings", {"end_of_speech_timeout": 900}),
        ("hangup", "swaig"),
    ]
    assert control.global_data() == {"b": 2}
    assert local.meta == {"m": 1} and local.toggled == [("f", False)]
    assert report.ended and not report.ignored and not report.denied


def test_swml_actions_from_connect_and_send_sms() -> None:
    result = (
        FunctionResult("bye")
        .connect("+15551234567", final=True)
        .send_sms(to_number="+15550001111", from_number="+15550002222", body="hi")
    )
    control = FakeControl()
    report = apply_actions(result.to_dict()["action"], control, {})
    (doc1, transfer1), (doc2, transfer2) = [v for n, v in control.calls if n == "swml"]
    assert doc1["sections"]["main"] == [{"connect": {"to": "+15551234567"}}] and transfer1 is True
    assert "send_sms" in doc2["sections"]["main"][0] and transfer2 is False
    assert report.ended


def test_swml_as_json_text_and_transfer_string() -> None:
    control = FakeControl()
    apply_actions(
        [
            {"SWML": '{"version":"1.0.0","sections":{"main":[{"hangup":{}}]}}', "transfer": "false"},
            {"transfer": {"dest": "https://example.com/next", "summarize": True}},
        ],
        control,
        {},
    )
    assert control.calls[0] == ("swml", ({"version": "1.0.0", "sections": {"main": [{"hangup": {}}]}}, False))
    assert control.calls[1] == ("update_settings", {"transfer_summary": True})
    # summarize: the destination gets the AI's transfer summary as params.transfer_summary
    transfer = {"dest": "https://example.com/next", "params": {"transfer_summary": "${transfer_summary}"}}
    assert control.calls[2][1] == ({"version": "1.0.0", "sections": {"main": [{"transfer": transfer}]}}, True)


@pytest.mark.parametrize(
    ("flag", "action", "call"),
    [
        ("swaig_allow_swml", {"SWML": {"version": "1.0.0", "sections": {"main": []}}}, "swml"),
        ("swaig_allow_settings", {"settings": {"temperature": 0.2}}, "update_settings"),
        ("swaig_set_global_data", {"set_global_data": {"x": 1}}, "set_global_data"),
        ("swaig_set_global_data", {"unset_global_data": "x"}, "unset_global_data"),
    ],
)
def test_permission_flags_deny(flag: str, action: dict[str, Any], call: str) -> None:
    control = FakeControl({"x": 0})
    report = apply_actions([action, {"say": "still here"}], control, {flag: "false"})
    assert call not in control.names() and control.calls == [("say", "still here")]
    assert report.denied == [next(iter(action))]
    allowed = FakeControl({"x": 0})
    apply_actions([action], allowed, {flag: True})
    assert call in allowed.names()


def test_unknown_and_malformed_actions_are_skipped_not_fatal() -> None:
    control = FakeControl()
    report = apply_actions(
        [{"start_playback": "x.mp3"}, "junk", {"hold": "soon"}, {"say": 3}, {"SWML": "not json"}, {"say": "after"}],
        control,
        {},
    )
    assert control.calls == [("say", "after")]
    assert report.ignored == ["start_playback", "[1]", "hold", "say", "SWML"]
    assert report.applied == ["say"]


def test_single_action_object_and_none() -> None:
    control = FakeControl()
    apply_actions({"stop": True}, control, {})
    assert control.calls == [("stop", None)]
    assert apply_actions(None, control, {}).applied == []


def test_unset_global_data_object_replaces_everything() -> None:
    control = FakeControl({"a": 1, "b": 2})
    apply_actions([{"unset_global_data": {"c": 3}}], control, {})
    assert control.global_data() == {"c": 3}


def test_replace_in_history_and_refused_step() -> None:
    control, local = FakeControl(), FakeLocal()
    report = apply_actions([{"replace_in_history": "Looked it up."}, {"change_step": "nowhere"}], control, {}, local)
    assert report.replace_in_history == "Looked it up."
    assert "change_step" not in control.names()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(60, 60), ("5m", 300), ("90s", 90), ("1:30", 90), ({"timeout": 120}, 120), (5000, 300), (0, 300), ("2h", 300)],
)
def test_hold_durations(value: Any, seconds: int) -> None:
    assert parse_hold(value) == seconds


def test_every_seed_action_has_a_handler() -> None:
    seed = [
        "SWML",
        "hangup",
        "hold",
        "wait_for_user",
        "stop",
        "say",
        "playback_bg",
        "stop_playback_bg",
        "end_of_speech_timeout",
        "speech_event_timeout",
        "set_global_data",
        "unset_global_data",
        "set_meta_data",
        "unset_meta_data",
        "toggle_functions",
        "functions_on_speaker_timeout",
        "extensive_data",
        "settings",
        "context_switch",
        "user_input",
    ]
    contract = [
        "transfer",
        "change_step",
        "change_context",
        "back_to_back_functions",
        "replace_in_history",
        "add_dynamic_hints",
        "clear_dynamic_hints",
        "change_voice",
        "user_event",
    ]
    assert set(seed + contract) <= set(ACTIONS)
