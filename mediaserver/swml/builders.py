"""Effect builders: one function per effectful verb, from validated params to an `Effect`.

Theory of operation: the interpreter calls `BUILDERS[verb.name](interpreter, verb)` for every
verb that needs the call. A builder expands the verb's `${…}` templates through the
interpreter (so the effect carries concrete values), converts SWML's units (seconds in
`prompt`/`record` timeouts) into the effect's milliseconds, applies the schema defaults, and
returns one frozen `Effect`. A value of the wrong type after expansion (`max_digits:
"${vars.n}"` giving "abc") raises `SwmlError` with the field's path. `ai` / `amazon_bedrock`
params are passed through unexpanded: inside the AI verb `${…}` is the AI engine's template
language, not JavaScript (docs/swml-contract.md §2). Verbs without a builder become `Unsupported`.

`BUILDERS` are the verbs whose effects this package declares. A verb the kernel adds is
declared in one kernel module with its own effect and builder (kernel/verbs/registry.py,
docs/architecture.md "Add a SWML verb"), handed to `Interpreter(..., builders=...)`; such a
builder uses the public helpers here: `expanded_params`, `integer`, `number`, `boolean`,
`seconds_ms`, and raises `SwmlError` with the field's path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from mediaserver.swml.document import Verb
from mediaserver.swml.effects import (
    Ai,
    AiSidecar,
    Answer,
    Connect,
    Effect,
    Hangup,
    Play,
    Prompt,
    Record,
    RecordCall,
    Request,
    SendDigits,
    SipRefer,
    Sleep,
    StopRecordCall,
    Unsupported,
)
from mediaserver.swml.errors import SwmlError
from mediaserver.swml.play_urls import PlayItem, PlaySay, parse_play_url


class Expander(Protocol):
    """What a builder asks of the interpreter: `${…}` expanded in the call's scope (`path` for errors).

    A protocol, not `Interpreter`, so that this module stays below the interpreter that uses it.
    """

    def expand(self, value: Any, path: str) -> Any: ...


Builder = Callable[[Expander, Verb], Effect]


def integer(value: Any, path: str) -> int:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise SwmlError(path, f"expected an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SwmlError(path, f"expected an integer, got {value!r}")
    return int(value)


def number(value: Any, path: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise SwmlError(path, f"expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SwmlError(path, f"expected a number, got {value!r}")
    return float(value)


def boolean(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise SwmlError(path, f"expected a boolean, got {value!r}")


def seconds_ms(value: Any, path: str) -> int:
    """SWML seconds (a number >= 0, or its string) as whole milliseconds."""
    seconds = number(value, path)
    if seconds < 0:
        raise SwmlError(path, f"expected seconds >= 0, got {value!r}")
    return round(seconds * 1000)


def expanded_params(interp: Expander, verb: Verb) -> dict[str, Any]:
    """The verb's params with every `${…}` expanded ({} when the verb has no object params)."""
    params = interp.expand(verb.params, f"{verb.path}.{verb.name}")
    return params if isinstance(params, dict) else {}


def _answer(interp: Expander, verb: Verb) -> Effect:
    params = expanded_params(interp, verb)
    max_duration = None
    if "max_duration" in params:
        max_duration = integer(params["max_duration"], f"{verb.path}.answer.max_duration")
    return Answer(path=verb.path, max_duration_s=max_duration, codecs=params.get("codecs"))


def _play_items(interp: Expander, urls: list[tuple[Any, str]], params: dict[str, Any]) -> tuple[PlayItem, ...]:
    items: list[PlayItem] = []
    for url, path in urls:
        item = parse_play_url(interp.expand(url, path), path)
        if isinstance(item, PlaySay):
            item = replace(
                item,
                voice=params.get("say_voice"),
                language=params.get("say_language"),
                gender=params.get("say_gender"),
            )
        items.append(item)
    return tuple(items)


def _play(interp: Expander, verb: Verb) -> Effect:
    params = verb.params
    base = f"{verb.path}.play"
    if "url" in params:
        urls = [(params["url"], f"{base}.url")]
    else:
        urls = [(url, f"{base}.urls[{index}]") for index, url in enumerate(params["urls"])]
    # volume / auto_answer may be `${…}` (schema SWMLVar): known, and range-checked, only now.
    volume = number(interp.expand(params.get("volume", 0.0), f"{base}.volume"), f"{base}.volume")
    if not -40 <= volume <= 40:
        raise SwmlError(f"{base}.volume", f"expected a number from -40 to 40, got {volume:g}")
    return Play(
        path=verb.path,
        items=_play_items(interp, urls, params),
        volume_db=volume,
        auto_answer=boolean(
            interp.expand(params.get("auto_answer", True), f"{base}.auto_answer"), f"{base}.auto_answer"
        ),
        status_url=params.get("status_url"),
    )


def _sleep(interp: Expander, verb: Verb) -> Effect:
    path = f"{verb.path}.sleep.duration"
    duration = integer(interp.expand(verb.params["duration"], path), path)
    if duration < -1:
        raise SwmlError(path, f"expected an integer >= -1, got {duration}")
    return Sleep(path=verb.path, duration_ms=duration)


def _hangup(interp: Expander, verb: Verb) -> Effect:
    return Hangup(path=verb.path, reason=verb.params.get("reason", "hangup"))


def _ai(interp: Expander, verb: Verb) -> Effect:
    params = verb.params if isinstance(verb.params, dict) else {}
    return Ai(path=verb.path, verb=verb.name, params=params)


def _ai_sidecar(interp: Expander, verb: Verb) -> Effect:
    return AiSidecar(path=verb.path, params=verb.params if isinstance(verb.params, dict) else {})


