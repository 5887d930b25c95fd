"""SWML over HTTP: fetch a call's document from a URL (docs/swml-contract.md §4.1).

Theory of operation: a route (or `execute`/`transfer`) names an http(s) URL. We POST the call
body `{"call": {...}, "vars": {...}, "envs": {...}, "params": {...}}` as JSON with the same
`call.call_id` on every request of the call (the SDK mints its SWAIG tokens for that id), take
the userinfo of the URL out into an `Authorization: Basic` header (the SDK always requires it;
a redirect to another host does not get it), keep the query string (dynamic agents read it),
and follow 307/308 redirects by POSTing the same body to `Location` (aiohttp does that for
307/308; 301/302/303 would turn into a GET and lose the body, so we follow those ourselves the
same way, a bounded number of times).
The reply must be 200 with a JSON or YAML SWML document; anything else (timeout, refused
connection, 4xx/5xx, a body that is not a valid document) raises `FetchError` with the URL
(without its password) and the reason, which the executor turns into the configured apology
and a clean hangup.

With a signing key (`[swaig] signing_key`, through `SwmlOptions.signing_key`) every POST,
redirects included, carries the SignalWire signature headers over the URL it goes to and the
exact body bytes (`mediaserver.swaig.signing`): an SDK agent with a signing key refuses an
unsigned fetch with 403.

With a restricting `[swml] allowed_hosts` (`SwmlOptions.url_policy`, kernel/url_policy.py) the
URL and every redirect target are checked before they are requested; a refused host is a
`FetchError` like any other (the apology and hangup), with the reason logged once.

`validate_url` serves `mediaserver validate URL`: the same fetch with a sample call body.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp

from mediaserver.kernel.url_policy import UrlPolicy, UrlRefused
from mediaserver.logs import redact
from mediaserver.swaig.signing import signed_target
from mediaserver.swml.document import Document, load_document
from mediaserver.swml.errors import SwmlError

MAX_REDIRECTS = 5
MAX_BODY_BYTES = 10 * 1024 * 1024  # the SDK refuses larger requests (413); a document is far smaller
USER_AGENT = "voice-mediaserver/SWML"


class FetchError(Exception):
    """Fetching SWML failed; the message names the URL (without credentials) and why."""


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """`http://u:p@h/x?q` -> (`http://h/x?q`, {"Authorization": "Basic …"}); no userinfo, no header."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    netloc = f"{host}:{parts.port}" if parts.port else host
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    from urllib.parse import unquote

    user, password = unquote(parts.username), unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return bare, {"Authorization": f"Basic {token}"}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def public_url(url: str) -> str:
    """The URL as it may appear in logs: credentials removed."""
    return split_credentials(url)[0]


def call_body(
    call: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
    envs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {"call": dict(call), "vars": dict(variables or {}), "envs": dict(envs or {}), "params": dict(params or {})}


def sample_call(call_id: str | None = None) -> dict[str, Any]:
    """A plausible inbound SIP call, for `validate URL` (the SDK needs a call_id to mint tokens)."""
    call_id = call_id or str(uuid.uuid4())
    return {
        "call_id": call_id,
        "node_id": "mediaserver",
        "segment_id": call_id,
        "call_session_id": call_id,
        "tag": call_id,
        "call_state": "created",
        "state": "created",
        "direction": "inbound",
        "type": "sip",
        "from": "sip:+15550100@127.0.0.1",
        "to": "sip:validate@127.0.0.1",
        "from_number": "+15550100",
        "to_number": "validate",
        "headers": [],
        "project_id": "",
        "space_id": "",
    }


async def fetch_swml(
    http: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    timeout_s: float,
    *,
    signing_key: str = "",
    policy: UrlPolicy | None = None,
) -> Document:
    """POST the call body to `url` and return the validated document, or raise FetchError.

    `policy` ([swml] allowed_hosts) is asked about the URL and every redirect target first."""
    target, headers = split_credentials(url)
    headers = {
        **headers,
        "Content-Type": "application/json",
        "Accept": "application/json, application/yaml",
        "User-Agent": USER_AGENT,
    }
    shown = public_url(url)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    raw = json.dumps(dict(body))  # one serialisation: the bytes signed are the bytes sent
    try:
        for _ in range(MAX_REDIRECTS + 1):
            if policy is not None:
                await policy.check(target, purpose="swml fetch")
            url_sent, signature = signed_target(target, raw, signing_key)
            async with http.post(
                url_sent,
                data=raw.encode("utf-8"),
                headers={**headers, **signature},
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    moved = urljoin(target, response.headers["Location"])
                    if _origin(moved) != _origin(target):
                        headers.pop("Authorization", None)  # the userinfo was for the first host only
                    target = moved
                    continue
                if response.status != 200:
                    # The agent's words go into the call's events (browsers see them): no credentials
                    text = redact((await response.text(errors="replace"))[:200])
                    raise FetchError(f"{shown}: HTTP {response.status} {response.reason or ''} {text}".strip())
                data = await response.content.read(MAX_BODY_BYTES + 1)
                if len(data) > MAX_BODY_BYTES:
                    raise FetchError(f"{shown}: document larger than {MAX_BODY_BYTES} bytes")
                break
        else:
            raise FetchError(f"{shown}: more than {MAX_REDIRECTS} redirects")
    except UrlRefused as refused:
        where = "" if target == split_credentials(url)[0] else f" (redirected to {public_url(target)})"
        raise FetchError(f"{shown}: refused{where}: {refused}") from None
    except TimeoutError:
        raise FetchError(f"{shown}: no answer within {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise FetchError(f"{shown}: {type(exc).__name__}: {exc}") from None
    try:
        return load_document(data, source=shown)
    except SwmlError as exc:
        raise FetchError(f"{shown}: invalid SWML: {exc}") from None


async def validate_url(url: str, timeout_s: float = 10.0) -> Document:
    """Fetch as a call would; a bad document raises its `SwmlError`s (every one, with paths),
    any other failure `FetchError`."""
    async with aiohttp.ClientSession() as http:
        try:
            return await fetch_swml(http, url, call_body(sample_call()), timeout_s)
        except FetchError as exc:
            # fetch_swml words a document error as one line; `validate` lists each error itself.
            if isinstance(exc.__context__, SwmlError):
                raise exc.__context__ from None
            raise


def swml_call(call: Any) -> dict[str, Any]:
    """`call.*` for SWML and the fetch body, from a kernel Call (docs/swml-contract.md §2, §4.1)."""
    from_number, to_number = _user(call.from_uri), _user(call.to_uri)
    kind = "webrtc" if str(call.info.get("transport", call.info.get("front_end", ""))).lower() == "webrtc" else "sip"
    return {
        "call_id": call.call_id,
        "node_id": "mediaserver",
        "segment_id": call.call_id,
        "call_session_id": call.call_id,
        "tag": call.call_id,
        "call_state": "created",
        "state": "created",
        "direction": "inbound",
        "type": kind,
        "from": call.from_uri,
        "to": call.to_uri,
        "from_number": from_number,
        "to_number": to_number,
        "headers": list(call.info.get("headers", [])),
        "project_id": "",
        "space_id": "",
    }


def _user(uri: str) -> str:
    """`"Bob" <sip:+1555@host;x=y>` -> `+1555`; a bare number stays as it is."""
    text = uri.strip()
    if "<" in text and ">" in text:
        text = text[text.index("<") + 1 : text.index(">")]
    for scheme in ("sips:", "sip:", "tel:"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
            break
    return text.split("@", 1)[0].split(";", 1)[0]
