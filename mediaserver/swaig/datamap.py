"""The DataMap engine (contract §6): SWAIG functions that run inside the server, not at a webhook.

Theory of operation: `run_datamap(function, args, call_data, http)` returns the function's
result object (normally `{"response": …, "action": [...]}`) exactly as mod_openai builds it:

1. Top-level `expressions` against the call data: expand `string`, search `pattern`
   (case-insensitive unless written `/re/flags`); the first one that produces an output wins
   (`nomatch-output` counts as an output).
2. The FIRST eligible webhook (has output or expressions; if `require_args`, one of them is
   present) is requested and no other: its reply (an array becomes `{"array": […]}`) is the new
   template root, with `prompt_vars`, `global_data` and `input` (a copy of the call data, so
   arguments are `${input.args.x}` there). A failure (transport, unparsable reply, an
   `error_keys` key present) falls through to step 3. On success: `foreach`, then the webhook's
   `expressions` (a match is expanded twice), else its `output`.
3. The top-level `output`, expanded against the call data.
4. Else the platform's generic error text.

The request follows the platform: userinfo becomes basic auth (sent only to the same origin),
POST when `method` is post or `params` exist (expanded params are the JSON body; `form_param`
url-encodes them into one form field), anything else is a GET without body, header values are
sent as written, redirects are followed (≤15, the POST resent), non-2xx is not a failure by
itself but adds `http_code`. The engine is a port of the SDK's MIT-licensed simulator
(`cli/execution/datamap_exec.py`); `tests/unit/swaig/test_datamap_differential.py` compares
the two on generated definitions.
"""

from __future__ import annotations

import base64
import logging
import re
from copy import deepcopy
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp

from mediaserver.swaig.templates import (
    MISSING,
    add_item,
    atoi,
    cjson_parse,
    cjson_print,
    delete_item,
    expand,
    expand_json,
    has_item,
    is_true,
    lookup,
    object_item,
    string_item,
    url_encode,
    valueint,
)

__all__ = ["PLATFORM_ERROR_RESPONSE", "build_call_data", "run_datamap"]

log = logging.getLogger(__name__)

PLATFORM_ERROR_RESPONSE = "There was an error processing this request."
INVALID_OUTPUT_RESPONSE = "The function's output was not valid JSON after template expansion."
CONNECT_TIMEOUT_S = 30.0
TOTAL_TIMEOUT_S = 120.0
MAX_REDIRECTS = 15
_DEFAULT_PORTS = {"http": 80, "https": 443}
# curl result codes the platform reports in http_req_result
_CURL_TIMEOUT, _CURL_REDIRECTS, _CURL_CONNECT, _CURL_OTHER = 28, 47, 7, 1


