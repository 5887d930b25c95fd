"""Webhook client, request bodies and the runner against a scriptable local agent."""

from __future__ import annotations

import base64
import json
import typing
from typing import Any

import aiohttp
import pytest

from mediaserver.swaig.client import post_json, split_userinfo
from mediaserver.swaig.gateway import SwaigToolRunner
from mediaserver.swaig.hooks import STARTUP_PLACEHOLDER, run_hangup_hook, run_startup_hook
from mediaserver.swaig.post_prompt import deliver_summary
from mediaserver.swaig.request import find_json_objects, post_prompt_body, swaig_request
from mediaserver.swaig.seam import CallInfo, ToolInvocation
from tests.unit.swaig.agent_server import FakeAgent
from tests.unit.swaig.fakes import FakeControl

swaig_models = pytest.importorskip("signalwire.core.swaig_request_generated")
post_models = pytest.importorskip("signalwire.core.post_prompt_generated")
validator = pytest.importorskip("signalwire.core.security.webhook_validator")

CALL = CallInfo(
    call_id="call-42",
    ai_session_id="sess-1",
    caller_id_name="Ada",
    caller_id_num="+15551230000",
    project_id="p",
    space_id="s",
    call={"call_id": "call-42"},
    vars={"a": 1, "b": 2},
)


def _check_typed(body: dict[str, Any], model: Any, allowed_extra: set[str]) -> None:
    """Every key is a field of the SDK's model (or a known extra) with a value of its type."""
    hints = typing.get_type_hints(model)
    for key, value in body.items():
        if key in allowed_extra:
            continue
        assert key in hints, f"{key} is not a field of {model.__name__}"
        hint = hints[key]
        origin = typing.get_origin(hint)
        if origin is typing.Literal:
            assert value in typing.get_args(hint), (key, value)
        elif typing.is_typeddict(hint):
            assert isinstance(value, dict), key
            _check_typed(value, hint, set())
        else:
            expected = origin or hint
            if expected is float:
                expected = (int, float)
            assert isinstance(value, expected), (key, value, hint)


def test_swaig_request_matches_the_sdk_model() -> None:
    fn = {
        "function": "lookup",
        "description": "Look up",
        "meta_data_token": "grp",
        "parameters": {"type": "object", "properties": {"x": {"type": "string"}}},
    }
    body = swaig_request(
        fn,
        '{"x":"1"}',
        {"x": "1"},
        call=CALL,
        params={"swaig_post_conversation": True, "swaig_post_swml_vars": ["a"]},
        global_data={"g": 1},
        meta_data={"m": 2},
        call_log=[{"role": "user", "content": "hi"}],
    )
    _check_typed(body, swaig_models.SwaigRequest, {"purpose", "SWMLVars", "SWMLCall"})
    assert body["argument"] == {"parsed": [{"x": "1"}], "raw": '{"x":"1"}', "substituted": ""}
    assert body["call_id"] == "call-42" and body["meta_data_token"] == "grp" and body["call_log"]
    assert body["SWMLVars"] == {"a": 1} and body["SWMLCall"] == {"call_id": "call-42"}
    plain = swaig_request(fn, "{}", {}, call=CALL, params={}, global_data={}, call_log=[{"x": 1}])
    assert "call_log" not in plain and "SWMLVars" not in plain


def test_post_prompt_body_matches_the_sdk_model() -> None:
    body = post_prompt_body(
        'Summary: {"name": "Ada", "ok": true} done',
        call=CALL,
        params={"app_name": "x"},
        global_data={"g": 1},
        call_log=[],
        swaig_log=[],
        times_us={"ai_start_date": 1, "ai_end_date": 2},
    )
    _check_typed(body, post_models.PostPrompt, set())
    assert body["post_prompt_data"]["parsed"] == [{"name": "Ada", "ok": True}]
    assert body["caller_id_number"] == "+15551230000" and body["action"] == "post_conversation"
    assert find_json_objects("no json here") == [] and find_json_objects('{"a": 1}') == [{"a": 1}]


def test_userinfo_split_keeps_the_query() -> None:
    url, auth = split_userinfo("http://u%40x:p%3Aw@host:3000/agent/swaig/?__token=abc%3D%3D&z=1")
    assert url == "http://host:3000/agent/swaig/?__token=abc%3D%3D&z=1"
    assert auth == "Basic " + base64.b64encode(b"u@x:p:w").decode()


