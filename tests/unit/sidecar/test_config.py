"""ai_sidecar body validation: the spec's error texts, field-named errors, prompt forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mediaserver.agents.sidecar.config import (
    FRAMING,
    SidecarConfig,
    SidecarConfigError,
    prompt_variables,
    system_prompt,
)

BASE: dict[str, Any] = {"prompt": "Coach the agent.", "lang": "en-US"}


def error(body: dict[str, Any]) -> str:
    with pytest.raises(SidecarConfigError) as info:
        SidecarConfig.from_body(body)
    return str(info.value)


def test_defaults() -> None:
    config = SidecarConfig.from_body(BASE)
    p = config.params
    assert (p.idle_timeout_ms, p.min_interval_ms, p.max_iters_per_tick, p.max_history_tokens) == (200, 0, 5, 8000)
    assert p.act_on_channel is True and p.final_summary is False and p.speech_engine == "deepgram"
    assert config.model == "gpt-4o-mini" and config.customer_role == "remote-caller"
    assert config.direction == ("remote-caller", "local-caller") and config.agent_role == "local-caller"
    assert config.permissions == {"swaig_allow_swml": True, "swaig_allow_settings": True, "swaig_set_global_data": True}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt": "x"}, "lang is required"),
        ({"lang": "en-US"}, "prompt is required"),
        ({**BASE, "direction": ["remote-caller"]}, "sidecar requires both legs (remote-caller and local-caller)"),
        (
            {**BASE, "direction": ["remote-caller", "me"]},
            "direction: expected a list of remote-caller and local-caller, got ['remote-caller', 'me']",
        ),
        ({**BASE, "customer_role": "agent"}, "customer_role: expected remote-caller or local-caller, got 'agent'"),
        ({**BASE, "params": {"idle_timeout_ms": 10}}, "idle_timeout_ms: 10 is outside 50..5000"),
        ({**BASE, "params": {"max_iters_per_tick": 21}}, "max_iters_per_tick: 21 is outside 1..20"),
        ({**BASE, "params": {"max_history_tokens": "lots"}}, "max_history_tokens: expected an integer, got 'lots'"),
        ({**BASE, "params": {"min_interval_ms": 1.5}}, "min_interval_ms: expected an integer, got 1.5"),
        ({**BASE, "params": {"act_on_channel": "maybe"}}, "act_on_channel: expected true or false, got 'maybe'"),
        (
            {**BASE, "params": {"speech_engine": "whisper"}},
            "speech_engine: expected one of deepgram, google, got 'whisper'",
        ),
        ({**BASE, "idle_timeout_ms": 300}, "idle_timeout_ms: tunables belong in params, not at the top level"),
        (
            {**BASE, "voice": "x"},
            "voice: unknown field (allowed: SWAIG, action, customer_role, direction, global_data, "
            "hints, lang, model, params, permissions, prompt, url)",
        ),
        ({**BASE, "url": "ftp://x"}, "url: expected an http:// or https:// URL, got 'ftp://x'"),
        (
            {**BASE, "permissions": {"swaig_allow_swml": "nope"}},
            "permissions.swaig_allow_swml: expected true or false, got 'nope'",
        ),
        (
            {**BASE, "SWAIG": {"functions": [{"function": "sidecar_skip"}]}},
            "SWAIG.functions[0].function: sidecar_skip is reserved (it is built in)",
        ),
        (
            {
                **BASE,
                "SWAIG": {
                    "functions": [
                        {
                            "function": "f",
                            "parameters": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}},
                        }
                    ]
                },
            },
            "SWAIG.functions[0].parameters.properties.n.minimum: not allowed in a SWAIG parameter (allowed: type, "
            "description, enum, default); put the constraint in the description",
        ),
        (
            {**BASE, "prompt": {"sections": [{"title": "Goal"}]}},
            "prompt.sections[0]: a section needs a body, bullets or subsections",
        ),
    ],
)
def test_bad_bodies_are_refused_with_the_field_named(body: dict[str, Any], message: str) -> None:
    got = error(body)
    if "prompt.sections" in message:
        assert got.startswith("prompt.sections[0]")
    else:
        assert got == message


def test_unknown_param_names_the_known_ones() -> None:
    assert error({**BASE, "params": {"idle_timeout": 200}}).startswith("idle_timeout: unknown parameter (known: ")


def test_number_strings_and_bool_strings_are_accepted() -> None:
    config = SidecarConfig.from_body(
        {
            **BASE,
            "params": {
                "idle_timeout_ms": "800",
                "min_interval_ms": "1000.0",
                "act_on_channel": "false",
                "final_summary": 1,
            },
        }
    )
    assert config.params.idle_timeout_ms == 800 and config.params.min_interval_ms == 1000
    assert config.params.act_on_channel is False and config.params.final_summary is True


def test_not_an_object_is_invalid_json_config() -> None:
    assert error([1, 2]) == "Invalid JSON config"  # type: ignore[arg-type]


def variables(config: SidecarConfig) -> dict[str, Any]:
    return prompt_variables(
        config,
        {"company": "Initech", "deal": {"mrr": 500}},
        call_id="uuid-1",
        caller_id_number="+15550100",
        destination_number="+15550199",
        persistent={"lookups": ["ACME"]},
        local_tz="America/Chicago",
        now_unix_s=1_745_870_400,
    )


def test_string_prompt_gets_the_framing_and_expansion() -> None:
    config = SidecarConfig.from_body(
        {
            **BASE,
            "prompt": "Coach for ${global_data.company} (${global_data.deal.mrr}); "
            "caller ${caller_id_number} -> ${destination_number}, "
            "${session_uuid}, ${customer_role}, "
            "${ai_agents_global_data.lookups[0]}, ${local_tz} "
            "${local_date}",
        }
    )
    text = system_prompt(config, variables(config))
    assert text.startswith(FRAMING)
    assert text.endswith(
        "Coach for Initech (500); caller +15550100 -> +15550199, uuid-1, remote-caller, ACME, "
        "America/Chicago Monday, April 28, 2025"
    )


def test_pom_prompt_renders_sections() -> None:
    config = SidecarConfig.from_body(
        {
            **BASE,
            "prompt": {
                "sections": [
                    {"title": "Personality", "body": "Real-time sales copilot."},
                    {"title": "Instructions", "bullets": ["Watch for buying signals.", "Call lookup_competitor."]},
                ]
            },
        }
    )
    text = system_prompt(config, variables(config))
    assert text.endswith(
        "## Personality\n\nReal-time sales copilot.\n\n## Instructions\n\n"
        "- Watch for buying signals.\n- Call lookup_competitor.\n"
    )


def test_file_prompt_is_read_and_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "sales.md"
    path.write_text("Sell to ${global_data.company}.")
    config = SidecarConfig.from_body({**BASE, "prompt": {"file": str(path)}})
    assert system_prompt(config, variables(config)).endswith("Sell to Initech.")
    missing = SidecarConfig.from_body({**BASE, "prompt": {"file": str(tmp_path / "nope.md")}})
    with pytest.raises(SidecarConfigError, match=r"prompt.file: cannot read '.*nope.md'"):
        system_prompt(missing, variables(missing))
