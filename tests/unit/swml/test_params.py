"""Bad params of the control and voice verbs fail at load with the JSON path of the bad field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mediaserver.swml.document import load_document
from mediaserver.swml.errors import SwmlError


def load(*verbs: Any, **sections: Any) -> None:
    load_document(json.dumps({"sections": {"main": list(verbs), **sections}}))


@pytest.mark.parametrize(
    ("verb", "message"),
    [
        ({"cond": []}, "sections.main[0].cond: expected a non-empty list"),
        ({"cond": [{"then": []}]}, "sections.main[0].cond[0]: expected 'when' with 'then', or 'else'"),
        ({"cond": [{"when": "x"}]}, "sections.main[0].cond[0]: missing 'then'"),
        ({"cond": [{"when": "x", "then": [{"play": {}}]}]}, "sections.main[0].cond[0].then[0].play: missing 'url'"),
        ({"switch": {"case": {}}}, "sections.main[0].switch: missing required parameter 'variable'"),
        ({"switch": {"variable": "v", "case": {"1": ["nope"]}}}, "sections.main[0].switch.case.1[0]: unknown verb"),
        ({"execute": {"params": {}}}, "sections.main[0].execute: missing required parameter 'dest'"),
        ({"execute": {"dest": "s", "on_return": {}}}, "sections.main[0].execute.on_return: expected a list of verbs"),
        (
            {"execute": {"dest": "s", "result": {"case": {"a": [{"sleep": "x"}]}}}},
            "sections.main[0].execute.result.case.a[0].sleep: expected an integer",
        ),
        ({"transfer": {"dest": 5}}, "sections.main[0].transfer.dest: expected a string"),
        ({"goto": {"label": "a", "max": 101}}, "sections.main[0].goto.max: expected an integer from 1 to 100"),
        ({"goto": {"when": "x"}}, "sections.main[0].goto: missing required parameter 'label'"),
        ({"unset": [1]}, "sections.main[0].unset: expected a list of strings"),
        ({"set": "x"}, "sections.main[0].set: expected an object"),
        ({"request": {"url": "http://x"}}, "sections.main[0].request: missing required parameter 'method'"),
        ({"request": {"url": "http://x", "method": "PATCH"}}, "sections.main[0].request.method: expected one of"),
        ({"prompt": {"play": []}}, "sections.main[0].prompt.play: expected a play URL or a non-empty list"),
        ({"prompt": {"play": "say:x", "max_digits": "3"}}, "sections.main[0].prompt.max_digits: expected an integer"),
        ({"record": {"format": "ogg"}}, "sections.main[0].record.format: expected one of wav, mp3, mp4"),
        ({"record_call": {"direction": "up"}}, "sections.main[0].record_call.direction: expected one of"),
        ({"send_digits": {"digits": "12x"}}, "sections.main[0].send_digits.digits: expected DTMF digits"),
        ({"sip_refer": {}}, "sections.main[0].sip_refer: missing required parameter 'to_uri'"),
        ({"user_event": {"event": "x"}}, "sections.main[0].user_event.event: expected an object"),
        ({"denoise": {"level": 3}}, "sections.main[0].denoise.level: unknown parameter"),
        ({"connect": {"from": "+1"}}, "sections.main[0].connect: missing 'to'"),
        ({"detect_machine": {"tone": "XYZ"}}, "sections.main[0].detect_machine.tone: expected one of CED, CNG"),
    ],
)
def test_bad_params_name_their_path(verb: Any, message: str) -> None:
    with pytest.raises(SwmlError) as caught:
        load(verb)
    assert str(caught.value).startswith(message), str(caught.value)


def test_expressions_are_accepted_where_numbers_are_expected() -> None:
    load(
        {"prompt": {"play": "say:x", "max_digits": "${vars.n}", "digit_timeout": "%{t}"}},
        {"goto": {"label": "a", "max": "${m}"}},
        {"label": "a"},
        {"record": {"beep": "${b}", "max_length": "${l}"}},
        {"request": {"url": "http://h/${x}", "method": "GET", "timeout": "${t}", "save_variables": "${s}"}},
    )
