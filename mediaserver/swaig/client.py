"""The SWAIG webhook client: POST a JSON body to an agent URL and read its JSON reply.

Theory of operation: `post_json(http, url, body, …)` is the one way the server talks to an
agent's `/swaig`, `/post_prompt` or a hook URL (contract §4.2–4.4). The URL's userinfo
(`http://user:pass@host/…`) becomes an `Authorization: Basic` header and is removed from the
URL; the query string (`?__token=…`) is kept byte for byte, since SDK agents authorise each
secure tool by that token. With a signing key (`[swaig] signing_key`) the request carries
`X-SignalWire-Signature` (hex HMAC-SHA1) and `X-SignalWire-Sha256-Signature` (hex
HMAC-SHA256) over `url + raw body`, the URL without userinfo, as the SDK validates them
(signing.py: the URL signed is the one sent, the body the bytes sent).

Nothing here raises for a bad agent: a timeout, a refused connection, a 4xx/5xx, an empty or
non-JSON reply all come back as a `WebhookReply` with `ok=False` and an `error` that names what
went wrong; the caller turns that into a spoken recovery. A 5xx or timeout is retried once
(the platform retries), never a 4xx.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import aiohttp
import yarl

from mediaserver.swaig.datamap import basic_auth
from mediaserver.swaig.signing import sign, signed_target

__all__ = ["WebhookReply", "post_json", "sign", "split_userinfo"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 120.0  # the platform waits up to two minutes for a function
USER_AGENT = "SignalWire-CallFabric/1.0"
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@]*)@")


@dataclass
class WebhookReply:
    ok: bool
    status: int = 0
    data: Any = None  # the parsed JSON reply when ok
    error: str = ""  # why not ok: "timeout after 5.0 s", "HTTP 500", "reply is not JSON: …"
    raw: str = ""


def split_userinfo(url: str) -> tuple[str, str | None]:
    """(URL without userinfo, `Authorization` value or None); the query string is untouched."""
    match = _USERINFO.match(url)
    if not match:
        return url, None
    user, _, password = match.group(2).partition(":")
    return match.group(1) + url[match.end() :], basic_auth(unquote(user), unquote(password))


async def _post_once(
    http: aiohttp.ClientSession, url: str | yarl.URL, raw: str, headers: dict[str, str], timeout_s: float
) -> WebhookReply:
    try:
        async with http.post(
            url, data=raw.encode("utf-8"), headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as response:
            text = (await response.read()).decode("utf-8", errors="replace")
            status = response.status
    except TimeoutError:
        return WebhookReply(False, error=f"timeout after {timeout_s:g} s")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return WebhookReply(False, error=f"request failed: {type(exc).__name__}: {exc}")
    if status >= 400:
        return WebhookReply(False, status, error=f"HTTP {status}", raw=text[:2000])
    if not text.strip():
        return WebhookReply(False, status, error="empty reply", raw=text)
    try:
        data = json.loads(text)
    except RecursionError:
        return WebhookReply(False, status, error="reply is not JSON: nested too deeply", raw=text[:2000])
    except json.JSONDecodeError as exc:
        return WebhookReply(False, status, error=f"reply is not JSON: {exc.msg} at char {exc.pos}", raw=text[:2000])
    except ValueError as exc:  # an integer of more than 4300 digits
        return WebhookReply(False, status, error=f"reply is not usable JSON: {exc}", raw=text[:2000])
    return WebhookReply(True, status, data=data, raw=text[:2000])


async def post_json(
    http: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    signing_key: str = "",
    retries: int = 1,
) -> WebhookReply:
    """POST `body` as JSON to `url`; never raises for a bad peer (see module docstring)."""
    clean_url, auth = split_userinfo(url)
    raw = json.dumps(body, separators=(",", ":"), default=str)
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
    if auth:
        headers["Authorization"] = auth
    target, signature = signed_target(clean_url, raw, signing_key)
    headers.update(signature)
    reply = WebhookReply(False, error="not sent")
    for attempt in range(retries + 1):
        reply = await _post_once(http, target, raw, headers, timeout_s)
        retryable = not reply.ok and (reply.status >= 500 or reply.error.startswith("timeout"))
        if not retryable:
            break
        log.info("webhook %s: %s (attempt %d)", clean_url.split("?")[0], reply.error, attempt + 1)
    return reply