async def test_post_auth_token_and_signature() -> None:
    agent = FakeAgent()
    async with agent.running(), aiohttp.ClientSession() as http:
        url = agent.url("/swaig/?__token=abc%3D%3D", "user:pass")
        reply = await post_json(http, url, {"function": "f"}, signing_key="key-1")
        assert reply.ok and reply.data == {"response": "ok"}
        seen = agent.seen[0]
        assert seen.query == {"__token": "abc=="}
        assert seen.headers["Authorization"] == "Basic " + base64.b64encode(b"user:pass").decode()
        public_url = agent.url("/swaig/?__token=abc%3D%3D")
        assert validator.validate_webhook_signature(
            "key-1", seen.headers["X-SignalWire-Signature"], public_url, seen.text
        )
        assert validator.validate_webhook_signature_sha256(
            "key-1", seen.headers["X-SignalWire-Sha256-Signature"], public_url, seen.text
        )


@pytest.mark.parametrize(
    ("script", "error", "attempts"),
    [
        ([500, 500], "HTTP 500", 2),  # 5xx retried once
        ([500, {"response": "second time lucky"}], "", 2),
        ([404], "HTTP 404", 1),  # 4xx not retried
        (["<html>oops</html>"], "reply is not JSON", 1),
        ([""], "empty reply", 1),
        ([0.5], "timeout after 0.2 s", 2),  # timed out twice
        ([0.5, {"response": "late"}], "", 2),  # the retry answers
    ],
)
async def test_bad_replies_become_clean_failures(script: list[Any], error: str, attempts: int) -> None:
    agent = FakeAgent()
    agent.replies["/swaig"] = script
    async with agent.running(), aiohttp.ClientSession() as http:
        reply = await post_json(http, agent.url("/swaig"), {}, timeout_s=0.2)
    assert reply.ok is (error == "")
    assert reply.error.startswith(error)
    assert len(agent.seen) == attempts


async def test_refused_connection_is_a_clean_failure() -> None:
    async with aiohttp.ClientSession() as http:
        reply = await post_json(http, "http://127.0.0.1:9/x", {}, timeout_s=2)
    assert not reply.ok and reply.error.startswith("request failed")


def _ai(agent: FakeAgent, **extra: Any) -> dict[str, Any]:
    return {
        "prompt": {"text": "hi"},
        "params": extra.pop("params", {}),
        "global_data": {"tier": "gold"},
        "SWAIG": {
            "defaults": {"web_hook_url": agent.url("/default", "d:pw")},
            "functions": [
                {
                    "function": "own",
                    "description": "has its own URL",
                    "web_hook_url": agent.url("/own?__token=t1"),
                    "meta_data_token": "grp",
                    "meta_data": {"base": 1},
                },
                {"function": "shared", "description": "uses defaults", "meta_data_token": "grp"},
                {
                    "function": "dm",
                    "description": "datamap",
                    "data_map": {
                        "expressions": [
                            {
                                "string": "${args.x}",
                                "pattern": "^y",
                                "output": {
                                    "response": "yes ${global_data.tier} ${meta_data.base}",
                                    "action": [{"set_global_data": {"dm": "${args.x}"}}],
                                },
                            }
                        ]
                    },
                    "meta_data": {"base": 7},
                },
                {"function": "startup_hook", "description": "Internal", "web_hook_url": agent.url("/hook")},
                {"function": "hangup_hook", "description": "Internal", "web_hook_url": agent.url("/hook")},
            ],
            "native_functions": ["check_time", "bogus"],
            **extra,
        },
    }


async def test_runner_dispatch_precedence_meta_scope_and_actions() -> None:
    agent = FakeAgent()
    agent.replies["/own"] = [
        {
            "response": "own ${global_data.tier}",
            "action": [{"set_meta_data": {"k": "v"}}, {"set_global_data": {"x": 1}}],
        }
    ]
    agent.replies["/default"] = [{"response": {"tool_result": "R", "tool_prompt": "P"}}]
    async with agent.running(), aiohttp.ClientSession() as http:
        runner = SwaigToolRunner(_ai(agent), CALL, http=http, now_s=lambda: 0.0)
        names = [t["function"]["name"] for t in runner.tool_definitions()]
        assert names == ["own", "shared", "dm", "check_time"]  # hooks hidden, unknown native dropped
        control = FakeControl({"tier": "gold"})
        out = await runner.invoke(ToolInvocation("1", "own", '{"q": 1}'), control)
        assert out.response == "own gold" and control.global_data()["x"] == 1
        out = await runner.invoke(ToolInvocation("2", "shared", "{}"), control)
        assert out.response == "R\nP"
        own, shared = agent.seen
        assert own.path == "/own" and own.query == {"__token": "t1"} and "Authorization" not in own.headers
        assert shared.path == "/default" and shared.headers["Authorization"].startswith("Basic ")
        # the same meta_data_token scope: `shared` sees what `own` set
        assert own.json["meta_data"] == {"base": 1} and shared.json["meta_data"] == {"k": "v"}
        assert shared.json["global_data"]["x"] == 1
        out = await runner.invoke(ToolInvocation("3", "dm", '{"x": "yes"}'), control)
        assert out.response == "yes gold 7" and control.global_data()["dm"] == "yes"
        out = await runner.invoke(ToolInvocation("4", "check_time", "{}"), control)
        assert out.response is not None and "1969" in out.response  # epoch 0 in US/Central


