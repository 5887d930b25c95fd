"""aioice's STUN parser, made to refuse bad input the way its callers expect.

aioice's ICE socket hands every datagram to `stun.parse_message` and treats a `ValueError` as
"not STUN" (the datagram goes on to DTLS/SRTP). An attribute shorter than its type needs (a
2-byte PRIORITY, say) makes the parser raise `struct.error` instead, which escapes into the
event loop: the datagram is dropped with an "Exception in callback" log line per packet, so a
peer, or anyone who can reach the socket, can flood the log (found by tests/fuzz/test_stun.py).
`harden_stun_parser()` wraps the parser so that such a message is a `ValueError` too. aioice calls
it as `stun.parse_message` (a module attribute), so replacing that attribute covers every caller.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from aioice import stun

_original: Callable[[bytes], stun.Message] | None = None


def harden_stun_parser() -> None:
    """Idempotent: install the wrapper once."""
    global _original
    if _original is not None:
        return
    _original = parse = stun.parse_message

    def parse_message(data: bytes) -> stun.Message:
        try:
            return parse(data)
        except struct.error as exc:  # a truncated attribute value
            raise ValueError(f"STUN attribute too short: {exc}") from exc

    stun.parse_message = parse_message
