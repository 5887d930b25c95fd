"""Issue 13 item 5 in the document model: every error of a document in one load, each with its
path; `${…}` wherever the schema takes an expression; `execute_rpc` (SDK, not schema) accepted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mediaserver.swml.basic_params import BASIC_VALIDATORS
from mediaserver.swml.document import SDK_VERBS, VERBS, document_from_data, load_document, schema_problems
from mediaserver.swml.effects import Play, Unsupported
from mediaserver.swml.errors import SwmlError, SwmlErrors
from mediaserver.swml.interpreter import Interpreter
from mediaserver.swml.params import build_validators


def errors_of(data: Any) -> list[str]:
    with pytest.raises(SwmlError) as caught:
        document_from_data(data)
    found = caught.value.errors if isinstance(caught.value, SwmlErrors) else [caught.value]
    return [str(error) for error in found]


def test_every_error_is_reported_in_document_order() -> None:
    data = {
        "sections": {
            "main": [
                {"play": {"urls": ["say:x", 5], "volume": 99, "colour": "red"}},
                "answer",
                {"prompt": {"play": "say:hi", "max_digits": "many", "digit_timeout": "soon"}},
                {"cond": [{"when": "true", "then": [{"sleep": "long"}, {"bogus": {}}]}]},
                {"goto": {"label": "nowhere"}},
            ],
            "other": [{"label": "a"}, {"label": "a"}, {"execute": {}}],
        }
    }
    assert errors_of(data) == [
        "sections.main[0].play.colour: unknown parameter",
        "sections.main[0].play.urls[1]: expected a string",
        "sections.main[0].play.volume: expected a number from -40 to 40, got 99",
        "sections.main[2].prompt.max_digits: expected an integer",
        "sections.main[2].prompt.digit_timeout: expected a number",
        "sections.main[3].cond[0].then[0].sleep: expected an integer",
        "sections.main[3].cond[0].then[1]: unknown verb 'bogus'",
        "sections.other[2].execute: missing required parameter 'dest'",
    ]
    # the checks that need a whole section (labels, gotos) run on each section that loaded
    data["sections"]["main"] = [{"play": {"urls": ["say:x", 5], "volume": 99}}, {"goto": {"label": "a"}}]
    data["sections"]["other"] = [{"label": "a"}, {"label": "a"}, {"goto": {"label": "nowhere"}}]
    assert errors_of(data) == [
        "sections.main[0].play.urls[1]: expected a string",
        "sections.main[0].play.volume: expected a number from -40 to 40, got 99",
        "sections.other[1].label: duplicate label 'a' (first at sections.other[0])",
        "sections.other[2].goto.label: no label 'nowhere' in section 'other'",
    ]


def test_a_single_error_is_raised_as_itself() -> None:
    with pytest.raises(SwmlError) as caught:
        document_from_data({"sections": {"main": [{"hangup": {"reason": "bored"}}]}})
    assert type(caught.value) is SwmlError
    assert str(caught.value) == "sections.main[0].hangup.reason: expected one of hangup, busy, decline"


def test_a_failed_load_also_lists_the_ai_problems_a_call_would_tolerate() -> None:
    data = {"sections": {"main": [{"ai": {"prompt": {"text": "hi"}, "params": {"ai_volume": 99}}}, {"sleep": "x"}]}}
    assert errors_of(data) == [
        "sections.main[0].ai.params.ai_volume: 99 is out of range (greater than the maximum of 50)",
        "sections.main[1].sleep: expected an integer",
    ]


def test_play_volume_and_auto_answer_take_expressions_resolved_when_the_verb_runs() -> None:
    document = document_from_data(
        {"sections": {"main": [{"play": {"url": "say:hi", "volume": "${vars.vol}", "auto_answer": "%{vars.aa}"}}]}}
    )
    effect = Interpreter(document, variables={"vol": 6, "aa": False}).start()
    assert isinstance(effect, Play)
    assert (effect.volume_db, effect.auto_answer) == (6.0, False)
    with pytest.raises(SwmlError, match=r"^sections.main\[0\].play.volume: expected a number from -40 to 40"):
        Interpreter(document, variables={"vol": 90, "aa": True}).start()


# The least each validated verb needs, so one field at a time can be replaced by an expression.
MINIMAL: dict[str, dict[str, Any]] = {
    "answer": {},
    "play": {"url": "say:hi"},
    "sleep": {"duration": 1},
    "hangup": {},
    "prompt": {"play": "say:hi"},
    "record": {},
    "record_call": {},
    "stop_record_call": {},
    "send_digits": {"digits": "1"},
    "sip_refer": {"to_uri": "sip:a@example.com"},
    "user_event": {"event": {}},
    "detect_machine": {},
    "connect": {"to": "+15551234567"},
    "tap": {"uri": "rtp://192.0.2.1:5000"},
    "stop_tap": {},
    "request": {"url": "http://example.com", "method": "GET"},
    "execute": {"dest": "main"},
    "transfer": {"dest": "main"},
    "denoise": {},
    "stop_denoise": {},
    "goto": {"label": "${vars.x}"},  # a label name is literal: the label below has that name
}
# Verbs whose params are not an object of fields: label, cond, switch, set, unset.
NOT_FIELDS = {"label", "cond", "switch", "set", "unset", "execute_rpc"}


def _schema() -> dict[str, Any]:
    signalwire = pytest.importorskip("signalwire", reason="signalwire-sdk (test extra) is not installed")
    return dict(json.loads((Path(signalwire.__file__).parent / "schema.json").read_text()))


def _expression_fields() -> list[tuple[str, str]]:
    """(verb, field) for every field of a validated verb that the schema lets a `${…}` fill."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    schema = _schema()
    defs = schema["$defs"]
    root = {"$schema": schema["$schema"], "$id": schema["$id"], "$defs": defs}

    def objects(node: dict[str, Any]) -> list[dict[str, Any]]:
        if "$ref" in node:
            return objects(defs[node["$ref"].rsplit("/", 1)[1]])
        found = [sub for key in ("oneOf", "anyOf", "allOf") for each in node.get(key, []) for sub in objects(each)]
        return [*found, node] if "properties" in node else found

    fields = []
    for ref in defs["SWMLMethod"]["anyOf"]:
        wrapper = defs[ref["$ref"].rsplit("/", 1)[1]]
        verb = next(iter(wrapper["properties"]))
        if verb not in MINIMAL:
            continue
        for shape in objects(wrapper["properties"][verb]):
            for name, field in shape["properties"].items():
                if jsonschema_rs.Draft202012Validator({**root, **field}).is_valid("${vars.x}"):
                    fields.append((verb, name))
    return sorted(set(fields))


