"""Function sets (tools offered to the LLM), native functions, guards and the path expander."""

from __future__ import annotations

from typing import Any

import pytest

from mediaserver.swaig.functions import FunctionSet
from mediaserver.swaig.guards import ToolGuards, Verdict
from mediaserver.swaig.natives import NativeEnv, run_native
from mediaserver.swaig.prompt import render_prompt
from mediaserver.swaig.templates import expand, expand_json
from tests.unit.swaig.fakes import FakeControl


def test_function_set_aliases_hooks_reserved_and_toggles() -> None:
    fs = FunctionSet.from_swaig(
        {
            "defaults": {"web_hook_url": "https://agent/swaig"},
            "functions": [
                {"function": "legacy", "purpose": "old style", "argument": {"properties": {"a": {"type": "string"}}}},
                {"function": "off", "description": "starts inactive", "active": "false"},
                {"function": "next_step", "description": "clashes with the engine"},
                {"function": "hangup_hook", "description": "Internal"},
                {"description": "no name"},
                {"function": "dm", "description": "d", "data_map": {"output": {"response": "x"}}},
            ],
            "native_functions": ["wait_seconds"],
        }
    )
    tools = fs.definitions()
    assert [t["function"]["name"] for t in tools] == ["legacy", "dm", "wait_seconds"]
    assert tools[0]["function"] == {
        "name": "legacy",
        "description": "old style",
        "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
    }
    assert fs.functions["legacy"].kind == "webhook" and fs.functions["legacy"].url == "https://agent/swaig"
    assert fs.functions["dm"].kind == "datamap" and "hangup_hook" in fs.hooks
    assert any("reserved" in w for w in fs.warnings) and any("needs a `function` name" in w for w in fs.warnings)
    assert fs.toggle("off", True) and not fs.toggle("ghost", True)
    assert fs.active_names({"off", "dm"}) == ["off", "dm"]


def test_fillers_by_language_and_skip() -> None:
    fs = FunctionSet.from_swaig(
        {
            "functions": [
                {"function": "a", "description": "", "fillers": {"en-US": ["One moment"], "default": ["Hmm"]}},
                {"function": "b", "description": "", "fillers": {"default": ["Hmm"]}, "skip_fillers": True},
            ]
        }
    )
    assert fs.fillers_for("a", "en-US") == ["One moment"]
    assert fs.fillers_for("a", "fr-FR") == ["Hmm"]
    # schema: skip_fillers drops the language-level fillers; "only function-specific fillers … will play"
    assert fs.fillers_for("b", "en-US") == ["Hmm"] and fs.functions["b"].raw["skip_fillers"] is True


async def test_natives() -> None:
    control = FakeControl()
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    env = NativeEnv(now_s=1_700_000_000.0, local_tz="Europe/Paris", sleep=sleep)
    assert await run_native("check_time", {}, control, env) == (
        "The current time is 11:13 PM on Tuesday, November 14, 2023 (CET)."
    )
    assert await run_native("wait_seconds", {"seconds": 5000}, control, env) == "Waited 300 seconds."
    assert slept == [300]
    assert "needs a number" in await run_native("wait_seconds", {"seconds": "soon"}, control, env)
    await run_native("wait_for_user", {}, control, env)
    await run_native("adjust_response_latency", {"latency": 50}, control, env)
    assert control.calls == [
        ("wait_for_user", True),
        ("update_settings", {"end_of_speech_timeout": 250}),
    ]


def test_guard_total_cap() -> None:
    guards = ToolGuards()
    verdicts = [guards.check("f", f'{{"i": {i}}}', ["f"]).verdict for i in range(5)]
    assert verdicts == [Verdict.RUN] * 4 + [Verdict.BAIL]
    guards.begin_turn()
    assert guards.check("f", "{}", ["f"]).verdict is Verdict.RUN


def test_guard_phantoms_bail_on_third() -> None:
    guards = ToolGuards()
    verdicts = [guards.check("ghost", "{}", ["f"]).verdict for _ in range(3)]
    assert verdicts == [Verdict.PHANTOM, Verdict.PHANTOM, Verdict.BAIL]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${args.price}", "72.500000"),
        ("${ARGS.City}", "São Paulo"),
        ("${enc:args.city}", "S%C3%A3o%20Paulo"),
        ("${lc:args.city}", "são paulo"),  # ASCII-only lowercasing, as C tolower()
        ("${args.list[-1]}", "c"),
        ("${args.list[3]}", ""),
        ("${meta.${lc:args.key}}", "found"),
        ("${fmt_ph:args.phone}", "(202) 555-0123"),
        ("cost ${args.price", "cost ${args.price"),
        ("${}x", "x"),
    ],
)
def test_path_expander(template: str, expected: str) -> None:
    data: dict[str, Any] = {
        "args": {"price": 72.5, "city": "São Paulo", "list": ["a", "b", "c"], "key": "K", "phone": "+1 202 555 0123"},
        "meta": {"k": "found"},
    }
    assert expand(template, data) == expected


def test_expand_json_escapes_and_rejects_objects_in_strings() -> None:
    data = {"q": 'say "hi"\\', "obj": {"a": 1}}
    assert expand_json({"response": "${q}"}, data) == {"response": 'say "hi"\\'}
    assert expand_json({"response": "x ${obj}"}, data).__class__.__name__ == "_Missing"


def test_render_prompt_forms() -> None:
    pom = [{"title": "Role", "body": "Helper", "bullets": ["a"]}]
    assert render_prompt({"text": "plain"}) == "plain"
    assert render_prompt({"pom": pom}) == "## Role\n\nHelper\n\n- a\n"
    assert render_prompt({"pom": pom}, "xml").startswith('<?xml version="1.0" encoding="UTF-8"?>\n<prompt>')
    assert render_prompt(None) == ""
