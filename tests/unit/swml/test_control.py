"""Control verbs and expressions, as effects out for results in (real V8 through mini-racer)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mediaserver.swml.document import load_document
from mediaserver.swml.effects import (
    Answer,
    Effect,
    FetchFailed,
    FetchSwml,
    Finished,
    Hangup,
    Play,
    Played,
    PlaySay,
    Prompt,
    Request,
    Sleep,
    SwmlFetched,
    VerbResult,
)
from mediaserver.swml.errors import SwmlError, SwmlLoopError
from mediaserver.swml.expr import JsEvaluator, expand, truthy
from mediaserver.swml.interpreter import Interpreter


def doc(sections: dict[str, Any]) -> Interpreter:
    return Interpreter(load_document(json.dumps({"sections": sections})), call={"from": "+15551234567", "type": "sip"})


def said(effect: Effect) -> str:
    assert isinstance(effect, Play) and isinstance(effect.items[0], PlaySay), effect
    return effect.items[0].text


def run_says(interp: Interpreter, limit: int = 50) -> list[str]:
    out = []
    effect = interp.start()
    while not interp.done:
        assert len(out) < limit
        if isinstance(effect, Play):
            out.append(said(effect))
        effect = interp.resume(Played(True) if isinstance(effect, Play) else None)
    return out


# ---- expressions ---------------------------------------------------------------------------

SCOPE = {"call": {"from": "+15551234567"}, "vars": {"n": 3}, "n": 3, "params": {"who": "Ann"}, "envs": {}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${call.from.substring(0,3)}", "+15"),
        ("${vars.n * 2}", 6),
        ("%{n > 2}", True),
        ("Hi ${params.who}, n=${n}!", "Hi Ann, n=3!"),
        ("${ {a: '}'}.a }", "}"),
        ("x${missing}y", "xy"),
        ("${[1,2]}", [1, 2]),
        ("say:${n / 2}", "say:1.5"),
        ("plain", "plain"),
    ],
)
def test_templates(value: str, expected: Any) -> None:
    assert expand(value, SCOPE, "p", JsEvaluator()) == expected


def test_when_clauses_are_raw_javascript_with_truthiness() -> None:
    js = JsEvaluator()
    assert truthy("n == 3 && call.from.startsWith('+1')", SCOPE, "p", js)
    assert not truthy("prompt_value == '1'", SCOPE, "p", js)  # unset bare names are undefined
    assert truthy("${n}", SCOPE, "p", js)
    assert not truthy("''", SCOPE, "p", js)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("n +", "SyntaxError"),
        ("missing.x", "TypeError: Cannot read properties of undefined"),
        ("(function(){while(true){}})()", "ran longer than 50 ms"),
        ("new Array(1e9).fill(0)", "RangeError"),
    ],
)
def test_expression_failures_name_the_path(code: str, message: str) -> None:
    js = JsEvaluator(timeout_ms=50)
    with pytest.raises(SwmlError) as caught:
        js.evaluate(code, SCOPE, "sections.main[2].cond[0].when")
    assert str(caught.value).startswith("sections.main[2].cond[0].when: expression")
    assert message in str(caught.value)
    assert js.evaluate("1 + 1", SCOPE, "p") == 2  # the evaluator survives


def test_scripts_cannot_reach_python() -> None:
    js = JsEvaluator()
    assert js.evaluate("typeof require + typeof process + typeof globalThis.python", {}, "p") == (
        "undefinedundefinedundefined"
    )


# ---- flow ------------------------------------------------------------------------------------


def test_cond_picks_first_true_branch_then_continues() -> None:
    interp = doc(
        {
            "main": [
                {"set": {"n": 2}},
                {
                    "cond": [
                        {"when": "n > 5", "then": [{"play": {"url": "say:big"}}]},
                        {"when": "vars.n == 2", "then": [{"play": {"url": "say:two"}}]},
                        {"else": [{"play": {"url": "say:other"}}]},
                    ]
                },
                {"play": {"url": "say:after ${n}"}},
            ]
        }
    )
    assert run_says(interp) == ["two", "after 2"]


def test_switch_on_a_variable_with_default() -> None:
    interp = doc(
        {
            "main": [
                {
                    "switch": {
                        "variable": "call.type",
                        "case": {"sip": [{"play": {"url": "say:sip"}}]},
                        "default": [{"play": {"url": "say:default"}}],
                    }
                },
                {
                    "switch": {
                        "variable": "${vars.nope}",
                        "case": {"x": []},
                        "default": [{"play": {"url": "say:fallback"}}],
                    }
                },
            ]
        }
    )
    assert run_says(interp) == ["sip", "fallback"]


def test_goto_with_when_and_max() -> None:
    interp = doc(
        {
            "main": [
                {"set": {"i": 0}},
                {"label": "top"},
                {"set": {"i": "${i + 1}"}},
                {"play": {"url": "say:round ${i}"}},
                {"goto": {"label": "top", "when": "i < 10", "max": 3}},
                {"play": {"url": "say:done ${i}"}},
            ]
        }
    )
    assert run_says(interp) == ["round 1", "round 2", "round 3", "round 4", "done 4"]


def test_goto_out_of_a_cond_block() -> None:
    interp = doc(
        {
            "main": [
                {"set": {"i": 0}},
                {"label": "again"},
                {"set": {"i": "${i + 1}"}},
                {"cond": [{"when": "i < 3", "then": [{"goto": {"label": "again"}}]}]},
                {"play": {"url": "say:i is ${i}"}},
            ]
        }
    )
    assert run_says(interp) == ["i is 3"]


def test_execute_passes_params_returns_value_runs_on_return_and_result() -> None:
    interp = doc(
        {
            "main": [
                {"set": {"secret": "caller var"}},
                {
                    "execute": {
                        "dest": "sub",
                        "params": {"who": "${call.from}"},
                        "on_return": [{"play": {"url": "say:back with ${return_value.code}"}}],
                        "result": {
                            "variable": "return_value.code",
                            "case": {"7": [{"play": {"url": "say:seven"}}]},
                            "default": [{"play": {"url": "say:not seven"}}],
                        },
                    }
                },
                {"play": {"url": "say:end"}},
            ],
            "sub": [
                {"play": {"url": "say:hello ${params.who}"}},
                {"return": {"code": 7}},
                {"play": {"url": "say:never"}},
            ],
        }
    )
    assert run_says(interp) == ["hello +15551234567", "back with 7", "seven", "end"]


def test_execute_result_as_cond_list_and_section_running_out() -> None:
    interp = doc(
        {
            "main": [
                {
                    "execute": {
                        "dest": "sub",
                        "result": [
                            {"when": "return_value == 'ok'", "then": [{"play": {"url": "say:ok"}}]},
                            {"else": [{"play": {"url": "say:not ok"}}]},
                        ],
                    }
                }
            ],
            "sub": [{"return": "ok"}],
        }
    )
    assert run_says(interp) == ["ok"]


def test_transfer_never_returns() -> None:
    interp = doc(
        {
            "main": [{"transfer": {"dest": "other", "params": {"x": 1}}}, {"play": {"url": "say:never"}}],
            "other": [{"play": {"url": "say:other ${params.x}"}}],
        }
    )
    assert run_says(interp) == ["other 1"]
    assert interp.frames == ()


def test_inline_json_documents_nest_and_replace() -> None:
    inline = json.dumps({"sections": {"main": [{"play": {"url": "say:inline"}}, {"return": 5}]}})
    interp = doc({"main": [{"execute": {"dest": inline}}, {"play": {"url": "say:got ${return_value}"}}]})
    assert run_says(interp) == ["inline", "got 5"]


def test_set_unset_nested_and_bare() -> None:
    interp = doc(
        {
            "main": [
                {"set": {"a.b": 1, "vars.c": "${a.b + 1}", "gone": True}},
                {"unset": ["gone", "a.b"]},
                {"sleep": 1},
            ]
        }
    )
    assert isinstance(interp.start(), Sleep)
    assert interp.variables == {"a": {}, "c": 2}


def test_request_effect_and_result_variables() -> None:
    interp = doc(
        {
            "main": [
                {
                    "request": {
                        "url": "http://u:p@h/x?q=${call.from}",
                        "method": "POST",
                        "body": {"n": "${1+1}"},
                        "timeout": 2.5,
                        "save_variables": True,
                    }
                },
                {
                    "cond": [
                        {
                            "when": "request_result == 'success' && request_response.ok",
                            "then": [{"play": {"url": "say:ok ${request_response_code}"}}],
                        }
                    ]
                },
            ]
        }
    )
    effect = interp.start()
    assert effect == Request(
        path="sections.main[0]",
        url="http://u:p@h/x?q=+15551234567",
        method="POST",
        body={"n": 2},
        timeout_ms=2500,
        save_variables=True,
    )
    effect = interp.resume(
        VerbResult({"request_result": "success", "request_response_code": 200, "request_response": {"ok": True}})
    )
    assert said(effect) == "ok 200"


def test_execute_url_fetches_and_nests_transfer_url_replaces() -> None:
    interp = doc(
        {
            "main": [
                {
                    "execute": {
                        "dest": "https://h/sub",
                        "params": {"k": 1},
                        "on_return": [{"play": {"url": "say:after"}}],
                    }
                },
                "hangup",
            ]
        }
    )
    effect = interp.start()
    assert isinstance(effect, FetchSwml) and (effect.url, effect.purpose, effect.params) == (
        "https://h/sub",
        "execute",
        {"k": 1},
    )
    fetched = load_document('{"sections": {"main": [{"play": {"url": "say:remote ${params.k}"}}]}}')
    assert said(interp.resume(SwmlFetched(fetched))) == "remote 1"
    assert said(interp.resume(Played(True))) == "after"
    assert isinstance(interp.resume(Played(True)), Hangup)


def test_failed_fetch_is_a_path_named_error() -> None:
    interp = doc({"main": [{"transfer": {"dest": "https://h/x"}}]})
    assert isinstance(interp.start(), FetchSwml)
    with pytest.raises(SwmlError) as caught:
        interp.resume(FetchFailed("HTTP 500"))
    assert str(caught.value) == "sections.main[0].transfer.dest: fetching https://h/x failed: HTTP 500"


def test_prompt_effect_from_seconds_and_defaults() -> None:
    interp = doc(
        {
            "main": [
                {"prompt": {"play": "say:Press", "max_digits": "${2 + 1}", "terminators": "#", "digit_timeout": 1.5}}
            ]
        }
    )
    effect = interp.start()
    assert isinstance(effect, Prompt)
    assert (effect.max_digits, effect.terminators, effect.digit_timeout_ms, effect.initial_timeout_ms) == (
        3,
        "#",
        1500,
        5000,
    )


def test_runaway_goto_is_stopped_by_max_and_loops_by_budget() -> None:
    interp = doc({"main": [{"label": "a"}, {"goto": {"label": "a"}}, "hangup"]})
    assert isinstance(interp.start(), Hangup)  # max 100 jumps, then falls through
    looping = Interpreter(
        load_document(
            json.dumps(
                {
                    "sections": {
                        "main": [{"label": "a"}, {"execute": {"dest": "s"}}, {"goto": {"label": "a", "max": 100}}],
                        "s": [{"set": {"x": 1}}],
                    }
                }
            )
        ),
        step_budget=50,
    )
    with pytest.raises(SwmlLoopError):
        looping.start()


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"main": [{"execute": {"dest": "missing"}}]}, "sections.main[0].execute.dest: no section named 'missing'"),
        ({"main": [{"cond": [{"when": "n +", "then": []}]}]}, "sections.main[0].cond[0].when: expression 'n +'"),
        ({"main": [{"sleep": "${'abc'}"}]}, "sections.main[0].sleep.duration: expected an integer, got 'abc'"),
    ],
)
def test_runtime_errors_name_the_path(sections: dict[str, Any], message: str) -> None:
    with pytest.raises(SwmlError) as caught:
        doc(sections).start()
    assert str(caught.value).startswith(message)


def test_answer_then_finished() -> None:
    interp = doc({"main": ["answer"]})
    assert interp.start() == Answer(path="sections.main[0]")
    assert interp.resume() == Finished(path="sections.main")


def test_replace_continues_in_another_document_keeping_vars() -> None:
    interp = doc({"main": [{"set": {"kept": 1}}, {"sleep": 5}, {"play": {"url": "say:old"}}]})
    assert isinstance(interp.start(), Sleep)
    interp.replace(
        load_document('{"sections": {"main": [{"play": {"url": "say:new ${kept} ${params.p}"}}]}}'), params={"p": "x"}
    )
    assert said(interp.resume()) == "new 1 x"
    assert isinstance(interp.resume(Played(True)), Finished)


def test_transfer_to_a_sip_address_connects_and_ends() -> None:
    from mediaserver.swml.effects import Connect

    interp = doc({"main": [{"transfer": {"dest": "sip:bob@example.com"}}, {"play": {"url": "say:never"}}]})
    assert interp.start() == Connect(path="sections.main[0]", params={"to": "sip:bob@example.com"})
    assert interp.resume(VerbResult({"connect_result": "connected"})) == Finished(path="sections")


def test_goto_to_a_missing_label_fails_at_load_even_inside_blocks() -> None:
    with pytest.raises(SwmlError) as caught:
        doc({"main": [{"label": "a"}, {"cond": [{"when": "x", "then": [{"goto": {"label": "b"}}]}]}]})
    assert str(caught.value) == "sections.main[1].cond[0].then[0].goto.label: no label 'b' in section 'main'"
