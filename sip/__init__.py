"""mssip: a sans-I/O SIP stack (stdlib only; no sockets, no asyncio, no clock).

Theory of operation: bytes in, events out. ``parse_message``/``serialize`` convert between wire
bytes and ``Request``/``Response``; ``sdp`` parses SDP and negotiates audio; ``SipEndpoint``
combines transactions, dialogs and calls behind four I/O methods driven by the caller's ``now``.
"""

from mssip.endpoint import T1, Addr, SipEndpoint
from mssip.errors import (
    InvalidTransition,
    LocalProtocolError,
    NegotiationError,
    RemoteProtocolError,
    SdpParseError,
    SipError,
    SipParseError,
    UnknownCall,
)
from mssip.events import (
    ByeReceived,
    CallAcked,
    CallAnswered,
    CallCancelled,
    CallEnded,
    CallFailed,
    CallProgress,
    DtmfReceived,
    InviteReceived,
    MessageRejected,
    OfferReceived,
    ReferProgress,
    Registered,
    RegistrationFailed,
    SipEvent,
)
from mssip.headers import CSeq, Headers, Via, parse_cseq, parse_via
from mssip.message import Request, Response, make_response
from mssip.parser import StreamFramer, parse_message
from mssip.sdp import CodecSpec, MediaDescription, NegotiatedMedia, SessionDescription, negotiate, parse_sdp
from mssip.security import AccessPolicy, RateLimiter, Trunk
from mssip.uri import NameAddress, SipUri, parse_name_addr, parse_uri

__all__ = [
    "T1",
    "AccessPolicy",
    "Addr",
    "ByeReceived",
    "CSeq",
    "CallAcked",
    "CallAnswered",
    "CallCancelled",
    "CallEnded",
    "CallFailed",
    "CallProgress",
    "CodecSpec",
    "DtmfReceived",
    "OfferReceived",
    "RateLimiter",
    "ReferProgress",
    "Registered",
    "RegistrationFailed",
    "Trunk",
    "Headers",
    "InvalidTransition",
    "InviteReceived",
    "LocalProtocolError",
    "MediaDescription",
    "MessageRejected",
    "NameAddress",
    "NegotiatedMedia",
    "NegotiationError",
    "RemoteProtocolError",
    "Request",
    "Response",
    "SdpParseError",
    "SessionDescription",
    "SipEndpoint",
    "SipError",
    "SipEvent",
    "SipParseError",
    "SipUri",
    "StreamFramer",
    "UnknownCall",
    "Via",
    "make_response",
    "negotiate",
    "parse_cseq",
    "parse_message",
    "parse_name_addr",
    "parse_sdp",
    "parse_uri",
    "parse_via",
]