def test_the_table_covers_every_validated_verb() -> None:
    validated = set(BASIC_VALIDATORS) | set(build_validators(lambda items, path: []))
    assert validated - NOT_FIELDS == set(MINIMAL)


def test_expressions_are_accepted_wherever_the_schema_accepts_them() -> None:
    fields = _expression_fields()
    assert ("play", "volume") in fields and ("play", "auto_answer") in fields and len(fields) > 80
    refused = []
    for verb, name in fields:
        params = {key: value for key, value in MINIMAL[verb].items() if not (name in ("url", "urls") and key == "url")}
        params[name] = ["${vars.x}"] if name == "urls" else "${vars.x}"
        try:
            document_from_data({"sections": {"main": [{"label": "${vars.x}"}, {verb: params}]}})
        except SwmlError as exc:
            refused.append(str(exc))
    assert refused == []


def test_execute_rpc_is_accepted_and_runs_as_unsupported() -> None:
    assert "execute_rpc" in SDK_VERBS and "execute_rpc" not in VERBS  # not a schema verb
    # what FunctionResult.execute_rpc(method="ai_message", call_id=..., params=...) puts in its SWML action
    text = json.dumps(
        {
            "version": "1.0.0",
            "sections": {
                "main": [{"execute_rpc": {"method": "ai_message", "call_id": "c-1", "params": {"role": "system"}}}]
            },
        }
    )
    document = load_document(text)
    assert schema_problems(document) == []
    effect = Interpreter(document).start()
    assert isinstance(effect, Unsupported) and effect.verb == "execute_rpc"
    assert errors_of({"sections": {"main": [{"execute_rpc": {"call_id": 5}}]}}) == [
        "sections.main[0].execute_rpc: missing required parameter 'method'",
        "sections.main[0].execute_rpc.call_id: expected a string",
    ]
