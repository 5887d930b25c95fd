"""Request signing: the `X-SignalWire-Signature` headers an SDK agent with a signing key checks.

Theory of operation: an SDK agent built with `signing_key` (or `SIGNALWIRE_SIGNING_KEY`)
refuses with 403 every POST to its root (the SWML fetch), `/swaig` and `/post_prompt` that does
not carry a valid signature (SDK `core/security/webhook_middleware.py`). Its check rebuilds the
URL it was POSTed to (scheme, host[:port], path, query; never the userinfo) and verifies
`hex(HMAC-SHA256(key, url + raw_body))` from `X-SignalWire-Sha256-Signature`, else
`hex(HMAC-SHA1(key, url + raw_body))` from `X-SignalWire-Signature`. We send both.

The URL signed must be byte for byte the one the agent sees, so `signed_target` normalises it
once with yarl (the quoting aiohttp would apply, a default port dropped) and the caller sends
that very `yarl.URL`: what was signed is what goes on the wire. The body is signed as the exact
bytes sent, so callers serialise JSON once and POST those bytes (never `json=`).
"""

from __future__ import annotations

import hashlib
import hmac

import yarl

__all__ = ["SHA1_HEADER", "SHA256_HEADER", "sign", "signed_target"]

SHA1_HEADER = "X-SignalWire-Signature"
SHA256_HEADER = "X-SignalWire-Sha256-Signature"


def sign(signing_key: str, url: str, raw_body: str) -> dict[str, str]:
    """The signature headers for a POST of `raw_body` to `url` (a URL without userinfo)."""
    message = (url + raw_body).encode("utf-8")
    key = signing_key.encode("utf-8")
    return {
        SHA1_HEADER: hmac.new(key, message, hashlib.sha1).hexdigest(),
        SHA256_HEADER: hmac.new(key, message, hashlib.sha256).hexdigest(),
    }


def signed_target(url: str, raw_body: str, signing_key: str) -> tuple[yarl.URL, dict[str, str]]:
    """(the URL to send, the headers to add): no headers without a key."""
    target = yarl.URL(url)
    if not signing_key:
        return target, {}
    return target, sign(signing_key, str(target), raw_body)
