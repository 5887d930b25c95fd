"""SRTP/SRTCP (RFC 3711) for one call, keyed by SDES (``mssip.sdes``), over ``pylibsrtp``.

Two libsrtp sessions: the outbound one with our key protects every RTP and RTCP packet we send,
the inbound one with the peer's key checks and decrypts what arrives. RTP and RTCP share the
call's socket (``is_rtcp`` tells them apart; the header stays in clear in SRTP). A packet that
fails authentication or replay checks raises ``SrtpError``: the caller drops it.
"""

from __future__ import annotations

from pylibsrtp import Error, Policy, Session

from mediaserver.rtp.packet import is_rtcp

__all__ = ["AUTH_TAG_BYTES", "SrtpError", "SrtpSession"]

_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
AUTH_TAG_BYTES = {"AES_CM_128_HMAC_SHA1_80": 10, "AES_CM_128_HMAC_SHA1_32": 4}  # of SRTP; SRTCP: 10 + 4 index


class SrtpError(ValueError):
    """A packet SRTP could not protect or unprotect (bad tag, replay, garbage)."""


def _session(suite: str, key: bytes, ssrc_type: int) -> Session:
    policy = Policy(key=key, ssrc_type=ssrc_type, srtp_profile=_PROFILES[suite])
    policy.allow_repeat_tx = True  # an RFC 4733 end packet may be sent again with its sequence number
    return Session(policy)


class SrtpSession:
    def __init__(self, suite: str, local_key: bytes, remote_key: bytes) -> None:
        if suite not in _PROFILES:
            raise ValueError(f"unsupported SRTP suite {suite!r}")
        self.suite = suite
        self.local_key = local_key
        self.remote_key = remote_key
        try:
            self._out = _session(suite, local_key, Policy.SSRC_ANY_OUTBOUND)
            self._in = _session(suite, remote_key, Policy.SSRC_ANY_INBOUND)
        except Error as exc:
            raise ValueError(f"bad SRTP key: {exc}") from None

    def rekey_inbound(self, remote_key: bytes) -> None:
        """The peer's re-offer brought a new key: what it sends from now on is checked with it."""
        if remote_key != self.remote_key:
            self._in = _session(self.suite, remote_key, Policy.SSRC_ANY_INBOUND)
            self.remote_key = remote_key

    def protect(self, packet: bytes) -> bytes:
        try:
            return self._out.protect_rtcp(packet) if is_rtcp(packet) else self._out.protect(packet)
        except Error as exc:
            raise SrtpError(str(exc)) from None

    def unprotect(self, packet: bytes) -> bytes:
        try:
            return self._in.unprotect_rtcp(packet) if is_rtcp(packet) else self._in.unprotect(packet)
        except Error as exc:
            raise SrtpError(str(exc)) from None
