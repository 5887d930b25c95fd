"""Params of the call-basics verbs: answer, play, sleep, hangup, label (checked at load).

Theory of operation: one small function per verb takes the params as written and the verb's
JSON path (`sections.main[3].play`) and returns them in canonical form (`null` -> `{}`, `sleep:
500` -> `{"duration": 500}`), or raises `SwmlError` naming the bad field; a verb with several
bad fields raises them all (`SwmlErrors`). `document.py` maps verb names to these in its
`_VALIDATORS` table. Wherever the schema accepts a string expression (`SWMLVar`, `${…}` /
`%{…}`) in place of a number or boolean (`answer.max_duration`, `play.volume`,
`play.auto_answer`, `sleep`), so do these checks; the builders (builders.py) expand and
range-check those values when the verb runs. Pure: stdlib only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mediaserver.swml.errors import SwmlError, raise_all
from mediaserver.swml.play_urls import parse_play_url

__all__ = ["BASIC_VALIDATORS", "HANGUP_REASONS", "is_expression"]

HANGUP_REASONS = ("hangup", "busy", "decline")
_EXPRESSION = re.compile(r"^[$%]\{.*\}$", re.DOTALL)  # schema SWMLVar pattern


def is_expression(value: object) -> bool:
    """True for a whole-value SWML expression such as `${vars.count}` (schema SWMLVar)."""
    return isinstance(value, str) and _EXPRESSION.match(value) is not None


def _answer(params: Any, path: str) -> dict[str, Any]:
    problems: list[SwmlError] = []
    checked = _object(params, path, _ANSWER_KEYS, problems)
    if "max_duration" in checked:
        _collect(problems, _integer, checked["max_duration"], f"{path}.max_duration", 7)
    for key in sorted(_ANSWER_KEYS - {"max_duration"}):
        if key in checked:
            _collect(problems, _string, checked[key], f"{path}.{key}")
    raise_all(problems)
    return checked


_ANSWER_KEYS = frozenset({"max_duration", "codecs", "username", "password", "sip_auth_username", "sip_auth_password"})


def _play(params: Any, path: str) -> dict[str, Any]:
    problems: list[SwmlError] = []
    checked = _object(params, path, _PLAY_KEYS, problems)
    if "url" in checked and "urls" in checked:
        problems.append(SwmlError(path, "give either 'url' or 'urls', not both"))
    elif "url" in checked:
        _collect(problems, _play_url, checked["url"], f"{path}.url")
    elif "urls" in checked:
        urls = checked["urls"]
        if not isinstance(urls, list) or not urls:
            problems.append(SwmlError(f"{path}.urls", "expected a non-empty list of strings"))
        else:
            for index, url in enumerate(urls):
                _collect(problems, _play_url, url, f"{path}.urls[{index}]")
    else:
        problems.append(SwmlError(path, "missing 'url' or 'urls'"))
    if "volume" in checked:
        _collect(problems, _number, checked["volume"], f"{path}.volume", -40, 40)
    auto_answer = checked.get("auto_answer", True)
    if not (isinstance(auto_answer, bool) or is_expression(auto_answer)):
        problems.append(SwmlError(f"{path}.auto_answer", "expected a boolean"))
    for key in ("say_voice", "say_language", "say_gender", "status_url"):
        if key in checked:
            _collect(problems, _string, checked[key], f"{path}.{key}")
    raise_all(problems)
    return checked


_PLAY_KEYS = frozenset(
    {"url", "urls", "volume", "say_voice", "say_language", "say_gender", "auto_answer", "status_url"}
)


def _play_url(url: Any, path: str) -> None:
    # A URL built by an expression ("${greeting_url}", "say:Hi ${name}") is only known at run
    # time; the interpreter parses it after expansion.
    if isinstance(url, str) and ("${" in url or "%{" in url):
        return
    parse_play_url(url, path)


def _sleep(params: Any, path: str) -> dict[str, Any]:
    if isinstance(params, dict):
        problems: list[SwmlError] = []
        checked = _object(params, path, frozenset({"duration"}), problems)
        if "duration" not in checked:
            problems.append(SwmlError(path, "missing 'duration'"))
        else:
            _collect(problems, _integer, checked["duration"], f"{path}.duration", -1)
        raise_all(problems)
        return checked
    _integer(params, path, minimum=-1)
    return {"duration": params}


def _hangup(params: Any, path: str) -> dict[str, Any]:
    problems: list[SwmlError] = []
    checked = _object(params, path, frozenset({"reason"}), problems)
    if "reason" in checked and checked["reason"] not in HANGUP_REASONS:
        problems.append(SwmlError(f"{path}.reason", f"expected one of {', '.join(HANGUP_REASONS)}"))
    raise_all(problems)
    return checked


def _label(params: Any, path: str) -> str:
    if not isinstance(params, str) or not params:
        raise SwmlError(path, "expected a non-empty string")
    return params


BASIC_VALIDATORS: dict[str, Callable[[Any, str], Any]] = {
    "answer": _answer,
    "play": _play,
    "sleep": _sleep,
    "hangup": _hangup,
    "label": _label,
}


# ---- value checks --------------------------------------------------------------------------


def _collect(problems: list[SwmlError], check: Callable[..., Any], *args: Any) -> None:
    """Run one field check; its error joins the verb's list instead of ending the verb."""
    try:
        check(*args)
    except SwmlError as exc:
        problems.append(exc)


def _object(params: Any, path: str, allowed: frozenset[str], problems: list[SwmlError]) -> dict[str, Any]:
    """The params as a dict; each unknown key joins `problems` and the known ones are still checked."""
    if params is None:  # YAML "- hangup:" parses to null; it means "no params"
        return {}
    if not isinstance(params, dict):
        raise SwmlError(path, "expected an object")
    problems.extend(SwmlError(f"{path}.{key}", "unknown parameter") for key in params if key not in allowed)
    return dict(params)


def _integer(value: Any, path: str, minimum: int) -> None:
    if is_expression(value):
        return
    # bool is an int subclass in Python; JSON true is not a number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SwmlError(path, "expected an integer")
    if value < minimum:
        raise SwmlError(path, f"expected an integer >= {minimum}, got {value}")


def _number(value: Any, path: str, minimum: float, maximum: float) -> None:
    if is_expression(value):  # schema: anyOf [number, SWMLVar]; the builder checks the range
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SwmlError(path, "expected a number")
    if not minimum <= value <= maximum:
        raise SwmlError(path, f"expected a number from {minimum} to {maximum}, got {value}")


def _string(value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise SwmlError(path, "expected a string")
