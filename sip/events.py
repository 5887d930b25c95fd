"""Events the endpoint reports to the application (past tense: they have already happened).

Theory of operation: ``SipEndpoint.next_event()`` hands these out in the order they happened.
Every inbound call yields exactly one ``InviteReceived`` first and exactly one ``CallEnded`` last;
in between may come ``CallAcked``, ``ByeReceived`` or ``CallCancelled`` (each at most once).
``MessageRejected`` is for logging: a request the endpoint refused on its own (``responded`` is
False when it could not even address a response and dropped the datagram).
"""

from __future__ import annotations

from dataclasses import dataclass

from mssip.message import Request

Addr = tuple[str, int]

# CallEnded.reason values.
REASON_REMOTE_BYE = "remote bye"  # the caller sent BYE (ByeReceived came first)
REASON_LOCAL_BYE = "local bye"  # our BYE got a final response
REASON_BYE_TIMEOUT = "bye timeout"  # our BYE got no final response within Timer F (64*T1)
REASON_CANCELLED = "cancelled"  # the caller sent CANCEL before we answered (CallCancelled came first)
REASON_REJECTED = "rejected"  # we sent a final non-2xx (reject, or hangup before answer)
REASON_ACK_TIMEOUT = "ack timeout"  # our 200 OK got no ACK within 64*T1; we sent BYE


@dataclass(frozen=True, slots=True)
class SipEvent:
    """Base class of every endpoint event."""


@dataclass(frozen=True, slots=True)
class InviteReceived(SipEvent):
    call_id: str
    request: Request
    offer: bytes | None  # the SDP body, None for a delayed-offer INVITE (then the ACK carries the answer)
    from_uri: str  # URI of the From header, e.g. "sip:alice@example.com"
    to_uri: str  # URI of the To header
    to_user: str  # user part of the To URI ("" when there is none): the dialled number or name
    remote_addr: Addr  # where the INVITE came from (responses and our BYE go there)
    transport: str  # "udp" or "tcp"


@dataclass(frozen=True, slots=True)
class CallAcked(SipEvent):
    call_id: str
    answer: bytes | None = None  # SDP in the ACK: the answer when the INVITE had no offer


@dataclass(frozen=True, slots=True)
class ByeReceived(SipEvent):
    call_id: str


@dataclass(frozen=True, slots=True)
class CallCancelled(SipEvent):
    call_id: str


@dataclass(frozen=True, slots=True)
class CallEnded(SipEvent):
    call_id: str
    reason: str  # one of the REASON_* constants above


@dataclass(frozen=True, slots=True)
class MessageRejected(SipEvent):
    status: int
    reason: str
    addr: Addr
    method: str | None = None  # None when not even the request line could be read
    call_id: str | None = None
    responded: bool = True  # False: nothing could be sent back, the datagram was dropped
