"""WebRtcMedia without a network: the played cursor moves when aiortc takes a frame, one per tick."""

from __future__ import annotations

import asyncio

import aioice.ice
import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from mediaserver.audio.frame import AudioFrame
from mediaserver.transport.webrtc import (
    FRAME_SAMPLES,
    MAX_CREDIT_FRAMES,
    MAX_INBOUND_FRAMES,
    SAMPLE_RATE,
    WebRtcMedia,
    restrict_host_addresses,
    rtc_configuration,
    to_mono_int16,
)


def tone(samples: int, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(samples) / rate
    return (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def av_frame(pcm: np.ndarray, rate: int, channels: int = 2) -> av.AudioFrame:
    """Like aiortc's Opus decoder output: packed s16, interleaved channels."""
    interleaved = np.repeat(pcm, channels).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout="stereo" if channels == 2 else "mono")
    frame.sample_rate = rate
    return frame


async def test_frames_count_as_played_only_when_the_sender_takes_them() -> None:
    media = WebRtcMedia()
    mark = media.enqueue(tone(10 * FRAME_SAMPLES), SAMPLE_RATE)
    assert mark == 10 * FRAME_SAMPLES
    for _ in range(5):  # no sender yet (ICE not up): nothing leaves, credits are capped
        media.tick(0, 0.0)
    assert media.playout.played_samples == 0
    taken = [await media.outbound.recv() for _ in range(MAX_CREDIT_FRAMES)]
    assert media.playout.played_samples == MAX_CREDIT_FRAMES * FRAME_SAMPLES
    assert [f.pts for f in taken] == [0, FRAME_SAMPLES, 2 * FRAME_SAMPLES]
    assert all(f.samples == FRAME_SAMPLES and f.sample_rate == SAMPLE_RATE for f in taken)
    # The sender now waits; each tick hands it exactly one frame, at the tick.
    pending = asyncio.ensure_future(media.outbound.recv())
    await asyncio.sleep(0)
    assert not pending.done() and media.playout.played_samples == 3 * FRAME_SAMPLES
    media.tick(0, 0.0)
    frame = await pending
    assert media.playout.played_samples == 4 * FRAME_SAMPLES
    expected = tone(10 * FRAME_SAMPLES)[3 * FRAME_SAMPLES : 4 * FRAME_SAMPLES]
    assert np.array_equal(frame.to_ndarray().reshape(-1), expected)


async def test_pause_keeps_the_cursor_and_stop_ends_the_sender() -> None:
    media = WebRtcMedia()
    media.enqueue(tone(4 * FRAME_SAMPLES), SAMPLE_RATE)
    media.playout.pause()
    media.tick(0, 0.0)
    silent = await media.outbound.recv()
    assert not silent.to_ndarray().any() and media.playout.played_samples == 0
    pending = asyncio.ensure_future(media.outbound.recv())
    await asyncio.sleep(0)
    media.close()
    with pytest.raises(MediaStreamError):
        await pending  # aiortc's sender loop ends on this


def test_enqueue_resamples_tts_audio_once_to_48k() -> None:
    media = WebRtcMedia()
    mark = media.enqueue(tone(22050, 22050), 22050)
    assert abs(mark - SAMPLE_RATE) <= 100  # one second of 22.05 kHz is one second at 48 kHz


def test_inbound_primes_then_one_frame_per_tick_and_conceals_gaps() -> None:
    media = WebRtcMedia()
    got: list[AudioFrame] = []
    media.taps.inbound.subscribe(got.append)
    pcm = tone(3 * FRAME_SAMPLES)
    media.push_inbound(av_frame(pcm[:FRAME_SAMPLES], SAMPLE_RATE))
    media.tick(0, 0.0)
    assert got == []  # priming: one frame is not enough
    media.push_inbound(av_frame(pcm[FRAME_SAMPLES:], SAMPLE_RATE))
    for _ in range(4):
        media.tick(0, 0.0)
    assert [f.start for f in got] == [0, FRAME_SAMPLES, 2 * FRAME_SAMPLES, 3 * FRAME_SAMPLES]
    assert np.array_equal(np.concatenate([f.pcm for f in got[:3]]), pcm)  # stereo mixed back to mono
    assert not got[3].pcm.any() and media.inbound_concealed_frames == 1


def test_inbound_backlog_is_trimmed_from_the_oldest_end() -> None:
    media = WebRtcMedia()
    got: list[AudioFrame] = []
    media.taps.inbound.subscribe(got.append)
    frames = [np.full(FRAME_SAMPLES, i, dtype=np.int16) for i in range(MAX_INBOUND_FRAMES + 5)]
    for pcm in frames:
        media.push_inbound(av_frame(pcm, SAMPLE_RATE, channels=1))
    assert media.inbound_dropped_samples == 5 * FRAME_SAMPLES
    media.tick(0, 0.0)
    assert got[0].pcm[0] == 5  # the oldest five frames went


def test_inbound_at_another_rate_is_resampled_to_ours() -> None:
    media = WebRtcMedia()
    got: list[AudioFrame] = []
    media.taps.inbound.subscribe(got.append)
    for _ in range(10):
        media.push_inbound(av_frame(tone(160, 8000), 8000, channels=1))  # 20 ms of PCMU-rate audio
    for _ in range(8):
        media.tick(0, 0.0)
    assert got and all(f.sample_rate == SAMPLE_RATE and f.samples == FRAME_SAMPLES for f in got)


def test_dtmf_digits_are_checked() -> None:
    media = WebRtcMedia()
    digits: list[str] = []
    media.taps.dtmf.subscribe(lambda d: digits.append(d.digit))
    assert media.receive_dtmf("5") and media.receive_dtmf("#") and media.receive_dtmf("a")
    assert not media.receive_dtmf("x") and not media.receive_dtmf("55") and not media.receive_dtmf("")
    assert digits == ["5", "#", "A"] and media.counters.dtmf_digits == 3


def test_to_mono_rejects_float_audio() -> None:
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), dtype=np.float32), format="flt", layout="mono")
    with pytest.raises(ValueError, match="flt"):
        to_mono_int16(frame)


def test_no_default_stun_server_and_configured_servers_pass_through() -> None:
    from mediaserver.settings import IceServer, WebRtcSettings

    bare = rtc_configuration(WebRtcSettings(True, (), (), "all"))
    assert bare.iceServers == []  # aiortc would add stun.l.google.com for None
    turn = IceServer(("turn:turn.example.org:3478?transport=udp",), "u", "p")
    config = rtc_configuration(WebRtcSettings(True, (), (IceServer(("stun:stun.example.org",)), turn), "relay"))
    assert [s.urls for s in config.iceServers or []] == [["stun:stun.example.org"], list(turn.urls)]
    assert config.iceServers and config.iceServers[1].username == "u" and config.iceServers[1].credential == "p"
    assert config.iceTransportPolicy.value == "relay"


async def test_host_candidates_only_on_configured_addresses() -> None:
    restrict_host_addresses(["127.0.0.1"])
    try:
        connection = aioice.Connection(ice_controlling=False)
        await connection.gather_candidates()
        hosts = {c.host for c in connection.local_candidates}
        await connection.close()
        assert hosts == {"127.0.0.1"}
    finally:
        restrict_host_addresses([])
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, True)
