"""Audio codecs for the media server: G.711, G.722, Opus, L16, resampling, RFC 4733 events.

Installed as ``mscodecs`` (the folder is ``codecs/``, which would shadow the standard
library's ``codecs``). Depends only on numpy, PyAV, soxr and the standard library.
"""

from mscodecs.base import (
    Codec,
    CodecDecodeError,
    CodecEncodeError,
    CodecError,
    Concealer,
    Pcm,
)
from mscodecs.dtmf import (
    DIGITS,
    DtmfParseError,
    DtmfReceiver,
    TelephoneEvent,
    digit_to_event,
    dtmf_payloads,
)
from mscodecs.g711 import PcmaCodec, PcmuCodec, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from mscodecs.l16 import L16Codec
from mscodecs.pyav_codecs import G722Codec, OpusCodec
from mscodecs.registry import (
    OPUS_SUGGESTED_PAYLOAD_TYPE,
    SUPPORTED,
    CodecInfo,
    UnsupportedCodec,
    codec_info,
    make_codec,
    pcm_samples_per_frame,
    rtp_samples_per_frame,
)
from mscodecs.resample import Resampler

__all__ = [
    "DIGITS",
    "OPUS_SUGGESTED_PAYLOAD_TYPE",
    "SUPPORTED",
    "Codec",
    "CodecDecodeError",
    "CodecEncodeError",
    "CodecError",
    "CodecInfo",
    "Concealer",
    "DtmfParseError",
    "DtmfReceiver",
    "G722Codec",
    "L16Codec",
    "OpusCodec",
    "Pcm",
    "PcmaCodec",
    "PcmuCodec",
    "Resampler",
    "TelephoneEvent",
    "UnsupportedCodec",
    "alaw_decode",
    "alaw_encode",
    "codec_info",
    "digit_to_event",
    "dtmf_payloads",
    "make_codec",
    "pcm_samples_per_frame",
    "rtp_samples_per_frame",
    "ulaw_decode",
    "ulaw_encode",
]
