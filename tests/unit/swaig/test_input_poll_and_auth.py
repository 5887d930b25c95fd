"""check_for_input replies and periods, basic auth written into webhook URLs: bad input never raises."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mediaserver.swaig.functions import FunctionSet, with_basic_auth
from mediaserver.swaig.input_poll import apply_input, poll_period_s
from tests.unit.swaig.fakes import FakeControl


@pytest.mark.parametrize(
    "params, seconds",
    [
        ({}, 2.0),
        ({"input_poll_freq": 500}, 1.0),
        ({"input_poll_freq": 20000}, 10.0),
        ({"input_poll_freq": "3000"}, 3.0),
    ],
)
def test_poll_period_is_clamped_to_the_schema_range(params: dict[str, Any], seconds: float) -> None:
    assert poll_period_s(params) == seconds


def test_a_period_that_is_not_a_number_falls_back_to_the_default() -> None:
    assert poll_period_s({"input_poll_freq": "soon"}) == 2.0


def test_poll_replies_feed_the_conversation_in_order_and_bad_parts_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    control = FakeControl()
    reply = {
        "new_input": True,
        "messages": [
            "first",
            {"role": "system", "content": "the caller texted a photo"},
            {"role": "user", "content": "second"},
            {"content": 42},
            "  ",
            None,
        ],
        "action": {"set_global_data": {"texted": True}},
    }
    assert apply_input(reply, control, {}, None, "call-1") == 4
    assert control.calls == [
        ("add_user_input", "first"),
        ("add_system_message", "the caller texted a photo"),
        ("add_user_input", "second"),
        ("set_global_data", {"texted": True}),
    ]
    quiet = FakeControl()
    assert apply_input({"new_input": False, "messages": ["not new"]}, quiet, {}, None) == 0 and not quiet.calls
    with caplog.at_level(logging.WARNING):
        assert apply_input(["not", "an", "object"], quiet, {}, None, "call-1") == 0
    assert "call call-1: check_for_input reply is a list" in caplog.text and not quiet.calls


def test_basic_auth_is_written_only_into_urls_without_userinfo() -> None:
    assert with_basic_auth("https://h:8443/s?__token=a", ("u s", "p@w")) == "https://u%20s:p%40w@h:8443/s?__token=a"
    assert with_basic_auth("https://me:pw@h/s", ("u", "p")) == "https://me:pw@h/s"
    assert with_basic_auth("https://h/s", None) == "https://h/s"
    assert with_basic_auth("", ("u", "p")) == ""


def test_hooks_get_the_defaults_auth_and_check_for_input_is_a_hook() -> None:
    fs = FunctionSet.from_swaig(
        {
            "defaults": {"web_hook_url": "http://h/swaig", "web_hook_auth_user": "u", "web_hook_auth_pass": "p"},
            "functions": [{"function": "check_for_input", "description": ""}, {"function": "x", "description": ""}],
        }
    )
    assert fs.hooks["check_for_input"].url == "http://u:p@h/swaig"
    assert "check_for_input" not in fs.functions and not fs.warnings
    assert [t["function"]["name"] for t in fs.definitions()] == ["x"]
