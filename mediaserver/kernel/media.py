"""One call's media path: RTP in -> jitter buffer -> decode, and playout -> encode -> RTP out.

Theory of operation: `MediaStream` is driven by two inputs only: `receive_datagram(data,
arrival_ns)` for every packet from the peer, and `tick(now_ns, unix_time)` once per 20 ms
frame from the kernel's ticker. Each tick emits exactly one outbound RTP packet (queued audio,
or silence so that the peer's jitter buffer and NAT bindings stay fed) and pulls exactly one
inbound frame from the jitter buffer, decoding it or concealing a gap. Audio to play is
enqueued at any rate; it is resampled once, per stream, to the codec's rate. The playout
keeps the played-sample cursor: what has really left on the wire.

Consumers never hook the stream: they subscribe to its `taps` (kernel/taps.py). Each decoded
inbound frame goes to `taps.inbound`, each frame handed to RTP to `taps.outbound`, and every
digit, whatever carried it (RFC 4733 here, SIP INFO through `deliver_dtmf` from the front end,
tones in the audio when `inband_dtmf` is on because no telephone-event was negotiated), to
`taps.dtmf` with its source.

No sockets and no clock reads here: the caller passes time in and sends the bytes returned.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mediaserver.audio.frame import AudioFrame, Pcm
from mediaserver.audio.playout import Playout
from mediaserver.kernel.dtmf_inband import InbandDtmfDetector
from mediaserver.kernel.taps import Digit, DigitSource, MediaTaps, SentFrame
from mediaserver.rtp.jitter import Gap, JitterBuffer
from mediaserver.rtp.packet import RtpPacket, RtpParseError, is_rtcp
from mediaserver.rtp.session import RtpSession
from mscodecs import Resampler, make_codec
from mscodecs.dtmf import DtmfParseError, DtmfReceiver, TelephoneEvent, dtmf_payloads

FRAME_MS = 20


@dataclass(frozen=True)
class MediaParams:
    codec: str
    payload_type: int
    clock_rate: int
    dtmf_payload_type: int | None
    jitter_depth_frames: int = 2
    jitter_max_depth_frames: int = 10  # late packets raise the depth up to this (rtp/jitter.py)


@dataclass
class MediaCounters:
    packets_in: int = 0
    packets_out: int = 0
    bad_packets: int = 0
    rtcp_in: int = 0
    rtcp_out: int = 0
    dtmf_digits: int = 0
    last_packet_ns: int | None = None


class DtmfUnsupported(ValueError):
    """`send_dtmf` on a media path that cannot send digits (no telephone-event negotiated,
    or a WebRTC leg); the message says why, and `send_digits` reports it as its failure."""


class CallMedia(Protocol):
    """What a call needs of its media path, whatever the front end (RTP here, WebRTC too).

    `tick` runs once per 20 ms frame and returns datagrams for the front end to send (a front
    end that sends by itself, like aiortc, returns none); `receive_datagram` takes raw packets
    from the peer. Decoded inbound audio, what left and DTMF come out through `taps`.
    `send_dtmf` queues digits to the peer, or raises `DtmfUnsupported` at once.
    """

    sample_rate: int
    playout: Playout
    counters: MediaCounters
    taps: MediaTaps

    @property
    def codec_name(self) -> str: ...
    def receive_datagram(self, data: bytes, arrival_ns: int) -> None: ...
    def enqueue(self, pcm: Pcm, sample_rate: int, *, final: bool = True) -> int: ...
    def stop_playout(self) -> int: ...
    def tick(self, now_ns: int, unix_time: float) -> list[bytes]: ...
    def skip_frames(self, frames: int) -> None: ...
    def goodbye(self) -> bytes | None: ...
    def send_dtmf(
        self, digits: str, duration_ms: int = 100, gap_ms: int = 60, done: Callable[[], None] | None = None
    ) -> None: ...


class MediaStream:
    """The RTP implementation of `CallMedia` (SIP calls)."""

    def __init__(
        self, params: MediaParams, cname: str, rng: random.Random | None = None, *, inband_dtmf: bool = False
    ) -> None:
        self.params = params
        self.codec = make_codec(params.codec, params.clock_rate)
        self.sample_rate = self.codec.sample_rate
        self.frame_pcm = self.sample_rate * FRAME_MS // 1000
        self.frame_rtp = params.clock_rate * FRAME_MS // 1000
        rng = rng or random.Random()
        self.session = RtpSession(rng.getrandbits(32), params.payload_type, params.clock_rate, cname, rng=rng)
        self.jitter = JitterBuffer(
            params.clock_rate,
            self.frame_rtp,
            depth_frames=params.jitter_depth_frames,
            max_depth_frames=max(params.jitter_depth_frames, params.jitter_max_depth_frames),
        )
        self.playout = Playout(self.sample_rate, self.frame_pcm)
        self.counters = MediaCounters()
        self._dtmf = DtmfReceiver()
        self.detector = InbandDtmfDetector() if inband_dtmf else None
        self._resamplers: dict[int, Resampler] = {}
        self._inbound_samples = 0
        self.taps = MediaTaps(self.sample_rate)
        # RFC 4733 out (SWML send_digits): one entry per tick; None = a tick of normal audio.
        self._dtmf_out: deque[tuple[TelephoneEvent, bool] | None] = deque()
        self._dtmf_frames = 0  # ticks spent on the event in flight (its timestamp stays fixed)
        self._dtmf_done: Callable[[], None] | None = None
        # A codec with no state between frames lets the tick skip decoding while nobody hears
        # the caller, and send silence from one cached encoding (see `tick`).
        self._stateless = bool(getattr(self.codec, "stateless", False))
        self._silence_payload: bytes | None = None

    # -- inbound -------------------------------------------------------------------------
    def receive_datagram(self, data: bytes, arrival_ns: int) -> None:
        try:
            if is_rtcp(data):
                self.session.receive_rtcp(data, arrival_ns)
                self.counters.rtcp_in += 1
                return
            pkt = RtpPacket.parse(data)
        except ValueError:
            # A peer's garbage must never stop the call; it is counted and shown in stats.
            self.counters.bad_packets += 1
            return
        self.counters.packets_in += 1
        self.counters.last_packet_ns = arrival_ns
        if self.params.dtmf_payload_type is not None and pkt.payload_type == self.params.dtmf_payload_type:
            self._receive_dtmf(pkt)
            return
        if pkt.payload_type != self.params.payload_type:
            self.counters.bad_packets += 1  # comfort noise or a codec we did not negotiate
            return
        self.session.receive(pkt, arrival_ns)
        self.jitter.push(pkt, arrival_ns)

    def _receive_dtmf(self, pkt: RtpPacket) -> None:
        try:
            event = TelephoneEvent.parse(pkt.payload)
        except DtmfParseError:
            self.counters.bad_packets += 1
            return
        digit = self._dtmf.receive(event, pkt.timestamp)
        if digit is not None:
            self.deliver_dtmf(digit, DigitSource.RFC4733)

    def deliver_dtmf(self, digit: str, source: DigitSource) -> None:
        """A digit from any carrier (the SIP front end calls this for INFO digits)."""
        self.counters.dtmf_digits += 1
        self.taps.dtmf.emit(Digit(digit, source))

    def _pull_inbound(self) -> None:
        slot = self.jitter.pop()
        if slot is None:
            return  # still priming: nothing has arrived yet
        if self._stateless and not self.taps.inbound and self.detector is None:
            # Nobody listens (a call on hold, a play verb): the frame is played out of the jitter
            # buffer, not decoded; the inbound sample count still advances.
            self._inbound_samples += self.frame_pcm
            return
        if isinstance(slot, Gap):
            pcm = self.codec.conceal(self.frame_pcm)
        else:
            try:
                pcm = self.codec.decode(slot.payload)
            except ValueError:
                self.counters.bad_packets += 1
                pcm = self.codec.conceal(self.frame_pcm)
        frame = AudioFrame(np.ascontiguousarray(pcm, dtype=np.int16), self.sample_rate, self._inbound_samples)
        self._inbound_samples += frame.samples
        if self.detector is not None:
            for digit in self.detector.feed(frame.pcm, frame.sample_rate):
                self.deliver_dtmf(digit, DigitSource.INBAND)
        self.taps.inbound.emit(frame)

    # -- outbound ------------------------------------------------------------------------
    def enqueue(self, pcm: Pcm, sample_rate: int, *, final: bool = True) -> int:
        """Queue audio for playout; returns the played-sample mark at its end.

        Chunks of one utterance share a resampler (final=False) so that no click appears at
        the seams; the last chunk (final=True) flushes the filter's tail.
        """
        if sample_rate != self.sample_rate:
            resampler = self._resamplers.get(sample_rate)
            if resampler is None:
                resampler = self._resamplers[sample_rate] = Resampler(sample_rate, self.sample_rate)
            out = resampler.process(pcm)
            if final:
                tail = resampler.flush()
                out = np.concatenate([out, tail]) if len(tail) else out
                del self._resamplers[sample_rate]
            pcm = out
        return self.playout.enqueue(pcm)

    def stop_playout(self) -> int:
        """Drop queued audio (barge-in, hangup); returns how many samples were dropped."""
        self._resamplers.clear()
        return self.playout.clear()

    def send_dtmf(
        self, digits: str, duration_ms: int = 100, gap_ms: int = 60, done: Callable[[], None] | None = None
    ) -> None:
        """Queue RFC 4733 telephone-events (SWML send_digits); `w`/`W` pause 0.5 s / 1 s.

        While an event is out, its packets replace the audio packets one per tick (queued
        audio waits); `done` is called at the tick that sends the last packet. Raises
        `DtmfUnsupported` when the peer negotiated no telephone-event.
        """
        if self.params.dtmf_payload_type is None:
            raise DtmfUnsupported("the peer did not negotiate telephone-event")
        step = self.frame_rtp
        for digit in digits:
            if digit in "wW":
                self._dtmf_out.extend([None] * ((500 if digit == "w" else 1000) // FRAME_MS))
                continue
            events = dtmf_payloads(digit.upper(), self.params.clock_rate * duration_ms // 1000, step)
            self._dtmf_out.extend((event, index == 0) for index, event in enumerate(events))
            self._dtmf_out.extend([None] * max(1, gap_ms // FRAME_MS))
        self._dtmf_done = done

    def _tick_dtmf(self) -> bytes | None:
        item = self._dtmf_out.popleft()
        if not self._dtmf_out and self._dtmf_done is not None:
            done, self._dtmf_done = self._dtmf_done, None
            done()
        if item is None:
            return None
        event, first = item
        session = self.session
        payload = event.serialize()
        assert self.params.dtmf_payload_type is not None
        packet = RtpPacket(
            payload_type=self.params.dtmf_payload_type,
            sequence=session.sequence,
            timestamp=session.timestamp,
            ssrc=session.ssrc,
            payload=payload,
            marker=first,
        )
        session.sequence = (session.sequence + 1) % 65536
        session.packets_sent += 1
        session.octets_sent += len(payload)
        self._dtmf_frames += 1
        if self._dtmf_out and self._dtmf_out[0] is not None and not self._dtmf_out[0][1]:
            return packet.serialize()  # the same event goes on: its timestamp stays
        session.advance(self._dtmf_frames * self.frame_rtp)  # the event's ticks, as audio time
        self._dtmf_frames = 0
        return packet.serialize()

    def tick(self, now_ns: int, unix_time: float) -> list[bytes]:
        """One 20 ms frame: consume one inbound frame, then emit one RTP packet (and RTCP when due).

        Inbound first: a barge-in decided on this tick's caller audio pauses the playout before
        this tick's agent frame is taken, so no agent frame leaves after the decision."""
        self._pull_inbound()
        dtmf = self._tick_dtmf() if self._dtmf_out else None
        if dtmf is not None:
            self.counters.packets_out += 1
            return [dtmf]
        frame = self.playout.next_frame()
        if self.taps.outbound:
            self.taps.outbound.emit(SentFrame(frame.pcm, self.sample_rate, self.playout.played_samples, frame.speech))
        if frame.pcm is self.playout.silence and self._stateless:
            payload = self._silence_payload
            if payload is None:
                payload = self._silence_payload = self.codec.encode(frame.pcm)
        else:
            payload = self.codec.encode(frame.pcm)
        out = [self.session.packetize_bytes(payload, self.frame_rtp, frame.talkspurt_start)]
        self.counters.packets_out += 1
        if self.session.rtcp_due(now_ns):
            out.append(self.session.build_report(now_ns, unix_time))
            self.counters.rtcp_out += 1
        return out

    @property
    def codec_name(self) -> str:
        return self.params.codec

    def skip_frames(self, frames: int) -> None:
        """The ticker fell too far behind: leave a timestamp gap instead of a burst."""
        self.session.advance(frames * self.frame_rtp)

    def goodbye(self) -> bytes | None:
        return self.session.build_bye("call ended")


__all__ = ["CallMedia", "DtmfUnsupported", "MediaCounters", "MediaParams", "MediaStream", "RtpParseError"]