async def test_runner_turns_failures_into_spoken_recovery() -> None:
    agent = FakeAgent()
    agent.replies["/own"] = ["not json"]
    async with agent.running(), aiohttp.ClientSession() as http:
        runner = SwaigToolRunner(_ai(agent), CALL, http=http)
        control = FakeControl()
        out = await runner.invoke(ToolInvocation("1", "own", "{}"), control)
        assert out.response is not None and "failed (reply is not JSON" in out.response
        assert "apolog" in out.response or "could not complete" in out.response
        out = await runner.invoke(ToolInvocation("2", "shared", "{not json"), control)
        assert out.response is not None and "not valid JSON" in out.response
    runner = SwaigToolRunner({"SWAIG": {"functions": [{"function": "nourl", "description": "x"}]}}, CALL)
    out = await runner.invoke(ToolInvocation("1", "nourl", "{}"), FakeControl())
    assert out.response is not None and "no URL is configured" in out.response


async def test_guards_duplicate_phantom_and_loop() -> None:
    agent = FakeAgent()
    async with agent.running(), aiohttp.ClientSession() as http:
        runner = SwaigToolRunner(_ai(agent), CALL, http=http)
        control = FakeControl()
        first = await runner.invoke(ToolInvocation("1", "own", '{"a": 1, "b": 2}'), control)
        dup = await runner.invoke(ToolInvocation("2", "own", '{"b": 2, "a": 1}'), control)
        assert first.response == "ok" and dup.response is not None and dup.response.startswith("DUPLICATE")
        assert len(agent.seen) == 1  # the repeat never reached the webhook
        third = await runner.invoke(ToolInvocation("3", "own", '{"a":1,"b":2}'), control)
        assert runner.bailed == "tool_loop" and third.response is not None and "already looked up" in third.response
        runner.begin_turn()
        ghost = await runner.invoke(ToolInvocation("4", "web_search", "{}"), control)
        assert ghost.response is not None and "'web_search' is not a valid tool. Available tools: own, shared" in (
            ghost.response
        )


async def test_hooks_startup_actions_and_hangup_call_log() -> None:
    agent = FakeAgent()
    agent.replies["/hook"] = [
        {"response": "Caller is a VIP.", "action": [{"set_global_data": {"vip": True}}]},
        {"response": ""},
        {},
    ]
    async with agent.running(), aiohttp.ClientSession() as http:
        runner = SwaigToolRunner(
            _ai(agent, params={"swaig_post_conversation": True}),
            CALL,
            http=http,
            call_log=lambda: [{"role": "user", "content": "bye"}],
        )
        control = FakeControl()
        assert await run_startup_hook(runner, control)
        assert control.calls == [("set_global_data", {"vip": True}), ("add_system_message", "Caller is a VIP.")]
        control2 = FakeControl()
        assert await run_startup_hook(runner, control2)
        assert control2.calls == [("add_system_message", STARTUP_PLACEHOLDER)]
        assert await run_hangup_hook(runner, {"vip": True})
        start, _, end = agent.seen
        assert start.json["function"] == "startup_hook" and end.json["function"] == "hangup_hook"
        assert end.json["call_log"] == [{"role": "user", "content": "bye"}] and end.json["global_data"] == {"vip": True}