def basic_auth(user: str, password: str) -> str:
    """An `Authorization: Basic` value (userinfo in a URL becomes this header)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def build_call_data(
    function: dict[str, Any], args: dict[str, Any], extra: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """The template root before a webhook answers: (call data, prompt vars, global_data or MISSING).

    `extra` carries call_id, global_data, caller ids… and `prompt_vars`, which merge into the
    root. `meta_data` is global_data overlaid key by key with the function's own meta_data.
    """
    extra = deepcopy(extra)
    prompt_vars = extra.pop("prompt_vars", {})
    if not isinstance(prompt_vars, dict):
        prompt_vars = {}
    data: dict[str, Any] = {}
    name = function.get("function")
    if isinstance(name, str):
        data["function"] = name
    for key, value in extra.items():
        delete_item(data, key)
        data[key] = value
    meta_data: dict[str, Any] = {}
    for source in (object_item(data, "global_data"), function.get("meta_data")):
        if isinstance(source, dict):
            for key, value in source.items():
                delete_item(meta_data, str(key))
                meta_data[key] = deepcopy(value)
    delete_item(data, "meta_data")
    data["meta_data"] = meta_data
    for key, value in prompt_vars.items():
        delete_item(data, key)
        data[key] = deepcopy(value)
    add_item(data, "args", deepcopy(args))
    add_item(data, "input", {})
    return data, prompt_vars, object_item(data, "global_data")


def _regex_match(target: str, pattern: str) -> bool:
    """switch_regex_match() on a `/pattern/flags` expression (i and s honoured)."""
    flags = 0
    if pattern.startswith("/"):
        body = pattern[1:]
        close = body.rfind("/")
        if close < 0:
            return False
        options, pattern = body[close + 1 :], body[:close]
        if "i" in options:
            flags |= re.IGNORECASE
        if "s" in options:
            flags |= re.DOTALL
    try:
        return re.search(pattern, target, flags) is not None
    except re.error:
        log.warning("datamap: bad regex pattern %r", pattern)
        return False


def _expression(item: Any, data: Any) -> Any:
    string = string_item(item, "string")
    pattern = string_item(item, "pattern")
    if string is None:
        # `expr` (a platform-side JS-ish test) is not evaluated: no match, as the SDK simulator
        string = string_item(item, "expr")
        if string is None:
            return MISSING
    output = object_item(item, "output")
    nomatch_output = object_item(item, "nomatch-output")
    if output is MISSING:
        return MISSING
    subject = expand(string, data)
    matched = False
    if pattern is not None:
        matched = _regex_match(subject, pattern if pattern.startswith("/") else f"/{pattern}/i")
    if matched:
        return expand_json(output, data)
    if nomatch_output is not MISSING:
        return expand_json(nomatch_output, data)
    return MISSING


def _expressions(expressions: Any, data: Any) -> Any:
    if isinstance(expressions, list):
        for item in expressions:
            reply = _expression(item, data)
            if reply is not MISSING:
                return reply
        return MISSING
    return _expression(expressions, data)


def _any_present(keys: Any, container: Any) -> bool:
    if keys is None or container is None:
        return False
    if isinstance(keys, list):
        return any(isinstance(key, str) and has_item(container, key) for key in keys)
    return isinstance(keys, str) and has_item(container, keys)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


async def _send(
    http: aiohttp.ClientSession,
    url: str,
    post: bool,
    body: str | None,
    headers: dict[str, str],
    auth: str | None,
    statuses: list[int],
) -> tuple[int, str]:
    origin = _origin(url)
    timeout = aiohttp.ClientTimeout(total=TOTAL_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    for _ in range(MAX_REDIRECTS + 1):
        same_origin = _origin(url) == origin
        # like curl: credentials go only to the origin they were given for
        send_headers = (
            dict(headers)
            if same_origin
            else {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}
        )
        if auth and same_origin:
            send_headers["Authorization"] = auth
        async with http.request(
            "POST" if post else "GET",
            url,
            data=body.encode() if post and body is not None else None,
            headers=send_headers,
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            statuses.append(response.status)
            location = response.headers.get("location")
            if not 300 <= response.status <= 399 or not location:
                raw = await response.read()
                return response.status, raw.decode("utf-8", errors="replace")
        url = urljoin(url, location)
    raise aiohttp.TooManyRedirects(None, (), message=f"more than {MAX_REDIRECTS} redirects")  # type: ignore[arg-type]


async def _request(http: aiohttp.ClientSession, webhook: Any, call_data: dict[str, Any]) -> Any:
    """Send one webhook's request (parse_webhook()); MISSING when it has no url."""
    url = string_item(webhook, "url")
    if url is None:
        return MISSING
    method = string_item(webhook, "method")
    form_param = string_item(webhook, "form_param")
    params = object_item(webhook, "params")
    headers = object_item(webhook, "headers")
    if is_true(object_item(webhook, "input_args_as_params")):
        args = object_item(call_data, "args")
        if args is not MISSING:
            if isinstance(params, dict) and isinstance(args, dict):
                merged = deepcopy(params)
                for key, value in args.items():
                    delete_item(merged, key)
                    merged[key] = deepcopy(value)
                params = merged
            elif params is MISSING:
                params = args
    auth = None
    credentials = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@]*)@", url)
    if credentials:
        user, _, password = credentials.group(2).partition(":")
        auth = basic_auth(unquote(user), unquote(password))
        url = credentials.group(1) + url[credentials.end() :]
    url = expand(url, call_data)
    post = method is not None and method.lower() == "post"
    body = None
    if params is not MISSING:
        post = True  # params are the body, so a webhook with params is a POST
        body = expand(cjson_print(params), call_data, escape_json=True)
        if form_param is not None:
            body = f"{form_param}={url_encode(body)}"
    request_headers = {
        "Content-Type": "application/x-www-form-urlencoded" if form_param is not None else "application/json",
        "User-Agent": "SignalWire-CallFabric/1.0",
    }
    if isinstance(headers, dict):
        for name, value in headers.items():
            if isinstance(value, str):  # sent as written: no template expansion in headers
                request_headers[str(name)] = value
    statuses: list[int] = []
    status, text, curl_error = 0, "", None
    try:
        status, text = await _send(http, url, post, body, request_headers, auth, statuses)
    except TimeoutError:
        curl_error = _CURL_TIMEOUT
    except aiohttp.TooManyRedirects:
        curl_error = _CURL_REDIRECTS
    except (aiohttp.ClientConnectionError, OSError):
        curl_error = _CURL_CONNECT
    except (aiohttp.ClientError, ValueError) as error:
        log.warning("datamap webhook %s failed: %s", url, error)
        curl_error = _CURL_OTHER
    if curl_error is not None:
        status = statuses[-1] if statuses else 0
        log.info("datamap webhook %s: transport error (curl %d)", url, curl_error)
    reply = cjson_parse(text) if text else MISSING
    parse_error = reply is MISSING
    if parse_error or curl_error is not None or not 200 <= status <= 299:
        if reply is MISSING:
            reply = {}
        if isinstance(reply, dict):
            if parse_error:
                reply["parse_error"] = True
                reply["raw_response"] = text
            if curl_error is not None:
                reply["protocol_error"] = True
                reply["http_req_result"] = curl_error
            reply["http_code"] = status
    return reply


