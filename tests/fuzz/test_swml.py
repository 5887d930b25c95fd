"""SWML documents (files, fetched URLs, SWAIG `SWML` actions): `load_document` and
`document_from_data` return a `Document` or raise `SwmlError` whose `path` names the place
(empty only for the document as a whole); never another exception, never a hang."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mediaserver.swml.document import SDK_VERBS, VERBS, Document, document_from_data, load_document, schema_problems
from mediaserver.swml.errors import SwmlError
from tests.fuzz.support import JSON, ROOT, SWML_SEEDS, SWML_TEXT_SEEDS, budget, mutated_bytes, mutated_json

UNIT_FIXTURES = sorted((ROOT / "tests" / "unit" / "swml" / "fixtures").glob("*/*"))
TEXT_SEEDS = SWML_TEXT_SEEDS + [p.read_bytes() for p in UNIT_FIXTURES if p.suffix in (".yaml", ".json")]
KEYS = sorted(VERBS | SDK_VERBS) + [
    "sections",
    "main",
    "urls",
    "url",
    "then",
    "else",
    "when",
    "label",
    "prompt",
    "params",
]

DEEP_JSON = '{"sections":{"main":' + "[" * 100_000 + "]" * 100_000 + "}}"
DEEP_VERBS = '{"sections":{"main":' + '[{"cond":[{"when":"true","then":' * 400 + "[]" + "}]}]" * 400 + "}}"
SELF_ALIAS = 'sections:\n  main: [{cond: &a [{when: "true", then: [{cond: *a}]}]}]\n'


def check(load: Any) -> Document | None:
    try:
        document = load()
    except SwmlError as err:
        assert isinstance(err.path, str) and err.message and str(err)
        return None
    assert isinstance(document, Document) and "main" in document.sections
    schema_problems(document)  # the tolerated errors can be listed too
    return document


@budget(300, deadline_factor=6)
@given(mutated_bytes(TEXT_SEEDS))
def test_mutated_documents(text: bytes) -> None:
    check(lambda: load_document(text, source="fuzz"))


@budget(300)
@given(st.sampled_from(SWML_SEEDS).flatmap(lambda seed: mutated_json(seed, KEYS)))
def test_mutated_document_data(data: Any) -> None:
    check(lambda: document_from_data(data, source="fuzz"))


VERB = st.one_of(
    st.sampled_from(sorted(VERBS | SDK_VERBS)),
    st.builds(lambda name, params: {name: params}, st.sampled_from(sorted(VERBS | SDK_VERBS)), JSON),
    JSON,
)


@budget(150)
@given(
    st.dictionaries(
        st.sampled_from(["main", "other", ""]) | st.text(max_size=5), st.lists(VERB, max_size=5), max_size=3
    )
)
def test_generated_documents(sections: dict[str, Any]) -> None:
    check(lambda: document_from_data({"version": "1.0.0", "sections": sections}, source="fuzz"))
    check(lambda: load_document(json.dumps({"sections": sections}), source="fuzz"))


def test_nested_too_deeply_is_a_swml_error() -> None:
    """Found by this fuzzer: RecursionError (not SwmlError) from json, yaml and the verb walk (a plain
    test: under hypothesis' tracing of explicit examples the deep unwinding passes the deadline)."""
    for text in (DEEP_JSON, DEEP_VERBS, SELF_ALIAS, "sections:\n  main: " + "[" * 3000 + "]" * 3000):
        try:
            load_document(text, source="deep")
        except SwmlError as err:
            assert "nested too deeply" in err.message, err.message
        else:
            raise AssertionError("accepted")


def test_seeds_load() -> None:
    """The seeds are real, valid documents (so their mutations start deep in the validator)."""
    for path in [
        *sorted((ROOT / "config" / "swml").glob("*.yaml")),
        *sorted((ROOT / "tests" / "fixtures" / "swaig").glob("*.swml.json")),
    ]:
        assert isinstance(load_document(Path(path).read_text(), source=str(path)), Document)


def test_integer_of_too_many_digits_is_a_swml_error() -> None:
    """Found by this fuzzer: json and yaml raise ValueError for an int of more than 4300 digits."""
    for text in (
        '{"sections": {"main": [{"sleep": ' + "9" * 5000 + "}]}}",
        "sections:\n  main:\n    - sleep: " + "9" * 5000,
    ):
        try:
            load_document(text, source="big")
        except SwmlError as err:
            assert "invalid" in err.message and err.path == ""
        else:
            raise AssertionError("accepted")
