"""An inbound SIP call sends and plays nothing until its dialog is confirmed (`Call.confirm`):
the ACK of our 2xx, or the peer's first RTP/RTCP datagram. An unACKed INVITE flood costs no media,
and queued audio (the greeting) waits for the confirmation instead of being clipped."""

from __future__ import annotations

import random

import numpy as np

from mediaserver.clock import NS_PER_MS
from mediaserver.kernel.call import Call
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.media_timeout import MediaTimeouts
from mediaserver.kernel.state import CallState
from mediaserver.logs import CallEventLog
from mediaserver.rtp.packet import RtpPacket, is_rtcp
from tests.support.fakes import FakeSignal

FRAME = 20 * NS_PER_MS


def answered_call(*, inbound_sip: bool = True) -> tuple[Call, list[bytes]]:
    sent: list[bytes] = []
    call = Call(
        "cc-1",
        from_uri="sip:a@x",
        to_uri="sip:b@y",
        media=MediaStream(MediaParams("PCMU", 0, 8000, 101), "t", rng=random.Random(3)),
        signal=FakeSignal(),
        send_media=sent.append,
        event_log=CallEventLog("cc-1"),
    )
    if inbound_sip:
        call.awaiting_confirmation = True  # what the SIP front end sets for an inbound INVITE
    call.answer()
    assert call.state is CallState.ACTIVE
    return call, sent


def tick(call: Call, start_ns: int, frames: int) -> int:
    for k in range(frames):
        call.on_tick(start_ns + k * FRAME, 0.0)
    return start_ns + frames * FRAME


def confirmations(call: Call) -> list[str]:
    return [e["reason"] for e in call.events.events if e["event"] == "media_confirmed"]


def test_a_call_is_confirmed_from_the_start_unless_a_front_end_says_otherwise() -> None:
    call, sent = answered_call(inbound_sip=False)  # WebRTC, an outbound leg, a test call
    assert not call.awaiting_confirmation
    tick(call, FRAME, 3)
    assert len([d for d in sent if not is_rtcp(d)]) == 3
    assert confirmations(call) == []


def test_unconfirmed_ticks_send_nothing_and_keep_the_greeting_until_confirm() -> None:
    call, sent = answered_call()
    greeting = np.full(8000, 1000, np.int16)  # 1 s queued by the script right after the answer
    call.enqueue_audio(greeting, 8000)
    playout = call.media.playout
    now = tick(call, FRAME, 100)  # 2 s without the ACK
    assert sent == []
    assert playout.played_samples == 0 and playout.queued_samples == 8000
    call.on_frames_skipped(5)  # a stalled loop skips nothing it has not sent
    call.confirm("ack")
    assert not call.awaiting_confirmation
    tick(call, now, 10)
    packets = [RtpPacket.parse(d) for d in sent if not is_rtcp(d)]
    assert len(packets) == 10 and packets[0].marker  # the greeting's first frame, its talkspurt mark
    assert all(b.timestamp - a.timestamp == 160 for a, b in zip(packets, packets[1:], strict=False))
    assert playout.played_samples == 1600
    assert confirmations(call) == ["ack"]


def test_the_first_rtp_datagram_confirms_and_confirm_counts_once() -> None:
    call, sent = answered_call()
    packet = RtpPacket(0, 1, 160, 0x4321, b"\xff" * 160).serialize()
    now = tick(call, FRAME, 5)
    assert sent == []
    call.receive_media(b"\x00" * 20, now)  # garbage (not RTP version 2) confirms nothing
    call.receive_media(b"", now)
    assert call.awaiting_confirmation
    call.receive_media(packet, now)  # the ACK was lost, the peer is clearly there
    assert not call.awaiting_confirmation
    call.confirm("ack")  # the retransmitted 2xx's ACK comes later: nothing more
    call.receive_media(RtpPacket(0, 2, 320, 0x4321, b"\xff" * 160).serialize(), now + FRAME)
    tick(call, now + FRAME, 1)
    assert len(sent) == 1
    assert confirmations(call) == ["rtp"]


def test_the_media_watchdog_is_not_consulted_before_confirmation() -> None:
    call, _ = answered_call()
    call.watch_media(MediaTimeouts(timeout_s=1))
    tick(call, FRAME, 250)  # 5 s with neither ACK nor RTP: the SIP layer's ACK timeout ends it
    assert call.state is CallState.ACTIVE and call.cause is None
    call.confirm("ack")
    tick(call, 251 * FRAME, 60)  # the watch starts at the first confirmed tick: 1 s of silence
    assert call.cause is not None and call.cause.name == "MEDIA_TIMEOUT"


def test_a_hangup_before_confirmation_sends_no_rtcp_bye() -> None:
    call, sent = answered_call()
    call.hangup()
    assert sent == []