def _failed(reply: Any, error_keys: Any) -> bool:
    if has_item(reply, "parse_error") or has_item(reply, "protocol_error"):
        return True
    if error_keys is MISSING:
        return False
    keys = error_keys if isinstance(error_keys, list) else [error_keys]
    return any(isinstance(key, str) and has_item(reply, key) for key in keys)


async def _webhooks(http: aiohttp.ClientSession, webhooks: Any, call_data: dict[str, Any]) -> tuple[Any, Any]:
    """Request the first eligible webhook: (reply, the webhook when it succeeded or None)."""
    reply: Any = MISSING
    match: Any = None
    if isinstance(webhooks, list):
        for item in webhooks:
            require_args = object_item(item, "require_args")
            if require_args is not MISSING and not _any_present(require_args, object_item(call_data, "args")):
                continue
            if object_item(item, "output") is MISSING and object_item(item, "expressions") is MISSING:
                continue
            reply = await _request(http, item, call_data)
            if reply is MISSING:
                continue
            if not _failed(reply, object_item(item, "error_keys")):
                match = item
            break  # a failed webhook does not fall through to the next one
    elif isinstance(webhooks, dict) and (has_item(webhooks, "output") or has_item(webhooks, "expressions")):
        # a single webhook object is never checked for errors (as the platform)
        reply = await _request(http, webhooks, call_data)
        if reply is not MISSING:
            match = webhooks
    if isinstance(reply, list):
        reply = {"array": reply}
    return reply, match


def _foreach(foreach: Any, data: dict[str, Any]) -> None:
    input_key = string_item(foreach, "input_key")
    output_key = string_item(foreach, "output_key")
    append = string_item(foreach, "append")
    if input_key is None or output_key is None or append is None:
        log.info("datamap foreach needs input_key, output_key and append; skipped")
        return
    items = lookup(data, input_key)
    if not isinstance(items, list):
        return
    count = len(items)
    limit = object_item(foreach, "max")
    if limit is not MISSING:
        maximum = atoi(limit) if isinstance(limit, str) else valueint(limit) if isinstance(limit, int | float) else 0
        if maximum > 0:
            count = min(count, maximum)
    parts = []
    for item in items[:count]:
        delete_item(data, "this")
        data["this"] = deepcopy(item)
        parts.append(expand(append, data))
        delete_item(data, "this")
    add_item(data, output_key, "".join(parts))


def _finish(response: Any) -> Any:
    if response is MISSING:
        log.warning("datamap output is not valid JSON after expansion (an object inserted into a string?)")
        return {"error": INVALID_OUTPUT_RESPONSE}
    return response


async def run_datamap(
    function: dict[str, Any],
    args: dict[str, Any],
    call_data: dict[str, Any] | None = None,
    http: aiohttp.ClientSession | None = None,
) -> Any:
    """Run a function's `data_map` (the function object, or a bare data_map) and return its result."""
    if http is None:
        async with aiohttp.ClientSession(trust_env=False) as session:
            return await run_datamap(function, args, call_data, session)
    data_map = function.get("data_map", function)
    data, prompt_vars, global_data = build_call_data(function, args, call_data or {})

    expressions = object_item(data_map, "expressions")
    if expressions is not MISSING:
        reply = _expressions(expressions, data)
        if reply is not MISSING:
            return reply

    webhooks = object_item(data_map, "webhooks")
    if webhooks is not MISSING:
        reply, match = await _webhooks(http, webhooks, data)
        if match is not None:
            root: dict[str, Any] = reply if isinstance(reply, dict) else {}
            add_item(root, "prompt_vars", deepcopy(prompt_vars))
            if global_data is not MISSING:
                add_item(root, "global_data", deepcopy(global_data))
            add_item(root, "input", deepcopy(data))
            foreach = object_item(match, "foreach")
            if foreach is not MISSING:
                _foreach(foreach, root)
            response: Any = MISSING
            processed = False
            webhook_expressions = object_item(match, "expressions")
            if webhook_expressions is not MISSING:
                result = _expressions(webhook_expressions, root)
                if result is not MISSING:
                    response = expand_json(result, root)  # the platform expands a match twice
                    processed = True
            output = object_item(match, "output")
            if response is MISSING and output is not MISSING:
                response = expand_json(output, root)
                processed = True
            if processed:
                return _finish(response)

    output = object_item(data_map, "output")
    if output is not MISSING:
        add_item(data, "prompt_vars", deepcopy(prompt_vars))
        return _finish(expand_json(output, data))
    return {"response": PLATFORM_ERROR_RESPONSE}
