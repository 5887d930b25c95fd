"""`ai`, `amazon_bedrock` and `ai_sidecar` bodies against the SDK's schema.json (schema_check.py).

A body the agent cannot start from (a plain-string `prompt`, no `prompt`) refuses the document;
other schema errors load (the agent repairs them) and are listed by `schema_problems`; keys the
schema does not know are notes. SWML rendered by the SDK's own agents loads with no problems.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mediaserver.swml import schema_check
from mediaserver.swml.document import document_from_data, load_document, schema_problems
from mediaserver.swml.errors import SwmlError, SwmlErrors

signalwire = pytest.importorskip("signalwire", reason="signalwire-sdk (test extra) is not installed")
pytest.importorskip("jsonschema_rs", reason="jsonschema-rs comes with signalwire-sdk")

EXAMPLES = Path(signalwire.__file__).parent / "_docs" / "examples"


def doc(*verbs: Any) -> dict[str, Any]:
    return {"sections": {"main": list(verbs)}}


def errors_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SwmlError) as caught:
        document_from_data(data)
    found = caught.value.errors if isinstance(caught.value, SwmlErrors) else [caught.value]
    return [str(error) for error in found]


def test_the_schema_is_used() -> None:
    assert schema_check.schema_available() and schema_check.prepare()


@pytest.mark.parametrize("verb", ["ai", "amazon_bedrock"])
def test_a_plain_string_prompt_refuses_the_document(verb: str) -> None:
    assert errors_of(doc({verb: {"prompt": "You are a helpful bot"}})) == [
        f'sections.main[0].{verb}.prompt: expected an object, got a string "You are a helpful bot"'
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "sections.main[0].ai: missing required key 'prompt'"),
        (None, "sections.main[0].ai: expected an object, got null"),
        ({"prompt": {"temperature": 0.5}}, "sections.main[0].ai.prompt: missing required key 'text'"),
        ({"prompt": {"text": 5}}, "sections.main[0].ai.prompt.text: expected a string, got a number"),
    ],
)
def test_an_ai_body_without_a_usable_prompt_is_refused(body: Any, expected: str) -> None:
    assert errors_of(doc({"ai": body})) == [expected]


def test_the_sidecar_takes_a_string_prompt_but_needs_a_language() -> None:
    assert schema_problems(document_from_data(doc({"ai_sidecar": {"prompt": "watch", "lang": "en-US"}}))) == []
    assert errors_of(doc({"ai_sidecar": {"prompt": "watch"}})) == [
        "sections.main[0].ai_sidecar: missing required key 'lang'"
    ]


def test_repairable_errors_load_and_are_listed_with_paths() -> None:
    body = {
        "prompt": {"text": "hi", "temperature": "hot"},
        "params": {"ai_volume": 200, "direction": "sideways"},
        "hints": [5],
    }
    document = document_from_data(doc("answer", {"cond": [{"when": "true", "then": [{"ai": body}]}]}))
    at = "sections.main[1].cond[0].then[0].ai"
    assert [str(error) for error in schema_problems(document)] == [
        f'{at}.prompt.temperature: expected a number or a ${{…}} expression, got a string "hot"',
        f"{at}.params.ai_volume: 200 is out of range (greater than the maximum of 50)",
        f'{at}.params.direction: expected one of "inbound", "outbound" or a ${{…}} expression, got a string "sideways"',
        f"{at}.hints[0]: expected a string or an object, got a number",
    ]


def test_expressions_stand_in_for_numbers_and_booleans() -> None:
    body = {
        "prompt": {"text": "hi", "temperature": "${vars.t}", "top_p": "%{vars.p}"},
        "params": {"ai_volume": "${vars.v}", "enable_barge": "${vars.b}"},
    }
    assert schema_problems(document_from_data(doc({"ai": body}))) == []


def test_unknown_keys_are_notes_not_errors() -> None:
    body = {"prompt": {"text": "hi"}, "promt": "typo", "SWAIG": {"functions": [], "mcp_servers": []}}
    errors, notes = schema_check.check_body("ai", body, "sections.main[0]")
    assert errors == []
    assert sorted(str(note) for note in notes) == [
        "sections.main[0].ai.SWAIG: unknown key 'mcp_servers' (ignored)",
        "sections.main[0].ai: unknown key 'promt' (ignored)",
    ]


def test_named_contexts_are_still_checked() -> None:
    # `contexts` allows any name, but each context must still be a context object.
    body = {"prompt": {"text": "hi", "contexts": {"sales": {"steps": "none"}}}}
    problems = [str(error) for error in schema_problems(document_from_data(doc({"ai": body})))]
    assert problems and all(p.startswith("sections.main[0].ai.prompt.contexts.sales") for p in problems)


def test_without_the_sdk_the_prompt_check_still_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema_check, "_loaded", lambda: None)
    assert not schema_check.schema_available()
    assert errors_of(doc({"ai": {"prompt": "hi"}})) == [
        'sections.main[0].ai.prompt: expected an object, got a string "hi"'
    ]
    assert errors_of(doc({"amazon_bedrock": {}})) == ["sections.main[0].amazon_bedrock: missing required key 'prompt'"]
    assert (
        schema_problems(document_from_data(doc({"ai": {"prompt": {"text": "hi"}, "params": {"ai_volume": 200}}}))) == []
    )


# The SDK examples whose SWML the raw schema refuses: each needed an `_SDK_DIALECT` entry.
DIALECT_EXAMPLES = [
    "contexts_demo",
    "data_map_demo",
    "faq_bot_agent",
    "gather_info_demo",
    "gather_per_question_functions_demo",
    "step_function_inheritance_demo",
    "swaig_features_agent",
    "bedrock_agent_run",
    "swmlservice_ai_sidecar",
]


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    tool = shutil.which("swaig-test", path=str(Path(sys.executable).parent)) or shutil.which("swaig-test")
    if tool is None:
        pytest.skip("swaig-test is not installed")

    def dump(name: str) -> tuple[str, str]:
        done = subprocess.run(
            [tool, str(EXAMPLES / f"{name}.py"), "--dump-swml", "--raw"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return name, done.stdout

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(dump, DIALECT_EXAMPLES))


@pytest.mark.parametrize("name", DIALECT_EXAMPLES)
def test_sdk_rendered_agent_bodies_have_no_schema_errors(name: str, rendered: dict[str, str]) -> None:
    data = json.loads(rendered[name])
    verbs = [item for items in data["sections"].values() for item in items if isinstance(item, dict)]
    assert any(key in schema_check.SCHEMA_DEFS for verb in verbs for key in verb), name
    assert [str(error) for error in schema_problems(load_document(rendered[name], source=name))] == []


def test_a_lone_surrogate_is_a_schema_problem_at_its_verb_not_a_crash() -> None:
    # Found by tests/fuzz/test_swml.py: JSON may carry "\ud800", which the validator cannot encode.
    document = document_from_data({"sections": {"main": [{"answer": {}}, {"ai": "\ud800"}]}}, source="t")
    problems = [str(p) for p in schema_problems(document)]
    assert any("not valid Unicode" in p for p in problems), problems
