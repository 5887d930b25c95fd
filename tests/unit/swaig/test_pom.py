"""POM rendering matches the SDK's own renderer (markdown and xml) on generated section trees."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediaserver.swaig.pom import PomError, render_pom

pom_module = pytest.importorskip("signalwire.pom.pom")

text = st.text(alphabet="abc XY-#.\n", min_size=1, max_size=12)


@st.composite
def section(draw: Any, depth: int = 0, titled: bool = True) -> dict[str, Any]:
    sec: dict[str, Any] = {}
    if titled or draw(st.booleans()):
        sec["title"] = draw(text)
    if draw(st.booleans()):
        sec["body"] = draw(text)
    if draw(st.booleans()):
        sec["bullets"] = draw(st.lists(text, min_size=1, max_size=3))
    if depth < 2 and draw(st.booleans()):
        sec["subsections"] = draw(st.lists(section(depth + 1, True), min_size=1, max_size=3))
    if not sec.get("body") and not sec.get("bullets") and not sec.get("subsections"):
        sec["body"] = "b"
    if draw(st.booleans()):
        sec["numbered"] = draw(st.booleans())
    if draw(st.booleans()):
        sec["numberedBullets"] = draw(st.booleans())
    return sec


poms = (
    st.lists(st.booleans(), min_size=1, max_size=4)
    .flatmap(lambda flags: st.tuples(*[section(0, titled=f) for f in flags]))
    .map(list)
)


@settings(max_examples=300, deadline=None)
@given(poms)
def test_markdown_and_xml_match_the_sdk(pom: list[dict[str, Any]]) -> None:
    sdk = pom_module.PromptObjectModel.from_json(copy.deepcopy(pom))
    assert render_pom(pom) == sdk.render_markdown()
    assert render_pom(pom, "xml") == sdk.render_xml()


def test_quickstart_prompt() -> None:
    pom = [{"title": "Role", "body": "You are a helpful assistant."}]
    assert render_pom(pom) == "## Role\n\nYou are a helpful assistant.\n"


def test_numbered_sections_and_bullets() -> None:
    pom = [
        {"title": "A", "body": "x", "numbered": True},
        {
            "title": "B",
            "bullets": ["one", "two"],
            "numberedBullets": True,
            "subsections": [{"title": "B1", "body": "y", "numbered": True}],
        },
    ]
    assert render_pom(pom) == "## 1. A\n\nx\n\n## 2. B\n\n1. one\n2. two\n\n### 2.1. B1\n\ny\n"


@pytest.mark.parametrize(
    ("pom", "where"),
    [
        ([{"title": "A"}], "prompt.pom[0]"),
        ([{"title": "A", "body": 3}], "prompt.pom[0].body"),
        ([{"title": "A", "subsections": [{"body": "x"}]}], "prompt.pom[0].subsections[0]"),
        ("text", "prompt.pom"),
    ],
)
def test_bad_sections_name_their_path(pom: Any, where: str) -> None:
    with pytest.raises(PomError) as info:
        render_pom(pom)
    assert str(info.value).startswith(where + ":")