def _request(interp: Expander, verb: Verb) -> Effect:
    params = expanded_params(interp, verb)
    base = f"{verb.path}.request"
    headers = params.get("headers", {})
    body = params.get("body")
    if body is not None and not isinstance(body, str | dict):
        body = str(body)
    return Request(
        path=verb.path,
        url=str(params["url"]),
        method=str(params["method"]).upper(),
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
        body=body,
        timeout_ms=seconds_ms(params.get("timeout", 0), f"{base}.timeout"),
        connect_timeout_ms=seconds_ms(params.get("connect_timeout", 0), f"{base}.connect_timeout"),
        save_variables=boolean(params.get("save_variables", False), f"{base}.save_variables"),
    )


def _prompt(interp: Expander, verb: Verb) -> Effect:
    raw = verb.params
    base = f"{verb.path}.prompt"
    play = raw["play"]
    urls = (
        [(play, f"{base}.play")]
        if isinstance(play, str)
        else [(url, f"{base}.play[{index}]") for index, url in enumerate(play)]
    )
    params = interp.expand({k: v for k, v in raw.items() if k != "play"}, base)
    items = _play_items(interp, urls, params)
    speech = any(key.startswith("speech_") for key in params)
    max_digits = integer(params.get("max_digits", 1), f"{base}.max_digits")
    if max_digits < 0:
        raise SwmlError(f"{base}.max_digits", f"expected an integer >= 0, got {max_digits}")
    return Prompt(
        path=verb.path,
        items=items,
        volume_db=number(params.get("volume", 0), f"{base}.volume"),
        max_digits=max_digits,
        terminators=str(params.get("terminators", "")),
        digit_timeout_ms=seconds_ms(params.get("digit_timeout", 5), f"{base}.digit_timeout"),
        initial_timeout_ms=seconds_ms(params.get("initial_timeout", 5), f"{base}.initial_timeout"),
        speech=speech,
        speech_timeout_ms=_optional_ms(params, "speech_timeout", base),
        speech_end_timeout_ms=_optional_ms(params, "speech_end_timeout", base),
        speech_language=params.get("speech_language"),
        speech_hints=tuple(str(h) for h in params.get("speech_hints", ())),
        speech_engine=params.get("speech_engine"),
    )


def _optional_ms(params: dict[str, Any], key: str, base: str) -> int | None:
    return seconds_ms(params[key], f"{base}.{key}") if key in params else None


def _record(interp: Expander, verb: Verb) -> Effect:
    params = expanded_params(interp, verb)
    base = f"{verb.path}.record"
    return Record(
        path=verb.path,
        stereo=boolean(params.get("stereo", False), f"{base}.stereo"),
        format=params.get("format", "wav"),
        direction=params.get("direction", "speak"),
        terminators=str(params.get("terminators", "#")),
        beep=boolean(params.get("beep", False), f"{base}.beep"),
        input_sensitivity=number(params.get("input_sensitivity", 44), f"{base}.input_sensitivity"),
        initial_timeout_ms=seconds_ms(params.get("initial_timeout", 4), f"{base}.initial_timeout"),
        end_silence_timeout_ms=seconds_ms(params.get("end_silence_timeout", 5), f"{base}.end_silence_timeout"),
        max_length_ms=_optional_ms(params, "max_length", base),
        status_url=params.get("status_url"),
    )


def _record_call(interp: Expander, verb: Verb) -> Effect:
    params = expanded_params(interp, verb)
    base = f"{verb.path}.record_call"
    return RecordCall(
        path=verb.path,
        control_id=params.get("control_id"),
        stereo=boolean(params.get("stereo", False), f"{base}.stereo"),
        format=params.get("format", "wav"),
        direction=params.get("direction", "both"),
        beep=boolean(params.get("beep", False), f"{base}.beep"),
        max_length_ms=_optional_ms(params, "max_length", base),
        status_url=params.get("status_url"),
    )


def _stop_record_call(interp: Expander, verb: Verb) -> Effect:
    return StopRecordCall(path=verb.path, control_id=expanded_params(interp, verb).get("control_id"))


def _send_digits(interp: Expander, verb: Verb) -> Effect:
    digits = str(expanded_params(interp, verb)["digits"])
    path = f"{verb.path}.send_digits.digits"
    if not digits or any(d not in "0123456789*#ABCDabcdwW" for d in digits):
        raise SwmlError(path, f"expected DTMF digits 0-9 * # A-D W w, got {digits!r}")
    return SendDigits(path=verb.path, digits=digits)


def _connect(interp: Expander, verb: Verb) -> Effect:
    return Connect(path=verb.path, params=expanded_params(interp, verb))


def _sip_refer(interp: Expander, verb: Verb) -> Effect:
    params = expanded_params(interp, verb)
    return SipRefer(
        path=verb.path, to_uri=str(params["to_uri"]), username=params.get("username"), password=params.get("password")
    )


def unsupported(interp: Expander, verb: Verb) -> Effect:
    return Unsupported(path=verb.path, verb=verb.name, params=verb.params)


BUILDERS: dict[str, Builder] = {
    "answer": _answer,
    "play": _play,
    "sleep": _sleep,
    "hangup": _hangup,
    "ai": _ai,
    "amazon_bedrock": _ai,
    "ai_sidecar": _ai_sidecar,
    "request": _request,
    "prompt": _prompt,
    "record": _record,
    "record_call": _record_call,
    "stop_record_call": _stop_record_call,
    "send_digits": _send_digits,
    "connect": _connect,
    "sip_refer": _sip_refer,
}
