"""MediaTaps: fan-out in subscription order, independent unsubscription, the shared 16 kHz view,
digits tagged with their source, outbound frames at the played cursor."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mediaserver.audio.frame import AudioFrame
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.taps import LISTEN_FRAME, Digit, DigitSource, MediaTaps, SentFrame, Tap
from mediaserver.rtp.packet import RtpPacket
from mscodecs.dtmf import TelephoneEvent

FRAME_NS = 20_000_000


def stream() -> MediaStream:
    return MediaStream(MediaParams("PCMU", 0, 8000, 101, 1), "t", rng=random.Random(3))


def feed(media: MediaStream, pcm: np.ndarray) -> None:
    """Caller audio as PCMU packets, one tick per 20 ms frame."""
    for n in range(len(pcm) // 160):
        payload = media.codec.encode(pcm[n * 160 : (n + 1) * 160])
        media.receive_datagram(RtpPacket(0, n, n * 160, 9, payload).serialize(), n * FRAME_NS)
        media.tick((n + 1) * FRAME_NS, 0.0)


def test_two_taps_on_one_call_receive_identical_frames() -> None:
    media = stream()
    first: list[AudioFrame] = []
    second: list[AudioFrame] = []
    media.taps.inbound.subscribe(first.append, name="recorder")
    media.taps.inbound.subscribe(second.append, name="agent")
    rng = np.random.default_rng(1)
    feed(media, rng.integers(-8000, 8000, 160 * 20).astype(np.int16))
    assert len(first) == len(second) >= 18
    assert all(a is b for a, b in zip(first, second, strict=True))  # the very same frame objects
    assert [f.start for f in first] == [160 * i for i in range(len(first))]


@given(st.permutations(range(5)), st.integers(min_value=0, max_value=4))
def test_unsubscribing_in_any_order_leaves_the_others_intact(order: list[int], keep: int) -> None:
    tap: Tap[int] = Tap("t")
    got: dict[int, list[int]] = {i: [] for i in range(5)}
    subs = [tap.subscribe(got[i].append, name=str(i)) for i in range(5)]
    removed: set[int] = set()
    for step, victim in enumerate(order):
        if victim == keep:
            continue
        tap.emit(step)
        subs[victim].close()
        subs[victim].close()  # closing twice is harmless
        removed.add(victim)
        tap.emit(100 + step)
        for i in range(5):
            assert (got[i][-1] == 100 + step) is (i not in removed)
    assert tap.subscribers == [str(keep)]
    assert got[keep] == [v for step in range(5) if order[step] != keep for v in (step, 100 + step)]


def test_subscribers_run_in_subscription_order_and_changes_during_an_emit_wait_for_the_next() -> None:
    tap: Tap[str] = Tap("t")
    calls: list[str] = []
    late: list[str] = []
    subs: dict[str, object] = {}

    def a(item: str) -> None:
        calls.append("a" + item)
        if item == "1":
            subs["b"].close()  # type: ignore[attr-defined]
            tap.subscribe(late.append, name="late")

    subs["a"] = tap.subscribe(a, name="a")
    subs["b"] = tap.subscribe(lambda item: calls.append("b" + item), name="b")
    tap.subscribe(lambda item: calls.append("c" + item), name="c")
    tap.emit("0")
    tap.emit("1")
    tap.emit("2")
    assert calls == ["a0", "b0", "c0", "a1", "c1", "a2", "c2"]  # b closed by a: skipped at once
    assert late == ["2"]  # joined during emit 1: hears from the next one


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    tap: Tap[int] = Tap("t")
    got: list[int] = []

    def broken(item: int) -> None:
        raise RuntimeError("recorder bug")

    tap.subscribe(broken, name="broken")
    tap.subscribe(got.append, name="agent")
    tap.emit(1)
    assert got == [1]


def test_subscription_is_a_context_manager() -> None:
    tap: Tap[int] = Tap("t")
    got: list[int] = []
    with tap.subscribe(got.append) as sub:
        tap.emit(1)
        assert sub.active
    tap.emit(2)
    assert got == [1] and not sub.active and not tap


def test_the_16k_view_is_shared_and_exists_only_while_someone_listens() -> None:
    media = stream()
    assert media.taps.inbound.subscribers == []
    a: list[AudioFrame] = []
    b: list[AudioFrame] = []
    sub_a = media.taps.inbound16.subscribe(a.append, name="ai")
    sub_b = media.taps.inbound16.subscribe(b.append, name="sidecar")
    assert media.taps.inbound.subscribers == ["inbound16-view"]  # one resampler for both
    t = np.arange(160 * 10) / 8000
    feed(media, (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16))
    assert a and all(f.sample_rate == 16000 and f.samples == LISTEN_FRAME for f in a)
    assert [f.start for f in a] == [LISTEN_FRAME * i for i in range(len(a))]
    assert all(x is y for x, y in zip(a, b, strict=True))
    sub_a.close()
    assert media.taps.inbound.subscribers == ["inbound16-view"]
    sub_b.close()
    assert media.taps.inbound.subscribers == []  # nobody listens: nothing is resampled


def test_every_digit_reports_its_source() -> None:
    media = stream()
    digits: list[Digit] = []
    media.taps.dtmf.subscribe(digits.append)
    event = TelephoneEvent(event=5, end=True, volume=10, duration=800)
    media.receive_datagram(RtpPacket(101, 1, 4000, 9, event.serialize(), marker=True).serialize(), 0)
    media.deliver_dtmf("#", DigitSource.SIP_INFO)
    assert digits == [Digit("5", DigitSource.RFC4733), Digit("#", DigitSource.SIP_INFO)]


def test_outbound_tap_sees_each_frame_as_it_leaves_with_the_played_cursor() -> None:
    media = stream()
    sent: list[SentFrame] = []
    media.taps.outbound.subscribe(sent.append)
    pcm = np.arange(400, dtype=np.int16)
    media.enqueue(pcm, 8000)
    for n in range(4):
        media.tick((n + 1) * FRAME_NS, 0.0)
    assert [f.played_samples for f in sent] == [160, 320, 400, 400]
    assert [f.speech for f in sent] == [True, True, True, False]
    assert np.array_equal(np.concatenate([f.pcm for f in sent])[:400], pcm)


def test_media_taps_default_to_nobody() -> None:
    taps = MediaTaps(8000)
    assert not taps.inbound and not taps.inbound16 and not taps.outbound and not taps.dtmf
    taps.inbound.emit(AudioFrame(np.zeros(160, np.int16), 8000, 0))  # nobody listening: no error


class CountingVad:
    made = 0

    def __init__(self) -> None:
        CountingVad.made += 1
        self.frames = 0

    def is_speech(self, pcm: np.ndarray) -> bool:
        self.frames += 1
        return bool(np.abs(pcm.astype(np.int32)).max() > 1000)


def test_listeners_share_one_vad_pass_per_frame_and_apply_their_own_floor() -> None:
    CountingVad.made = 0
    media = stream()
    heard_a: list[tuple[int, float, bool]] = []
    heard_b: list[tuple[int, float, bool]] = []
    sub_a = media.taps.listen(lambda v: heard_a.append((v.frame.start, v.level_dbfs, v.voiced)), vad=CountingVad)
    sub_b = media.taps.listen(lambda v: heard_b.append((v.frame.start, v.level_dbfs, v.voiced)), vad=CountingVad)
    assert CountingVad.made == 1 and media.taps.inbound16.subscribers == ["voice"]
    t = np.arange(160 * 10) / 8000
    loud = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    feed(media, np.concatenate([loud, np.zeros(160 * 10, np.int16)]))
    assert heard_a == heard_b and len(heard_a) >= 15
    vad = media.taps._vad
    assert isinstance(vad, CountingVad) and vad.frames == len(heard_a)  # one VAD pass per frame, not per listener
    assert any(voiced for _, _, voiced in heard_a) and not heard_a[-1][2]
    assert heard_a[-1][1] == -120.0  # digital silence has the floor level, not -inf
    sub_a.close()
    sub_b.close()
    assert media.taps.inbound.subscribers == [] and media.taps._vad is None
    media.taps.listen(lambda v: None, vad=CountingVad).close()
    assert CountingVad.made == 2  # a new listening spell starts a fresh VAD
