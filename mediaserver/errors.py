"""Kernel-wide errors and hangup causes (the SIP stack has its own errors in mssip)."""

from __future__ import annotations

import enum


class HangupCause(enum.Enum):
    """Why a call ended, in Q.850 terms where one fits (logged and reported per call)."""

    NORMAL_CLEARING = 16
    USER_BUSY = 17
    CALL_REJECTED = 21
    NO_ANSWER = 19
    REMOTE_HANGUP = 1016  # not Q.850: the caller sent BYE or CANCEL
    PROTOCOL_ERROR = 111
    MEDIA_TIMEOUT = 1017
    SWML_ERROR = 1018
    SERVER_SHUTDOWN = 1019
    INTERNAL_ERROR = 41


class MediaServerError(Exception):
    """Base of the errors the kernel raises on purpose."""


class PortPoolExhausted(MediaServerError):
    """No free RTP port pair is left in the configured range."""
