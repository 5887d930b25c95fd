"""Errors of the SIP core.

Theory of operation: like h11, errors are split by whose fault they are.
``RemoteProtocolError`` means the peer sent something we cannot accept; the endpoint turns it
into a SIP response (400, 488...) or a dropped datagram, never an exception in the event loop.
``LocalProtocolError`` means the application asked for something the protocol state forbids
(answering a call that was already cancelled); the glue catches it and logs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mssip.message import Request, Response


class SipError(Exception):
    """Base of every error raised by mssip."""


class RemoteProtocolError(SipError):
    """The peer sent something that breaks the protocol."""


class SipParseError(RemoteProtocolError):
    """A message could not be parsed; ``reason`` names the fault and can be a reason phrase.

    ``status`` is the response the endpoint should send (400, or 505 for an unknown SIP version).
    ``partial`` is the message as far as it could be read (start line and headers), so that a
    response can still be addressed to the sender; it is None when even that failed.
    """

    def __init__(self, reason: str, *, status: int = 400, partial: Request | Response | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.partial = partial


class NegotiationError(RemoteProtocolError):
    """An SDP offer has nothing we can answer (no audio, no common codec); the glue answers 488."""


class SdpParseError(NegotiationError, ValueError):
    """An SDP body is malformed. A NegotiationError so one ``except`` answers 488; also a
    ValueError, as callers that treat "unreadable input" generically expect."""


class LocalProtocolError(SipError):
    """The application asked for something the protocol state does not allow."""


class InvalidTransition(LocalProtocolError):
    """A state machine got an input its table has no entry for (the message names both)."""


class UnknownCall(LocalProtocolError):
    """A command named a Call-ID the endpoint does not know (or has already forgotten)."""