async def test_summary_delivery_body_and_failure() -> None:
    agent = FakeAgent()
    agent.replies["/post_prompt/"] = [{"success": True}, 500]
    async with agent.running(), aiohttp.ClientSession() as http:
        url = agent.url("/post_prompt/?__token=pp", "u:p")
        reply = await deliver_summary(
            http,
            url,
            '{"done": true}',
            call=CALL,
            params={},
            global_data={"g": 1},
            call_log=[{"role": "assistant", "content": "bye"}],
        )
        assert reply.ok
        body = agent.seen[0].json
        assert agent.seen[0].query == {"__token": "pp"}
        assert body["post_prompt_data"] == {
            "raw": '{"done": true}',
            "parsed": [{"done": True}],
            "substituted": '{"done": true}',
        }
        assert body["call_id"] == "call-42" and body["global_data"] == {"g": 1}
        failed = await deliver_summary(http, url, "x", call=CALL, params={}, global_data={}, call_log=[])
        assert not failed.ok and failed.error == "HTTP 500"
    assert json.dumps(body)  # serialisable as sent


async def test_includes_get_signature_adds_functions() -> None:
    agent = FakeAgent()
    agent.replies["/inc"] = [
        [
            {"function": "remote_a", "description": "A", "parameters": {"type": "object"}},
            {"function": "remote_b", "description": "B"},
        ]
    ]
    async with agent.running(), aiohttp.ClientSession() as http:
        include = {"url": agent.url("/inc", "u:p"), "functions": ["remote_a"], "meta_data": {"k": 1}}
        ai = {
            "SWAIG": {
                "includes": [include, {"url": "http://127.0.0.1:9/unreachable", "functions": ["x"]}, {"nourl": 1}]
            }
        }
        runner = SwaigToolRunner(ai, CALL, http=http)
        assert await runner.load_includes() == 1
        assert agent.seen[0].json == {"action": "get_signature", "functions": ["remote_a"], "meta_data": {"k": 1}}
        assert [t["function"]["name"] for t in runner.tool_definitions()] == ["remote_a"]
        assert runner.functions.functions["remote_a"].url == agent.url("/inc", "u:p")


async def test_runner_start_and_finish_lifecycle() -> None:
    agent = FakeAgent()
    agent.replies["/hook"] = [{"response": "Started."}, {}]
    async with agent.running(), aiohttp.ClientSession() as http:
        ai = _ai(agent)
        ai["post_prompt_url"] = agent.url("/post_prompt/?__token=pp")
        runner = SwaigToolRunner(ai, CALL, http=http)
        control = FakeControl()
        await runner.start(control)
        assert control.calls == [("add_system_message", "Started.")]
        await runner.finish({"g": 1}, summary="All good.", history=[{"role": "user", "content": "hi"}])
        paths = [seen.path for seen in agent.seen]
        assert paths == ["/hook", "/hook", "/post_prompt/"]
        post = agent.seen[2].json
        assert post["post_prompt_data"]["raw"] == "All good." and post["call_log"][0]["content"] == "hi"


async def test_guards_reset_when_the_caller_speaks_without_begin_turn() -> None:
    """A session exposing `history` gets per-turn guards even if it never calls begin_turn()."""
    agent = FakeAgent()
    async with agent.running(), aiohttp.ClientSession() as http:
        runner = SwaigToolRunner(_ai(agent), CALL, http=http)
        control = FakeControl()
        control.history = [{"role": "user", "content": "hi"}]  # type: ignore[attr-defined]
        for n in range(4):
            assert (await runner.invoke(ToolInvocation(str(n), "own", f'{{"n": {n}}}'), control)).response == "ok"
        capped = await runner.invoke(ToolInvocation("5", "own", '{"n": 5}'), control)
        assert capped.response is not None and "already looked up" in capped.response
        control.history.append({"role": "user", "content": "and again?"})  # type: ignore[attr-defined]
        assert (await runner.invoke(ToolInvocation("6", "own", '{"n": 6}'), control)).response == "ok"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ({"response": 42}, "42"),
        ({"action": [{"say": "hi"}]}, "Action completed."),
        ({"error": "bad input", "function": "own"}, "Error: bad input"),
        ([{"response": "a list"}], "failed (its reply was a list, not an object)"),
        ({"response": "x", "action": "hangup"}, "x"),  # an action that is not an object is skipped
        ({"response": "${global_data.missing}!"}, "!"),
    ],
)
async def test_wrong_types_in_replies(reply: Any, expected: str) -> None:
    agent = FakeAgent()
    agent.replies["/own"] = [reply]
    async with agent.running(), aiohttp.ClientSession() as http:
        runner = SwaigToolRunner(_ai(agent), CALL, http=http)
        control = FakeControl()
        out = await runner.invoke(ToolInvocation("1", "own", "{}"), control)
    assert out.response is not None and expected in out.response
    assert "hangup" not in control.names()
