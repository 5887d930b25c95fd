"""SWAIG replies from an agent: `apply_actions` never raises for agent input and accounts for
every action (applied, denied or ignored); the tool runner turns any webhook or DataMap webhook
reply body (any status, any bytes, the SDK's `FunctionResult` shapes mutated) into a
`ToolOutcome` with text for the model, never an exception."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from mediaserver.swaig.actions import ActionReport, apply_actions
from mediaserver.swaig.gateway import SwaigToolRunner
from mediaserver.swaig.seam import CallInfo, ToolInvocation, ToolOutcome
from mediaserver.swaig.templates import _end_braces
from tests.fuzz.support import FIXTURES, JSON, budget, mutated_bytes, mutated_json
from tests.unit.swaig.fakes import FakeControl

# The reply shapes of the SDK's FunctionResult (to_dict()), one or more of each action.
REPLIES: list[dict[str, Any]] = [
    {"response": "The weather in Paris is sunny"},
    {
        "response": "Transferring you",
        "action": [
            {
                "SWML": {"version": "1.0.0", "sections": {"main": [{"connect": {"to": "+15551234567"}}]}},
                "transfer": "true",
            }
        ],
    },
    {"response": "Goodbye", "action": [{"hangup": True}]},
    {"response": "Please hold", "action": [{"hold": {"timeout": 120, "timeout_step": "billing"}}, {"hold": "5m"}]},
    {
        "response": "Saved",
        "action": [
            {"say": "One moment"},
            {"set_global_data": {"tier": "gold"}},
            {"unset_global_data": ["tier"]},
            {"set_meta_data": {"k": 1}},
            {"unset_meta_data": "k"},
        ],
    },
    {"response": "ok", "action": [{"toggle_functions": [{"function": "get_weather", "active": False}]}]},
    {"response": "ok", "action": [{"change_step": "billing"}, {"change_context": "sales"}]},
    {
        "response": "ok",
        "action": [
            {"context_switch": {"system_prompt": "You are a clerk", "user_prompt": "hi", "consolidate": True}},
            {
                "context_switch": {
                    "system_pom": [{"title": "T", "body": "b", "bullets": ["x", "y"]}],
                    "full_reset": True,
                }
            },
        ],
    },
    {
        "response": "ok",
        "action": [
            {"user_input": "hello"},
            {"wait_for_user": "answer_first"},
            {"wait_for_user": 30},
            {"playback_bg": {"file": "music.wav", "wait": True}},
            {"stop_playback_bg": True},
        ],
    },
    {
        "response": "ok",
        "action": [
            {"settings": {"temperature": 3, "top_p": 0.5}},
            {"end_of_speech_timeout": 800},
            {"speech_event_timeout": "1200"},
            {"functions_on_speaker_timeout": True},
            {"extensive_data": True},
            {"back_to_back_functions": "forever"},
        ],
    },
    {
        "response": "ok",
        "action": [
            {"add_dynamic_hints": ["Cabby", {"pattern": "cab bee", "replace": "Cabby", "ignore_case": True}]},
            {"clear_dynamic_hints": {}},
            {"change_voice": "piper.en_US-amy-medium"},
            {"user_event": {"event": {"type": "cards_dealt", "score": 21}}},
            {"replace_in_history": "summary"},
        ],
    },
    {"response": {"tool_result": "r", "tool_prompt": "p"}, "post_process": True, "action": [{"say": "later"}]},
    {"response": "ok", "action": [{"SWML": '{"sections": {"main": ["hangup"]}}'}, {"transfer": {"dest": "sip:a@b"}}]},
    {"error": "the lookup failed"},
]
ACTION_NAMES = sorted({name for reply in REPLIES for item in reply.get("action", []) for name in item})
KEYS = ["response", "action", "post_process", "error", *ACTION_NAMES]
PARAMS = st.dictionaries(
    st.sampled_from(["swaig_allow_swml", "swaig_allow_settings", "swaig_set_global_data", "transfer_summary"]),
    st.sampled_from([True, False, "false", "true", None, 0]),
    max_size=4,
) | st.sampled_from([{}, {"hold_music": "m.wav", "pom_format": "xml"}])


def check_report(actions: Any, report: ActionReport, post_process: bool) -> None:
    assert isinstance(report, ActionReport)
    if report.deferred or actions is None:
        return
    items = actions if isinstance(actions, list) else [actions]
    names = sum(
        len([k for k in item if not ("SWML" in item and k == "transfer")]) if isinstance(item, dict) else 1
        for item in items
    )
    assert len(report.applied) + len(report.denied) + len(report.ignored) == names  # every action accounted for


# Found by this fuzzer: SWML given as JSON text nested past the stack raised RecursionError.
@example(actions=[{"SWML": "[" * 100_000}], params={}, post_process=False)
# ... and JSON 1e999 (or Infinity) is a float inf, which int() refuses with OverflowError.
@example(actions=[{"wait_for_user": float("inf")}], params={}, post_process=False)
@budget(300)
@given(
    actions=st.one_of(
        st.sampled_from(REPLIES).flatmap(lambda reply: mutated_json(reply.get("action", []), KEYS)),
        st.lists(st.dictionaries(st.sampled_from(ACTION_NAMES) | st.text(max_size=6), JSON, max_size=3), max_size=4),
        JSON,
    ),
    params=PARAMS,
    post_process=st.sampled_from([False, True, "true", 0]),
)
def test_apply_actions_never_raises(actions: Any, params: dict[str, Any], post_process: Any) -> None:
    control = FakeControl({"tier": "gold"})
    report = apply_actions(actions, control, params, post_process=post_process)
    check_report(actions, report, post_process)
    control.spoken()  # the deferred (post_process) list is applied once the answer was spoken
    if control.hold_end is not None:
        control.hold_end("timeout")  # hold's timeout_step routing


# ---- the tool runner, with the agent's reply served by a fake HTTP session --------------------


class FakeResponse:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        self.reason = "Fake"
        self.headers = {"Location": "http://agent.invalid/again"} if 300 <= status < 400 else {}

    async def __aenter__(self) -> FakeResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self) -> bytes:
        return self.body

    async def text(self, errors: str = "strict") -> str:
        return self.body.decode("utf-8", errors)


class FakeHttp:
    """Answers every POST (webhooks) and request (DataMap) with the same status and body."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.body = status, body

    def post(self, url: Any, **_: Any) -> FakeResponse:
        return FakeResponse(self.status, self.body)

    def request(self, method: str, url: Any, **_: Any) -> FakeResponse:
        return FakeResponse(self.status, self.body)


