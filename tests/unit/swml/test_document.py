"""Document loading and validation: good/ fixtures load, bad/ fixtures fail with an exact path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.swml.document import VERBS, Document, Verb, document_from_data, load_document
from mediaserver.swml.errors import SwmlError

FIXTURES = Path(__file__).parent / "fixtures"

# Every file in bad/ must appear here: the exact str() of the SwmlError it raises.
BAD_EXPECTED = {
    "bad_silence.yaml": "sections.main[0].play.url: silence:<seconds>: 'two' is not a number of seconds",
    "bool_sleep.yaml": "sections.main[0].sleep: expected an integer",
    "duplicate_label.yaml": "sections.main[2].label: duplicate label 'again' (first at sections.main[0])",
    "hangup_reason.yaml": "sections.main[0].hangup.reason: expected one of hangup, busy, decline",
    "invalid_json.json": "invalid_json.json: invalid JSON: Expecting value: line 1 column 24 (char 23)",
    "main_not_list.yaml": "sections.main: expected a list of verbs",
    "max_duration_small.json": "sections.main[0].answer.max_duration: expected an integer >= 7, got 3",
    "no_main.yaml": "sections: missing required section 'main'",
    "not_object.yaml": "not_object.yaml: expected a document object with 'sections', got a list",
    "other_section_scheme.yaml": "sections.greeting[0].play.url: unsupported play URL scheme 'ftp'"
    " (say, silence, ring, http, https, file)",
    "ring_country.yaml": "sections.main[0].play.urls[0]: ring needs a two-letter country code, got 'usa'",
    "sleep_negative.json": "sections.main[0].sleep.duration: expected an integer >= -1, got -5",
    "two_keys.json": "sections.main[0]: expected a single-key object {verb: params}, got keys 'answer', 'play'",
    "unknown_param.yaml": "sections.main[0].answer.max_duraton: unknown parameter",
    "unknown_verb.yaml": "sections.main[2]: unknown verb 'plya'",
    "url_and_urls.json": "sections.main[0].play: give either 'url' or 'urls', not both",
    "url_not_string.json": "sections.main[3].play.urls[1]: expected a string",
    "volume_range.yaml": "sections.main[1].play.volume: expected a number from -40 to 40, got 50",
}


def _files(kind: str) -> list[Path]:
    return sorted(p for p in (FIXTURES / kind).iterdir() if p.suffix in {".yaml", ".json"})


def _load(path: Path) -> Document:
    return load_document(path.read_bytes(), source=path.name)


@pytest.mark.parametrize("path", _files("good"), ids=lambda p: p.name)
def test_good_documents_load(path: Path) -> None:
    document = _load(path)
    assert "main" in document.sections
    assert document.source == path.name
    for name, verbs in document.sections.items():
        for index, verb in enumerate(verbs):
            assert verb.path == f"sections.{name}[{index}]"
            assert verb.name in VERBS


@pytest.mark.parametrize("path", _files("bad"), ids=lambda p: p.name)
def test_bad_documents_name_the_path(path: Path) -> None:
    with pytest.raises(SwmlError) as caught:
        _load(path)
    assert str(caught.value) == BAD_EXPECTED[path.name]


def test_every_bad_fixture_has_an_expectation() -> None:
    assert {p.name for p in _files("bad")} == set(BAD_EXPECTED)


def test_schema_has_39_verbs() -> None:
    assert len(VERBS) == 39


def test_error_carries_path_and_message() -> None:
    with pytest.raises(SwmlError) as caught:
        load_document('{"sections": {"main": [{"play": {"urls": ["say:a", 7]}}]}}')
    assert caught.value.path == "sections.main[0].play.urls[1]"
    assert caught.value.message == "expected a string"


def test_canonical_params() -> None:
    document = _load(FIXTURES / "good" / "answer_play_hangup.yaml")
    main = document.sections["main"]
    assert document.version == "1.0.0"
    assert main[0] == Verb("answer", {"max_duration": 3600, "codecs": "PCMU,PCMA"}, "sections.main[0]")
    assert main[2] == Verb("sleep", {"duration": 500}, "sections.main[2]")
    assert main[3].params == {"reason": "busy"}


def test_bare_strings_and_null_params_mean_empty_params() -> None:
    main = _load(FIXTURES / "good" / "bare_strings.yaml").sections["main"]
    assert [(v.name, v.params) for v in main] == [
        ("answer", {}),
        ("play", {"url": "say:Goodbye"}),
        ("hangup", {}),
    ]


def test_unexecuted_verbs_keep_params_as_written() -> None:
    document = _load(FIXTURES / "good" / "sdk_agent.json")
    ai = document.sections["main"][2]
    assert ai.name == "ai"
    assert ai.params["params"] == {"end_of_speech_timeout": 700}
    assert document.sections["main"][1].params == {"format": "wav", "stereo": True}


def test_labels_are_resolved_at_load() -> None:
    document = _load(FIXTURES / "good" / "sections_labels.yaml")
    assert document.labels == {"main": {"start": 0, "end": 3}, "greeting": {"top": 0}}


def test_json_and_yaml_give_the_same_document() -> None:
    as_json = load_document('{"sections": {"main": [{"sleep": 100}, "hangup"]}}')
    as_yaml = load_document("sections:\n  main:\n    - sleep: 100\n    - hangup\n")
    assert as_json.sections == as_yaml.sections


def test_yaml_flow_style_starting_with_brace_is_accepted() -> None:
    # Not JSON (unquoted keys) but valid YAML: the JSON attempt fails, YAML takes over.
    document = load_document("{sections: {main: [answer, hangup]}}")
    assert [v.name for v in document.sections["main"]] == ["answer", "hangup"]


def test_document_from_data_accepts_parsed_objects() -> None:
    document = document_from_data({"sections": {"main": [{"play": {"url": "silence:1"}}]}})
    assert document.sections["main"][0].params == {"url": "silence:1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "<inline>: empty document"),
        ('{"version": "1.0.0"}', "<inline>: missing required key 'sections'"),
        ('{"sections": []}', "sections: expected an object"),
    ],
)
def test_document_level_errors(text: str, expected: str) -> None:
    with pytest.raises(SwmlError) as caught:
        load_document(text)
    assert str(caught.value) == expected


def test_yaml_syntax_error() -> None:
    with pytest.raises(SwmlError, match=r"^calls\.yaml: invalid YAML: "):
        load_document("sections: [", source="calls.yaml")


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        ("[42]", "sections.main[0]: expected a verb object or a verb name, got a number"),
        ("[{}]", "sections.main[0]: expected a single-key object {verb: params}, got keys none"),
        ('["say"]', "sections.main[0]: unknown verb 'say'"),
        ('["play"]', "sections.main[0].play: missing 'url' or 'urls'"),
        ('[{"play": {"urls": []}}]', "sections.main[0].play.urls: expected a non-empty list of strings"),
        ('[{"play": {"url": "say:"}}]', "sections.main[0].play.url: say: needs text to speak"),
        (
            '[{"play": {"url": "say:x", "auto_answer": "yes"}}]',
            "sections.main[0].play.auto_answer: expected a boolean",
        ),
        ('[{"play": {"url": "say:x", "volume": true}}]', "sections.main[0].play.volume: expected a number"),
        ('[{"sleep": {}}]', "sections.main[0].sleep: missing 'duration'"),
        ('[{"sleep": 1.5}]', "sections.main[0].sleep: expected an integer"),
        ('[{"answer": {"codecs": 711}}]', "sections.main[0].answer.codecs: expected a string"),
        ('[{"hangup": "busy"}]', "sections.main[0].hangup: expected an object"),
        ('[{"label": 3}]', "sections.main[0].label: expected a non-empty string"),
    ],
)
def test_verb_errors(main: str, expected: str) -> None:
    with pytest.raises(SwmlError) as caught:
        load_document(f'{{"sections": {{"main": {main}}}}}')
    assert str(caught.value) == expected


def test_bytes_must_be_utf8() -> None:
    with pytest.raises(SwmlError, match=r"^doc\.json: not UTF-8 text"):
        load_document(b'{"sections": "\xff"}', source="doc.json")


def test_utf8_bom_is_tolerated() -> None:
    document = load_document('\ufeff{"sections": {"main": ["hangup"]}}'.encode())
    assert document.sections["main"][0].name == "hangup"


def test_expressions_are_accepted_where_the_schema_allows_them() -> None:
    main = _load(FIXTURES / "good" / "expressions.json").sections["main"]
    assert main[0].params == {"max_duration": "${vars.limit}"}
    assert main[1].params == {"duration": "%{vars.pause}"}
