"""`request` (an HTTP call with its result variables) and SWML fetches for execute/transfer.

Theory of operation: `request` sends one HTTP request with aiohttp (userinfo of the URL as
Basic auth, `body` as JSON when it is an object) and reports what SWML scripts read
(docs/swml-contract.md §2): request_url, request_result success|failed (also return_value),
request_response_code, request_response_headers (lower-case names, at most 64),
request_response_body (at most 64 KB of text), and with save_variables the parsed JSON reply as
request_response. A transport error or timeout is `failed` with the reason logged, never an
exception: a script branches on request_result. `fetch` POSTs the call body for
`execute`/`transfer` to a URL (kernel/fetch.py) with the same call_id as every other request.

With a restricting `[swml] allowed_hosts` (`options.url_policy`, kernel/url_policy.py) a
`request` URL and each redirect it gets are checked first (the redirects are then followed
here, at most `MAX_REDIRECTS`, not by aiohttp, so that none escapes the check); a refused one
is `failed` like a transport error, its reason in `request_failed`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from mediaserver.events import RequestDone, RequestFailed, RequestNotJson, SwmlFetch, SwmlFetchFailed
from mediaserver.kernel.call import Call
from mediaserver.kernel.fetch import FetchError, call_body, fetch_swml, public_url, split_credentials
from mediaserver.kernel.url_policy import UrlRefused
from mediaserver.kernel.verbs.context import VerbContext
from mediaserver.swml.effects import FetchFailed, FetchSwml, Request, SwmlFetched, VerbResult

MAX_BODY_CHARS = 64 * 1024
MAX_HEADERS = 64
DEFAULT_TIMEOUT_S = 30.0
MAX_REDIRECTS = 5  # followed by hand under a restricting allow-list (aiohttp's own default is 10)
REDIRECTS = (301, 302, 303, 307, 308)


async def request(ctx: VerbContext, call: Call, effect: Request) -> VerbResult:
    try:
        url, auth = split_credentials(effect.url)
        shown = public_url(effect.url)
    except ValueError as exc:  # "http://[::1/x": urlsplit refuses it; the verb fails, the call goes on
        return _failed(call, effect, {"request_url": ""}, f"bad URL: {exc}")
    variables: dict[str, Any] = {"request_url": shown}
    headers = {**auth, **effect.headers}
    kwargs: dict[str, Any] = {}
    if isinstance(effect.body, dict):
        kwargs["json"] = effect.body
    elif effect.body is not None:
        kwargs["data"] = effect.body.encode()
    total = effect.timeout_ms / 1000 if effect.timeout_ms else DEFAULT_TIMEOUT_S
    connect = effect.connect_timeout_ms / 1000 if effect.connect_timeout_ms else None
    timeout = aiohttp.ClientTimeout(total=total, connect=connect)
    if ctx.http is None:  # the one optional service: an aiohttp session belongs to the app (services.py)
        return _failed(call, effect, variables, "no HTTP client configured")
    policy = ctx.options.url_policy
    method, checked = effect.method, policy.restricts
    try:
        for _ in range(MAX_REDIRECTS + 1):
            if checked:
                await policy.check(url, purpose="request")
            async with ctx.http.request(
                method, url, headers=headers, timeout=timeout, allow_redirects=not checked, **kwargs
            ) as response:
                if checked and response.status in REDIRECTS and "Location" in response.headers:
                    moved = urljoin(url, response.headers["Location"])
                    if urlsplit(moved)[:2] != urlsplit(url)[:2]:
                        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                    if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                        method, kwargs = "GET", {}  # what aiohttp (and browsers) do
                    url = moved
                    continue
                raw = await response.content.read(MAX_BODY_CHARS * 4)
                text = raw.decode(response.charset or "utf-8", errors="replace")[:MAX_BODY_CHARS]
                variables["request_response_code"] = response.status
                variables["request_response_headers"] = {
                    name.lower(): value for name, value in list(response.headers.items())[:MAX_HEADERS]
                }
                variables["request_response_body"] = text
                break
        else:
            return _failed(call, effect, variables, f"more than {MAX_REDIRECTS} redirects")
    except UrlRefused as refused:
        return _failed(call, effect, variables, f"refused: {refused}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return _failed(call, effect, variables, f"{type(exc).__name__}: {exc}")
    ok = 200 <= variables["request_response_code"] < 300
    variables["request_result"] = variables["return_value"] = "success" if ok else "failed"
    if effect.save_variables:
        try:
            variables["request_response"] = json.loads(text)
        except json.JSONDecodeError:
            call.events.emit(RequestNotJson(path=effect.path, url=shown))
    call.events.emit(RequestDone(path=effect.path, url=shown, status=variables["request_response_code"]))
    return VerbResult(variables)


def _failed(call: Call, effect: Request, variables: dict[str, Any], reason: str) -> VerbResult:
    call.events.emit(RequestFailed(path=effect.path, url=variables["request_url"], error=reason))
    variables["request_result"] = variables["return_value"] = "failed"
    return VerbResult(variables)


async def fetch(ctx: VerbContext, call: Call, effect: FetchSwml) -> SwmlFetched | FetchFailed:
    if ctx.http is None:
        return FetchFailed("no HTTP client configured")
    body = call_body(ctx.interp.call, effect.variables, ctx.interp.envs, effect.params)
    try:
        call.events.emit(SwmlFetch(path=effect.path, url=public_url(effect.url), purpose=effect.purpose))
        document = await fetch_swml(
            ctx.http,
            effect.url,
            body,
            ctx.options.fetch_timeout_s,
            signing_key=ctx.options.signing_key,
            policy=ctx.options.url_policy,
        )
    except FetchError as exc:
        call.events.emit(SwmlFetchFailed(path=effect.path, error=str(exc)))
        return FetchFailed(str(exc))
    except ValueError as exc:  # "http://h:99999/", "http://[::1/": the URL cannot be parsed
        call.events.emit(SwmlFetchFailed(path=effect.path, error=f"bad URL: {exc}"))
        return FetchFailed(f"bad URL: {exc}")
    return SwmlFetched(document)