def _agents() -> list[dict[str, Any]]:
    agents = []
    for path in sorted((FIXTURES / "swaig").glob("*.swml.json")):
        for verb in json.loads(path.read_text())["sections"]["main"]:
            if isinstance(verb, dict) and "ai" in verb and verb["ai"].get("SWAIG", {}).get("functions"):
                agents.append(verb["ai"])
    return agents


AGENTS = _agents()
CALL = CallInfo(call_id="call-1", caller_id_num="+15551230000")
REPLY_BODIES = [json.dumps(reply).encode() for reply in REPLIES] + [json.dumps([1, {"a": 2}]).encode()]


async def invoke(ai: dict[str, Any], pick: int, arguments: str, status: int, body: bytes) -> ToolOutcome | None:
    async def no_sleep(_: float) -> None:
        return None

    runner = SwaigToolRunner(ai, CALL, http=FakeHttp(status, body), sleep=no_sleep, now_s=lambda: 1_700_000_000.0)
    names = [name for name in runner.valid_names() if name in runner.functions.functions]
    if not names:
        return None
    control = FakeControl({"tier": "gold"})
    outcome = await runner.invoke(ToolInvocation("call_1", names[pick % len(names)], arguments), control)
    control.spoken()
    await runner.close()
    return outcome


BODY = st.one_of(
    st.sampled_from(REPLY_BODIES),
    st.sampled_from(REPLIES).flatmap(lambda reply: mutated_json(reply, KEYS)).map(lambda v: json.dumps(v).encode()),
    mutated_bytes(REPLY_BODIES, lines=False),
    st.binary(max_size=64),
)


