"""G.711 tables against FFmpeg (through PyAV) for every input and every code."""

from __future__ import annotations

import av
import numpy as np
import pytest

from mscodecs.base import FADE_FRAMES, CodecEncodeError
from mscodecs.g711 import PcmaCodec, PcmuCodec, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


def ffmpeg_encode(codec: str, pcm: np.ndarray) -> np.ndarray:
    ctx = av.CodecContext.create(codec, "w")
    assert isinstance(ctx, av.AudioCodecContext)
    ctx.sample_rate, ctx.layout, ctx.format = 8000, "mono", "s16"
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 8000
    packets = ctx.encode(frame) + ctx.encode(None)
    return np.frombuffer(b"".join(bytes(p) for p in packets), dtype=np.uint8)


def ffmpeg_decode(codec: str, codes: np.ndarray) -> np.ndarray:
    ctx = av.CodecContext.create(codec, "r")
    assert isinstance(ctx, av.AudioCodecContext)
    ctx.sample_rate, ctx.layout = 8000, "mono"
    frames = ctx.decode(av.Packet(codes.tobytes()))
    return np.concatenate([f.to_ndarray()[0] for f in frames])


LAWS = [
    pytest.param("pcm_mulaw", ulaw_encode, ulaw_decode, PcmuCodec, id="ulaw"),
    pytest.param("pcm_alaw", alaw_encode, alaw_decode, PcmaCodec, id="alaw"),
]


@pytest.mark.parametrize(("ffname", "encode", "decode", "codec_cls"), LAWS)
def test_encoder_matches_ffmpeg_for_all_65536_inputs(ffname, encode, decode, codec_cls) -> None:
    reference = ffmpeg_encode(ffname, ALL_INT16)
    assert len(reference) == 65536
    ours = encode(ALL_INT16)
    mismatches = np.flatnonzero(ours != reference)
    assert mismatches.size == 0, f"differs at inputs {ALL_INT16[mismatches[:10]]}"
    assert codec_cls().encode(ALL_INT16) == reference.tobytes()


@pytest.mark.parametrize(("ffname", "encode", "decode", "codec_cls"), LAWS)
def test_decoder_matches_ffmpeg_for_all_256_codes(ffname, encode, decode, codec_cls) -> None:
    reference = ffmpeg_decode(ffname, ALL_CODES)
    assert reference.dtype == np.int16 and len(reference) == 256
    np.testing.assert_array_equal(decode(ALL_CODES), reference)
    np.testing.assert_array_equal(codec_cls().decode(ALL_CODES.tobytes()), reference)


@pytest.mark.parametrize(("ffname", "encode", "decode", "codec_cls"), LAWS)
def test_encoder_rounds_to_nearest_level(ffname, encode, decode, codec_cls) -> None:
    # The property that separates FFmpeg's table from a truncating encoder: no other code
    # decodes closer to the input than the one chosen (ties aside), checked for all inputs.
    levels = decode(ALL_CODES).astype(np.int64)
    chosen_error = np.abs(decode(encode(ALL_INT16)).astype(np.int64) - ALL_INT16)
    best_error = np.abs(ALL_INT16.astype(np.int64)[:, None] - levels[None, :]).min(axis=1)
    # FFmpeg decides on a 14-bit grid (4 LSB a cell, floored toward -inf), so an input a few
    # LSB past a midpoint may still get the farther level; a truncating encoder would be off
    # by up to a whole step (1024 LSB in the top segment).
    assert np.all(chosen_error - best_error <= 7)
    assert np.count_nonzero(chosen_error > best_error) < 0.02 * len(ALL_INT16)


@pytest.mark.parametrize(("ffname", "encode", "decode", "codec_cls"), LAWS)
def test_every_code_survives_decode_then_encode(ffname, encode, decode, codec_cls) -> None:
    again = encode(decode(ALL_CODES))
    differing = ALL_CODES[again != ALL_CODES]
    # Only µ-law has two codes for zero (0x7F is "-0", 0xFF is "+0").
    assert set(differing.tolist()) <= {0x7F}


@pytest.mark.parametrize("codec_cls", [PcmuCodec, PcmaCodec])
def test_codec_attributes_and_frame_sizes(codec_cls) -> None:
    codec = codec_cls()
    assert (codec.sample_rate, codec.clock_rate, codec.channels) == (8000, 8000, 1)
    pcm = (np.sin(np.arange(160) / 5) * 10000).astype(np.int16)
    payload = codec.encode(pcm)
    assert len(payload) == 160
    decoded = codec.decode(payload)
    assert decoded.dtype == np.int16 and decoded.shape == (160,)
    # G.711 keeps roughly 8 bits of precision relative to the level.
    assert np.max(np.abs(decoded.astype(int) - pcm)) <= np.max(np.abs(pcm)) / 16


def test_names() -> None:
    assert PcmuCodec().name == "PCMU"
    assert PcmaCodec().name == "PCMA"


@pytest.mark.parametrize("bad", [np.zeros(160, dtype=np.int32), np.zeros(160, dtype=np.float32)])
def test_wrong_dtype_is_rejected_not_reinterpreted(bad: np.ndarray) -> None:
    with pytest.raises(CodecEncodeError):
        PcmuCodec().encode(bad)
    with pytest.raises(CodecEncodeError):
        alaw_encode(bad)


def test_conceal_fades_last_frame_to_silence_and_resets() -> None:
    codec = PcmuCodec()
    assert not codec.conceal(160).any(), "nothing decoded yet: silence"
    loud = np.full(160, 8000, dtype=np.int16)
    decoded = codec.decode(codec.encode(loud))
    first = codec.conceal(160)
    assert first.shape == (160,) and first.dtype == np.int16
    assert first[0] == decoded[0], "the fade starts at full level, without a step"
    frames = [first] + [codec.conceal(160) for _ in range(FADE_FRAMES)]
    levels = [int(f[0]) for f in frames]
    assert levels == sorted(levels, reverse=True) and levels[0] > levels[1] > 0
    assert not frames[-1].any(), f"silent after {FADE_FRAMES} lost frames"
    # Continuity: each concealed frame starts about where the previous one ended.
    for prev, nxt in zip(frames[:-2], frames[1:-1], strict=True):
        assert abs(int(nxt[0]) - int(prev[-1])) <= 0.01 * abs(int(decoded[0])) + 1
    codec.decode(codec.encode(loud))
    assert codec.conceal(160)[0] == decoded[0], "a good frame resets the fade"


def test_conceal_longer_than_the_last_frame_repeats_it() -> None:
    codec = PcmaCodec()
    ramp = np.arange(0, 1600, 10, dtype=np.int16)
    codec.decode(codec.encode(ramp))
    out = codec.conceal(480)
    assert out.shape == (480,)
    assert out[160] < out[159], "wrapped around to the start of the remembered frame"
