"""Prompt Object Model rendering, byte for byte as the SDK's `pom/pom.py` renders it.

Theory of operation: an `ai` prompt may be `{"pom": [section, …]}` instead of text (contract §3).
A section is `{title?, body?, bullets?[], subsections?[], numbered?, numberedBullets?}`.
`render_pom(sections, fmt)` turns the list into the system prompt text: markdown (default,
`params.pom_format`) or xml. The rules, copied from the SDK so that the LLM sees exactly what it
would see on the platform:

- markdown: `## Title` (subsections one `#` deeper), body, then `- bullet` or `1. bullet`, a
  blank line after bullets; parts joined by newlines.
- numbering: if any sibling has `numbered: true`, every titled sibling is numbered (`1.`,
  `1.2.`) unless it says `numbered: false`; untitled sections are not numbered and do not
  deepen the heading level of their subsections.
- a section after the first without a title is titled "Untitled Section" (the SDK does that
  when it loads a POM); a section must have a body, bullets or subsections (else `PomError`
  naming its path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PomError", "render_pom"]


class PomError(ValueError):
    """A POM section that the SDK would refuse; the message names its path."""


@dataclass
class _Section:
    title: str | None
    body: str = ""
    bullets: list[str] = field(default_factory=list)
    subsections: list[_Section] = field(default_factory=list)
    numbered: bool | None = None
    numbered_bullets: bool = False


def _build(raw: Any, path: str, is_subsection: bool) -> _Section:
    if not isinstance(raw, dict):
        raise PomError(f"{path}: a POM section must be an object")
    title = raw.get("title")
    if title is not None and not isinstance(title, str):
        raise PomError(f"{path}.title: must be a string")
    body = raw.get("body", "")
    if not isinstance(body, str):
        raise PomError(f"{path}.body: must be a string")
    bullets = raw.get("bullets", [])
    subsections = raw.get("subsections", [])
    if not isinstance(bullets, list):
        raise PomError(f"{path}.bullets: must be a list")
    if not isinstance(subsections, list):
        raise PomError(f"{path}.subsections: must be a list")
    if not body and not bullets and not subsections:
        raise PomError(f"{path}: a section needs a non-empty body, bullets or subsections")
    if is_subsection and "title" not in raw:
        raise PomError(f"{path}: a subsection needs a title")
    numbered = raw.get("numbered")
    section = _Section(
        title=title,
        body=body,
        bullets=[str(b) for b in bullets],
        numbered=numbered if isinstance(numbered, bool) else None,
        numbered_bullets=raw.get("numberedBullets") is True,
    )
    section.subsections = [_build(sub, f"{path}.subsections[{i}]", True) for i, sub in enumerate(subsections)]
    return section


def _markdown(section: _Section, level: int = 2, number: list[int] | None = None) -> str:
    number = number or []
    md: list[str] = []
    if section.title is not None:
        prefix = f"{'.'.join(map(str, number))}. " if number else ""
        md.append(f"{'#' * level} {prefix}{section.title}\n")
    if section.body:
        md.append(f"{section.body}\n")
    for i, bullet in enumerate(section.bullets, 1):
        md.append(f"{i}. {bullet}" if section.numbered_bullets else f"- {bullet}")
    if section.bullets:
        md.append("")
    any_numbered = any(sub.numbered for sub in section.subsections)
    for i, sub in enumerate(section.subsections, 1):
        if section.title is not None or number:
            sub_number = [*number, i] if any_numbered and sub.numbered is not False else number
            md.append(_markdown(sub, level + 1, sub_number))
        else:
            md.append(_markdown(sub, level, number))
    return "\n".join(md)


def _xml(section: _Section, indent: int = 0, number: list[int] | None = None) -> str:
    number = number or []
    pad = "  " * indent
    xml = [f"{pad}<section>"]
    if section.title is not None:
        prefix = f"{'.'.join(map(str, number))}. " if number else ""
        xml.append(f"{pad}  <title>{prefix}{section.title}</title>")
    if section.body:
        xml.append(f"{pad}  <body>{section.body}</body>")
    if section.bullets:
        xml.append(f"{pad}  <bullets>")
        for i, bullet in enumerate(section.bullets, 1):
            xml.append(
                f'{pad}    <bullet id="{i}">{bullet}</bullet>'
                if section.numbered_bullets
                else f"{pad}    <bullet>{bullet}</bullet>"
            )
        xml.append(f"{pad}  </bullets>")
    if section.subsections:
        xml.append(f"{pad}  <subsections>")
        any_numbered = any(sub.numbered for sub in section.subsections)
        for i, sub in enumerate(section.subsections, 1):
            if section.title is not None or number:
                sub_number = [*number, i] if any_numbered and sub.numbered is not False else number
            else:
                sub_number = number
            xml.append(_xml(sub, indent + 2, sub_number))
        xml.append(f"{pad}  </subsections>")
    xml.append(f"{pad}</section>")
    return "\n".join(xml)


def render_pom(pom: Any, fmt: str = "markdown", path: str = "prompt.pom") -> str:
    """Render a POM section list as the SDK does (`fmt` is params.pom_format: markdown | xml)."""
    if not isinstance(pom, list):
        raise PomError(f"{path}: a POM must be a list of sections")
    sections = []
    for i, raw in enumerate(pom):
        if i > 0 and isinstance(raw, dict) and "title" not in raw:
            raw = {**raw, "title": "Untitled Section"}
        sections.append(_build(raw, f"{path}[{i}]", False))
    any_numbered = any(s.numbered for s in sections)
    counter = 0
    parts = []
    for section in sections:
        number: list[int] = []
        if section.title is not None:
            counter += 1
            if any_numbered and section.numbered is not False:
                number = [counter]
        parts.append(_xml(section, 1, number) if fmt == "xml" else _markdown(section, 2, number))
    if fmt == "xml":
        return "\n".join(['<?xml version="1.0" encoding="UTF-8"?>', "<prompt>", *parts, "</prompt>"])
    return "\n".join(parts)
