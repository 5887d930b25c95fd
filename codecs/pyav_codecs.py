"""G.722 and Opus through PyAV (FFmpeg's ``g722`` and ``libopus``), one frame per call.

Theory of operation
-------------------
Each instance owns one FFmpeg encoder and one decoder context for one stream; both codecs
are adaptive, so their state must follow the packet order of that stream.

* ``G722Codec``: 16 kHz PCM, RTP clock 8000 (RFC 3551 §4.5.2). 2 samples -> 1 byte, so a
  20 ms frame is 320 samples -> 160 bytes. The encoder is ADPCM on two QMF sub-bands; its
  round trip delays the audio by the QMF filters (about 22 samples at 16 kHz).
* ``OpusCodec``: 48 kHz mono PCM, ``opus/48000/2`` in SDP (RFC 7587), libopus in ``voip``
  mode at 32 kb/s; a 20 ms frame is 960 samples -> one variable-size packet. The decoded
  audio lags the input by the encoder lookahead (312 samples, 6.5 ms); RTP has no pre-skip
  field, so that delay simply stays in the stream, as with any RTP Opus peer.

One frame in, one payload out: PyAV feeds audio to encoders through its own FIFO, cut to
the context's ``frame_size`` (the g722 default is 320; libopus derives it from
``frame_duration``). We fix ``frame_size`` to the frame length we are given at
construction and accept only frames of exactly that length, so each ``encode`` releases
exactly one FFmpeg frame. Neither encoder holds packets back: the packet for frame k
comes out of the call that fed frame k (the delay is inside the audio, not in packet
buffering), and ``encode`` checks it got exactly one.

An empty packet must never reach ``avcodec_send_packet``: FFmpeg reads it as "drain", and
the decoder then refuses every later packet with EOF. So ``decode(b"")`` returns no
samples without touching FFmpeg. Concealment is our generic faded repeat
(``base.Concealer``): libopus has its own PLC, but FFmpeg only runs it for a packet with
no data, which is exactly that drain signal, so it is unreachable through PyAV.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from mscodecs.base import CodecDecodeError, CodecEncodeError, CodecError, Concealer, Pcm, check_pcm

_OPUS_FRAME_MS = (2.5, 5.0, 10.0, 20.0, 40.0, 60.0)


class _PyAvCodec:
    """An FFmpeg encoder/decoder pair for mono s16 PCM at a fixed frame length."""

    name = ""
    sample_rate = 0
    clock_rate = 0
    channels = 1

    def __init__(
        self, encoder: str, decoders: tuple[str, ...], frame_samples: int, options: dict[str, str], bit_rate: int = 0
    ) -> None:
        self.frame_samples = frame_samples
        self._encoder = _open_encoder(encoder, self.sample_rate, frame_samples, options, bit_rate)
        self._decoder = _open_decoder(decoders, self.sample_rate)
        self._pts = 0
        self._concealer = Concealer()

    def encode(self, pcm: Pcm) -> bytes:
        check_pcm(pcm, self.name)
        if len(pcm) != self.frame_samples:
            raise CodecEncodeError(
                f"{self.name}: frame of {len(pcm)} samples, this encoder takes exactly {self.frame_samples}"
            )
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts  # a steady pts keeps FFmpeg's queue bookkeeping quiet
        self._pts += len(pcm)
        packets = self._encoder.encode(frame)
        if len(packets) != 1:
            # Not a peer's fault and not a caller's: FFmpeg changed how it buffers.
            raise CodecError(f"{self.name}: encoder returned {len(packets)} packets for one frame")
        return bytes(packets[0])

    def decode(self, payload: bytes) -> Pcm:
        if not payload:
            return np.zeros(0, dtype=np.int16)
        try:
            frames = self._decoder.decode(av.Packet(payload))
        except av.FFmpegError as exc:
            raise CodecDecodeError(f"{self.name}: bad payload of {len(payload)} bytes: {exc}") from exc
        parts = [_frame_to_pcm(frame) for frame in frames]
        pcm: Pcm = parts[0] if len(parts) == 1 else np.concatenate(parts or [np.zeros(0, np.int16)])
        self._concealer.remember(pcm)
        return pcm

    def conceal(self, samples: int) -> Pcm:
        return self._concealer.conceal(samples)


class G722Codec(_PyAvCodec):
    """G.722 at 64 kb/s: 16 kHz mono PCM, RTP clock 8000, payload type 9."""

    name = "G722"
    sample_rate = 16000
    clock_rate = 8000

    def __init__(self, frame_ms: int = 20) -> None:
        frame_samples = self.sample_rate * frame_ms // 1000
        # g722enc wants an even frame_size (2 samples per byte) of at most 32768 samples.
        if frame_ms <= 0 or frame_samples % 2 or frame_samples > 32768:
            raise ValueError(f"G.722 frame of {frame_ms} ms is not usable")
        super().__init__("g722", ("g722",), frame_samples, {"frame_size": str(frame_samples)})


class OpusCodec(_PyAvCodec):
    """Opus via libopus: 48 kHz mono PCM, ``opus/48000/2`` in SDP, dynamic payload type."""

    name = "opus"
    sample_rate = 48000
    clock_rate = 48000
    channels = 2  # SDP always says 2 (RFC 7587 §7); the PCM we carry is mono

    def __init__(self, frame_ms: float = 20.0, bitrate: int = 32000, complexity: int | None = None) -> None:
        if frame_ms not in _OPUS_FRAME_MS:
            raise ValueError(f"Opus frame of {frame_ms} ms; allowed: {_OPUS_FRAME_MS}")
        options = {"application": "voip", "frame_duration": f"{frame_ms:g}"}
        if complexity is not None:
            # libopus complexity 0..10 (default 10): ~300 µs a frame at 10, ~130 µs at 0 (docs/costs.md §4).
            options["compression_level"] = str(complexity)
        frame_samples = int(self.sample_rate * frame_ms) // 1000
        # libopus first, because it decodes straight to s16; FFmpeg's native decoder gives float.
        super().__init__("libopus", ("libopus", "opus"), frame_samples, options, bit_rate=bitrate)


def _open_encoder(
    name: str, rate: int, frame_samples: int, options: dict[str, str], bit_rate: int
) -> av.AudioCodecContext:
    ctx = av.CodecContext.create(name, "w")
    assert isinstance(ctx, av.AudioCodecContext)
    ctx.sample_rate = rate
    ctx.layout = "mono"
    ctx.format = "s16"
    ctx.time_base = Fraction(1, rate)
    if bit_rate:
        ctx.bit_rate = bit_rate
    ctx.options = dict(options)
    ctx.open()
    # FFmpeg leaves the options it did not consume in the dict: a silent typo would
    # otherwise give us, say, the "audio" application instead of "voip".
    if ctx.options:
        raise CodecError(f"{name}: FFmpeg ignored options {ctx.options}")
    if ctx.frame_size != frame_samples:
        raise CodecError(f"{name}: frame_size {ctx.frame_size}, wanted {frame_samples}")
    return ctx


def _open_decoder(names: tuple[str, ...], rate: int) -> av.AudioCodecContext:
    for name in names:
        try:
            ctx = av.CodecContext.create(name, "r")
        except av.codec.codec.UnknownCodecError:
            continue  # an FFmpeg build without libopus still has the native decoder
        assert isinstance(ctx, av.AudioCodecContext)
        ctx.sample_rate = rate
        ctx.layout = "mono"  # a stereo Opus stream is downmixed by the decoder itself
        ctx.open()
        return ctx
    raise CodecError(f"no FFmpeg decoder among {names}")


def _frame_to_pcm(frame: av.AudioFrame) -> Pcm:
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T  # one interleaved row -> one row per channel
    if frame.format.name in ("s16", "s16p") and channels == 1:
        pcm: Pcm = data[0]  # the usual case (libopus, g722): already what we want, no copy
        return pcm
    samples = data.mean(axis=0) if channels > 1 else data[0]
    if data.dtype.kind == "f":  # FFmpeg's native opus decoder gives float in [-1, 1]
        samples = samples * 32768.0
    out: Pcm = np.rint(samples).clip(-32768, 32767).astype(np.int16)
    return out
