"""SDES (RFC 4568): SRTP master keys in SDP ``a=crypto`` lines, and the secure offer/answer.

Theory of operation: an ``a=crypto:<tag> <suite> inline:<base64 key||salt>[|lifetime][|MKI:len]
[session params]`` line offers one way to protect a stream. We run the two AES-CM suites
(``AES_CM_128_HMAC_SHA1_80`` and ``_32``: a 16-byte key and a 14-byte salt each). A line we cannot
honour (another suite, an MKI, several keys, session parameters, a key of the wrong length, bad
base64) is skipped; when no line of an m-line is usable, the m-line is not answerable securely.

``answer_offer`` answers per ``mode`` (``[sip] media_encryption``):

* ``off``: plain RTP only, as ``mssip.sdp.negotiate`` (a=crypto lines are ignored, RFC 4568 §7.1.3,
  so a best-effort ``RTP/AVP`` + a=crypto offer gets plain RTP; an ``RTP/SAVP``-only offer gets 488);
* ``optional``: an audio m-line with a usable a=crypto is preferred (``RTP/SAVP``, or ``RTP/AVP``
  with keys, which is "best effort" SDES), else plain RTP;
* ``required``: only an audio m-line with a usable a=crypto; nothing else answers (488).

The answer keeps the offer's transport and carries one a=crypto line with the chosen tag and
suite and our own fresh key (``secrets``). ``make_offer_with_keys``/``read_answer_keys`` are the
offerer's side (the dialer). Pure: no I/O, stdlib only; the SRTP itself is the caller's.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from mssip.errors import NegotiationError, SdpParseError
from mssip.sdp import (
    SUPPORTED_PROTOS,
    CodecSpec,
    MediaDescription,
    NegotiatedMedia,
    SessionDescription,
    make_offer,
    negotiate,
    read_answer,
)

__all__ = [
    "KEY_LENGTH",
    "MODES",
    "SECURE_PROTOS",
    "SUITES",
    "Crypto",
    "SrtpKeys",
    "answer_offer",
    "make_offer_with_keys",
    "new_key",
    "parse_crypto",
    "read_answer_keys",
    "usable_crypto",
]

SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")  # our preference when we offer
KEY_LENGTH = 30  # master key (16) + master salt (14) for both AES-CM suites (RFC 4568 §6.2)
SECURE_PROTOS = ("RTP/SAVP", "RTP/SAVPF")
MODES = ("off", "optional", "required")


@dataclass(frozen=True, slots=True)
class Crypto:
    """One a=crypto line: ``str()`` writes its value (what follows ``a=crypto:``)."""

    tag: int
    suite: str
    key: bytes  # master key || master salt
    lifetime: str | None = None  # as written ("2^31"), kept only for the round trip

    def __str__(self) -> str:
        inline = base64.b64encode(self.key).decode("ascii")
        lifetime = f"|{self.lifetime}" if self.lifetime else ""
        return f"{self.tag} {self.suite} inline:{inline}{lifetime}"


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """What the SRTP of a call needs: the suite, our key (what we send), the peer's (what we receive)."""

    suite: str
    local_key: bytes
    remote_key: bytes


def new_key() -> bytes:
    return secrets.token_bytes(KEY_LENGTH)


def parse_crypto(value: str) -> Crypto:
    """One a=crypto value; ``SdpParseError`` for a line we cannot honour (see the module doc)."""
    parts = value.split()
    if len(parts) < 3:
        raise SdpParseError("a=crypto needs a tag, a suite and key parameters")
    if len(parts) > 3:
        raise SdpParseError("a=crypto session parameters are not supported")
    tag_text, suite, key_params = parts
    if not tag_text.isdigit() or len(tag_text) > 9:
        raise SdpParseError("bad a=crypto tag")
    if suite not in SUITES:
        raise SdpParseError(f"unsupported crypto suite {suite!r}")
    if ";" in key_params:
        raise SdpParseError("several a=crypto keys are not supported")
    method, colon, key_info = key_params.partition(":")
    if method != "inline" or not colon:
        raise SdpParseError("a=crypto key method is not inline")
    key_text, *extras = key_info.split("|")
    if len(extras) > 2 or any(":" in extra for extra in extras):
        raise SdpParseError("a=crypto MKI is not supported")
    lifetime = extras[0] if extras else None
    if lifetime is not None and not _valid_lifetime(lifetime):
        raise SdpParseError("bad a=crypto key lifetime")
    try:
        key = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        raise SdpParseError("a=crypto key is not base64") from None
    if len(key) != KEY_LENGTH:
        raise SdpParseError(f"a=crypto key is {len(key)} bytes, not {KEY_LENGTH}")
    return Crypto(int(tag_text), suite, key, lifetime)


