"""The SDP view of the codec table: `mssip.sdp.CodecSpec`s derived from `mscodecs.SUPPORTED`.

`mssip` stands alone (it knows no codec), so SDP negotiation takes the codecs we run as data;
this module is the one place that turns the codec table into that data, for the SIP front end
(answers) and the dialer (offers). A codec is added in `mscodecs.registry.SUPPORTED` only.
"""

from __future__ import annotations

from collections.abc import Iterable

from mscodecs import CodecInfo, codec_info
from mssip.sdp import CodecSpec


def sdp_spec(info: CodecInfo) -> CodecSpec:
    """How SDP names ``info``: encoding, RTP clock, channels, our fmtp, its static payload type."""
    return CodecSpec(info.name, info.clock_rate, info.channels, info.fmtp, info.default_payload_type)


def sdp_codecs(names: Iterable[str]) -> list[CodecSpec]:
    """The specs of ``names`` (table names, any case), in order; unknown names raise `UnsupportedCodec`."""
    return [sdp_spec(codec_info(name)) for name in names]
