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
REASON_DIAL_FAILED = "dial failed"  # our INVITE got a final non-2xx (CallFailed came first)


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
    transport: str  # "udp", "tcp" or "tls"
    identity: str = ""  # who the policy admitted: "trunk:<name>", "user:<name>", "" when open


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
class OfferReceived(SipEvent):
    """A new SDP offer inside a confirmed dialog (re-INVITE or UPDATE): hold, resume, a codec or
    address change. Answer it with ``accept_offer`` (200 with our SDP) or ``reject_offer``; until
    then the dialog refuses further offers with 491."""

    call_id: str
    offer: bytes
    method: str  # "INVITE" or "UPDATE"


@dataclass(frozen=True, slots=True)
class DtmfReceived(SipEvent):
    """A digit sent by SIP INFO (application/dtmf-relay or application/dtmf)."""

    call_id: str
    digit: str  # one of 0-9 * # A-D
    duration_ms: int


@dataclass(frozen=True, slots=True)
class MessageRejected(SipEvent):
    status: int
    reason: str
    addr: Addr
    method: str | None = None  # None when not even the request line could be read
    call_id: str | None = None
    responded: bool = True  # False: nothing could be sent back, the datagram was dropped


# ---- UAC events: outbound INVITEs, registrations, transfers ---------------------------------


@dataclass(frozen=True, slots=True)
class CallProgress(SipEvent):
    """A provisional response to our INVITE (180, 183 with early media SDP...)."""

    call_id: str
    status: int
    reason: str
    sdp: bytes | None = None


@dataclass(frozen=True, slots=True)
class CallAnswered(SipEvent):
    """A 2xx to our INVITE; the endpoint has sent the ACK. ``sdp`` is the answer."""

    call_id: str
    sdp: bytes | None


@dataclass(frozen=True, slots=True)
class CallFailed(SipEvent):
    """Our INVITE ended without a dialog: a final non-2xx after any auth retry, 408 on timeout,
    487 after our CANCEL. ``CallEnded`` follows."""

    call_id: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Registered(SipEvent):
    reg_id: str
    expires_s: int  # what the registrar granted; 0 after an unregister


@dataclass(frozen=True, slots=True)
class RegistrationFailed(SipEvent):
    """A REGISTER got a final error or timed out; the endpoint retries after ``retry_s``."""

    reg_id: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReferProgress(SipEvent):
    """How a transfer we asked for by REFER goes: the REFER's own response, then each NOTIFY's
    sipfrag status. ``final`` is True once the outcome is known (status >= 200 in a sipfrag, or
    a refused REFER)."""

    call_id: str
    status: int
    reason: str
    final: bool