def _valid_lifetime(text: str) -> bool:
    if text.startswith("2^"):
        return text[2:].isdigit() and 0 < int(text[2:]) <= 48
    return text.isdigit() and int(text) > 0


def usable_crypto(media: MediaDescription, suites: tuple[str, ...] = SUITES) -> Crypto | None:
    """The first a=crypto line of ``media`` (the offerer's preference) that we can run, or None."""
    for value in media.attribute_values("crypto"):
        try:
            crypto = parse_crypto(value)
        except SdpParseError:
            continue
        if crypto.suite in suites:
            return crypto
    return None


def answer_offer(
    offer: SessionDescription,
    supported: list[CodecSpec],
    local_ip: str,
    local_port: int,
    session_id: int,
    *,
    mode: str,
    local_key: bytes | None = None,
    suites: tuple[str, ...] = SUITES,
) -> tuple[NegotiatedMedia, SrtpKeys | None]:
    """Answer ``offer`` per ``mode``; the keys are None for plain RTP. ``NegotiationError`` = 488.

    ``local_key`` keeps our key across a re-offer (RFC 4568 §7.1.4); a fresh one otherwise."""
    if mode not in MODES:
        raise ValueError(f"media encryption mode must be one of {MODES}, not {mode!r}")
    if mode == "off":
        return negotiate(offer, supported, local_ip, local_port, session_id), None

    def keyed(media: MediaDescription) -> bool:
        return usable_crypto(media, suites) is not None

    try:
        if not any(m.media == "audio" and m.port != 0 and keyed(m) for m in offer.media):
            raise NegotiationError("no audio m-line offers SRTP keys (a=crypto) we can use")
        answer = negotiate(
            offer,
            supported,
            local_ip,
            local_port,
            session_id,
            protos=SUPPORTED_PROTOS + SECURE_PROTOS,
            usable=keyed,
        )
    except NegotiationError:
        if mode == "required":
            raise
        return negotiate(offer, supported, local_ip, local_port, session_id), None
    theirs = usable_crypto(offer.media[answer.media_index], suites)
    assert theirs is not None  # `keyed` admitted only m-lines with one
    ours = Crypto(theirs.tag, theirs.suite, local_key or new_key())
    answer.answer.media[answer.media_index].attributes.insert(0, ("crypto", str(ours)))
    return answer, SrtpKeys(theirs.suite, ours.key, theirs.key)


def make_offer_with_keys(
    codecs: list[CodecSpec],
    local_ip: str,
    local_port: int,
    session_id: int,
    *,
    mode: str,
    suites: tuple[str, ...] = SUITES,
) -> tuple[SessionDescription, tuple[Crypto, ...]]:
    """An offer per ``mode``, with the a=crypto lines it carries (one fresh key per suite).

    ``required`` offers ``RTP/SAVP``; ``optional`` offers ``RTP/AVP`` with a=crypto ("best
    effort" SDES: an answerer without SRTP ignores the keys and plain RTP follows); ``off`` none."""
    if mode not in MODES:
        raise ValueError(f"media encryption mode must be one of {MODES}, not {mode!r}")
    offer = make_offer(codecs, local_ip, local_port, session_id)
    if mode == "off":
        return offer, ()
    cryptos = tuple(Crypto(tag, suite, new_key()) for tag, suite in enumerate(suites, start=1))
    audio = offer.media[0]
    if mode == "required":
        audio.proto = "RTP/SAVP"
    audio.attributes[0:0] = [("crypto", str(crypto)) for crypto in cryptos]
    return offer, cryptos


def read_answer_keys(
    answer: SessionDescription, offered: list[CodecSpec], cryptos: tuple[Crypto, ...], *, mode: str
) -> tuple[NegotiatedMedia, SrtpKeys | None]:
    """What the answer to our offer settled, and its SRTP keys (None: plain RTP).

    The answer's a=crypto must name one of our tags with the same suite. ``NegotiationError``
    for an answer we cannot use: an ``RTP/SAVP`` answer without usable keys, or a plain answer
    when ``mode`` is ``required``."""
    media = read_answer(answer, offered, protos=SUPPORTED_PROTOS + (SECURE_PROTOS if cryptos else ()))
    answered = answer.media[media.media_index]
    ours = {crypto.tag: crypto for crypto in cryptos}
    for value in answered.attribute_values("crypto"):
        try:
            theirs = parse_crypto(value)
        except SdpParseError:
            continue
        mine = ours.get(theirs.tag)
        if mine is not None and mine.suite == theirs.suite:
            return media, SrtpKeys(mine.suite, mine.key, theirs.key)
    if answered.proto.upper() in SECURE_PROTOS:
        raise NegotiationError("SRTP answer without a usable a=crypto for our offer")
    if mode == "required":
        raise NegotiationError("answer refused SRTP, which media_encryption = required needs")
    return media, None