# Found by this fuzzer: a reply nested past the stack (RecursionError) or holding an integer of
# more than 4300 digits (ValueError) escaped post_json (pick 0: a webhook) and cjson_parse
# (pick 1: a DataMap webhook); so did such tool arguments from the model (guards, invoke).
@example(ai=AGENTS[0], pick=0, arguments="{}", status=200, body=b"[" * 100_000)
@example(ai=AGENTS[0], pick=1, arguments='{"location": "Paris"}', status=200, body=b"[" * 100_000)
@example(ai=AGENTS[0], pick=0, arguments="[" * 100_000, status=200, body=b"{}")
@example(ai=AGENTS[0], pick=0, arguments="9" * 5000, status=200, body=b"{}")
# Found by this fuzzer: `${` repeated without `}` made the template expansion quadratic (2 s for
# 8 KiB, minutes for 64 KiB of a reply's response text): now one pass.
@example(ai=AGENTS[0], pick=0, arguments="{}", status=200, body=b'{"response": "' + b"${" * 32768 + b'"}')
@example(ai=AGENTS[0], pick=0, arguments="{}", status=200, body=b'{"response": ' + b"9" * 5000 + b"}")
@budget(300)
@given(
    ai=st.sampled_from(AGENTS),
    pick=st.integers(0, 20),
    arguments=st.one_of(
        st.sampled_from(['{"location": "Paris", "query": "x", "category": "dad"}', "{}", "[1]", "{bad", "9" * 5000]),
        # the model's arguments carry what the caller said into templates (${args.x}, enc:, lc:)
        st.dictionaries(st.sampled_from(["location", "query", "category", "command", "message"]), JSON).map(json.dumps),
    ),
    status=st.sampled_from([200, 200, 201, 302, 404, 500]),
    body=BODY,
)
def test_tool_runner_survives_any_reply(
    ai: dict[str, Any], pick: int, arguments: str, status: int, body: bytes
) -> None:
    outcome = asyncio.run(invoke(ai, pick, arguments, status, body))
    if outcome is not None:
        assert isinstance(outcome, ToolOutcome)
        assert outcome.response is None or isinstance(outcome.response, str)


def test_seed_agents_have_webhook_and_datamap_functions() -> None:
    """The runner target reaches both reply parsers: webhook (post_json) and DataMap (cjson)."""
    kinds = {fn.kind for ai in AGENTS for fn in SwaigToolRunner(ai, CALL).functions.functions.values()}
    assert {"webhook", "datamap"} <= kinds


def _find_end_brace(text: str, start: int) -> int:
    """The scan `templates.expand` did from each `${` before it paired braces in one pass."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


@budget(300)
@given(st.text("${}%a.", max_size=40))
def test_one_pass_brace_pairing_matches_the_scan(text: str) -> None:
    ends = _end_braces(text)
    for index, char in enumerate(text):
        if char == "{":
            assert ends.get(index, -1) == _find_end_brace(text, index)


# -- regressions: integers as the platform reads them (cJSON valueint, C atoi) --------------------


def test_foreach_max_out_of_int_range_is_clamped_not_an_error() -> None:
    from mediaserver.swaig.datamap import _foreach

    # max: a huge or non-finite number is clamped (all items); NaN, 0 and junk mean "no limit" too.
    for limit, want in ((1e999, "abc"), (float("nan"), "abc"), (-1e999, "abc"), ("9" * 5000, "abc"), (" 2x", "ab")):
        data: dict[str, object] = {"list": ["a", "b", "c"]}
        _foreach({"input_key": "list", "output_key": "items", "max": limit, "append": "${this}"}, data)
        assert data["items"] == want, (limit, data)


def test_atoi_and_valueint_clamp_to_a_c_int() -> None:
    from mediaserver.swaig.templates import INT_MAX, INT_MIN, atoi, valueint

    assert atoi(" 42abc") == 42 and atoi("-7") == -7 and atoi("x") == 0 and atoi("007") == 7
    assert atoi("9" * 5000) == INT_MAX and atoi("-" + "9" * 20) == INT_MIN
    assert valueint(1e999) == INT_MAX and valueint(-1e999) == INT_MIN and valueint(float("nan")) == 0
    assert valueint(3.9) == 3
