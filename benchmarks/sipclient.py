"""The SIP/RTP caller of the benchmarks and loopback tests, now part of the product.

It moved to `mediaserver/signaling/sip_caller.py` so that `mediaserver call` can use it; this
module keeps the old import path for the benchmarks and tests.
"""

from __future__ import annotations

from mediaserver.signaling.sip_caller import (
    OFFER_CODECS,
    Addr,
    ReceivedPacket,
    SipCaller,
    SipResponse,
    _reply_200,
    _RtpRecorder,
    _sdp_media_addr,
    parse_response,
)

__all__ = [
    "OFFER_CODECS",
    "Addr",
    "ReceivedPacket",
    "SipCaller",
    "SipResponse",
    "_RtpRecorder",
    "_reply_200",
    "_sdp_media_addr",
    "parse_response",
]
