"""The session-side actions in every shape the SDK (and contract §5) writes them, through a fake AiControl."""

from __future__ import annotations

from typing import Any

import pytest

from mediaserver.swaig.actions import apply_actions
from tests.unit.swaig.fakes import FakeControl

FunctionResult = pytest.importorskip("signalwire.core.function_result").FunctionResult


def test_sdk_helpers_reach_their_control_methods() -> None:
    result = (
        FunctionResult("ok")
        .wait_for_user(timeout=30)
        .wait_for_user(answer_first=True)
        .wait_for_user(False)
        .play_background_file("music.wav")
        .play_background_file("announce.mp3", wait=True)
        .stop_background_file()
        .add_dynamic_hints(["Cabby", {"pattern": "cab bee", "replace": "Cabby", "ignore_case": True}])
        .clear_dynamic_hints()
        .change_voice("piper.en_US-amy-medium")
        .enable_functions_on_timeout(True)
        .enable_extensive_data(True)
        .add_action("back_to_back_functions", "forever")
        .add_action("user_event", {"event": {"type": "cards_dealt", "score": 21}})
    )
    control = FakeControl()
    report = apply_actions(result.to_dict()["action"], control, {})
    assert control.calls == [
        ("wait_for_user", 30),
        ("wait_for_user", True),
        ("wait_for_user", False),
        ("play_background", ("music.wav", False)),
        ("play_background", ("announce.mp3", True)),
        ("stop_background", None),
        ("add_hints", ["Cabby", {"pattern": "cab bee", "replace": "Cabby", "ignore_case": True}]),
        ("clear_hints", None),
        ("change_voice", "piper.en_US-amy-medium"),
        ("update_settings", {"functions_on_speaker_timeout": True}),
        ("update_settings", {"extensive_data": True}),
        ("update_settings", {"back_to_back_functions": "forever"}),
        ("user_event", {"type": "cards_dealt", "score": 21}),
    ]
    assert not report.ignored


def test_hold_passes_hold_music_and_routes_timeout_step_when_it_ends() -> None:
    result = FunctionResult().hold("Tell the caller you are checking.", 120, timeout_step="take_a_message")
    control = FakeControl()
    reply = result.to_dict()
    assert reply["post_process"] is True
    apply_actions(reply["action"], control, {"hold_music": "https://example.com/hold.mp3"})
    assert control.calls == [("hold", 120)] and control.hold_music == "https://example.com/hold.mp3"
    assert control.hold_end is not None
    control.hold_end("timeout")
    assert control.calls[-1] == ("change_step", "take_a_message")


@pytest.mark.parametrize(
    "action",
    [
        {"playback_bg": {"wait": True}},
        {"playback_bg": ""},
        {"change_voice": 3},
        {"change_voice": " "},
        {"add_dynamic_hints": [3]},
    ],
)
def test_malformed_session_actions_are_skipped(action: dict[str, Any]) -> None:
    control = FakeControl()
    report = apply_actions([action, {"say": "after"}], control, {})
    assert control.calls == [("say", "after")] and report.ignored == list(action)


def test_post_process_defers_the_whole_list_until_the_reply_was_spoken() -> None:
    control = FakeControl()
    report = apply_actions([{"say": "later"}, {"hangup": True}], control, {}, post_process=True)
    assert report.deferred and not report.applied and control.calls == [("defer", None)]
    control.spoken()
    assert control.names() == ["defer", "say", "hangup"]


def test_post_process_false_string_applies_at_once() -> None:
    control = FakeControl()
    report = apply_actions([{"say": "now"}], control, {}, post_process="false")
    assert not report.deferred and control.calls == [("say", "now")]
