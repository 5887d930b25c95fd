"""The codecs we speak, as SDP names them, and a factory for per-stream instances.

Theory of operation
-------------------
``SUPPORTED`` maps each canonical SDP encoding name to its ``CodecInfo``: RTP clock rate
and channel count exactly as they appear in ``a=rtpmap`` (``G722/8000``, ``opus/48000/2``),
the static payload type where RFC 3551 assigns one (None for dynamic types; opus
conventionally takes 111), and the PCM ``sample_rate`` the codec consumes and produces.

Lookups ignore case, because SDP encoding names are case-insensitive (RFC 4566 §6; peers
send ``OPUS`` and ``pcmu``). A clock rate, when given, must match the table, except for
L16, whose audio runs at its RTP clock rate: ``L16/8000`` and ``L16/48000`` are both fine.
Anything else raises ``UnsupportedCodec`` (a ``ValueError``), which SDP negotiation
treats as "leave this format out of the answer".

Two frame sizes follow from one info: ``rtp_samples_per_frame`` counts RTP timestamp
units (what a 20 ms packet advances the timestamp by: PCMU 160, G722 160, opus 960) and
``pcm_samples_per_frame`` counts PCM samples (PCMU 160, G722 320, opus 960).

This is the one codec table of the server. SDP offers and answers (``mssip.sdp.CodecSpec``,
built from it by ``mediaserver.signaling.sdp_codecs``), the RTP media stream (``make_codec``),
the SIP front end, the outbound dialer and the WebRTC media all read it; nothing else lists
codecs. Adding a codec: write its ``Codec`` class, then add one row to ``SUPPORTED`` below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from mscodecs.base import Codec
from mscodecs.g711 import PcmaCodec, PcmuCodec
from mscodecs.l16 import L16Codec
from mscodecs.pyav_codecs import G722Codec, OpusCodec

OPUS_SUGGESTED_PAYLOAD_TYPE = 111
"""The dynamic payload type browsers and most softphones offer for opus."""


class UnsupportedCodec(ValueError):
    """An encoding name (or name/clock-rate pair) we cannot encode or decode."""


CodecFactory = Callable[[int, int], Codec]
"""Makes one stream's codec from ``(sample_rate, frame_ms)``."""


def _no_factory(sample_rate: int, frame_ms: int) -> Codec:
    raise UnsupportedCodec("this CodecInfo has no factory")


@dataclass(frozen=True, slots=True)
class CodecInfo:
    name: str  # canonical SDP encoding name
    clock_rate: int  # RTP clock, Hz
    channels: int  # SDP channel count
    default_payload_type: int | None  # static RTP payload type; None = dynamic
    sample_rate: int  # PCM rate of encode()/decode(), Hz
    fmtp: str | None = None  # what our SDP says in a=fmtp for it (what we want to receive); None: no line
    # How it is built, and whether the RTP clock may be any rate (audio at that rate): behaviour,
    # not identity, so two infos that name the same format compare equal.
    factory: CodecFactory = field(default=_no_factory, compare=False, repr=False)
    any_rate: bool = field(default=False, compare=False)


# THE codec table. Adding a codec is one row here (plus its Codec class): SDP, RTP, the SIP
# front end, the dialer and WebRTC all derive from this table.
SUPPORTED: dict[str, CodecInfo] = {
    "PCMU": CodecInfo("PCMU", 8000, 1, 0, 8000, factory=lambda rate, ms: PcmuCodec()),
    "PCMA": CodecInfo("PCMA", 8000, 1, 8, 8000, factory=lambda rate, ms: PcmaCodec()),
    # RFC 3551 §4.5.2: G.722 keeps the 8000 RTP clock of its first spec despite 16 kHz audio.
    "G722": CodecInfo("G722", 8000, 1, 9, 16000, factory=lambda rate, ms: G722Codec(ms)),
    # RFC 7587 §7: always "opus/48000/2" in SDP, whatever is actually sent.
    "opus": CodecInfo("opus", 48000, 2, None, 48000, factory=lambda rate, ms: OpusCodec(ms)),
    # Dynamic, any rate; this entry is the default when no rate is given.
    "L16": CodecInfo("L16", 16000, 1, None, 16000, factory=lambda rate, ms: L16Codec(rate), any_rate=True),
}

_BY_LOWER_NAME = {name.lower(): info for name, info in SUPPORTED.items()}


def codec_info(name: str, clock_rate: int | None = None) -> CodecInfo:
    """The ``CodecInfo`` for an SDP encoding name (and optional clock rate)."""
    info = _BY_LOWER_NAME.get(name.lower())
    if info is None:
        raise UnsupportedCodec(f"unsupported codec {name!r}; supported: {', '.join(SUPPORTED)}")
    if clock_rate is None or clock_rate == info.clock_rate:
        return info
    if info.any_rate:
        if clock_rate <= 0:
            raise UnsupportedCodec(f"unsupported codec {name}/{clock_rate}: rate must be positive")
        return replace(info, clock_rate=clock_rate, sample_rate=clock_rate)
    raise UnsupportedCodec(f"unsupported codec {name}/{clock_rate}: {info.name} uses clock rate {info.clock_rate}")


def make_codec(name: str, clock_rate: int | None = None, *, frame_ms: int = 20) -> Codec:
    """A fresh per-stream codec for an SDP encoding name.

    ``frame_ms`` (the SDP ptime) matters to the frame-based encoders, G.722 and opus, which
    then accept exactly that much PCM per ``encode``; G.711 and L16 take any length.
    """
    info = codec_info(name, clock_rate)
    return info.factory(info.sample_rate, frame_ms)


def rtp_samples_per_frame(info: CodecInfo, frame_ms: int = 20) -> int:
    """RTP timestamp units one frame of ``frame_ms`` spans (PCMU 160, G722 160, opus 960)."""
    return info.clock_rate * frame_ms // 1000


def pcm_samples_per_frame(info: CodecInfo, frame_ms: int = 20) -> int:
    """PCM samples in one frame of ``frame_ms`` (PCMU 160, G722 320, opus 960)."""
    return info.sample_rate * frame_ms // 1000
