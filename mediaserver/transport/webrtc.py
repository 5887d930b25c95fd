"""WebRTC media for the kernel: a `CallMedia` whose wire is an aiortc peer connection.

Theory of operation
-------------------
aiortc owns the RTP, SRTP, Opus and ICE; this module only trades 20 ms frames with it, so that
a browser call looks to the kernel exactly like a SIP call (docs/design.md §4).

Outbound. aiortc's RTP sender loops on `await track.recv()`; our `PlayoutTrack` hands it one
frame per kernel tick and never paces by itself. On every `WebRtcMedia.tick` the track gets
one frame credit. If the sender is already waiting in `recv()` (the normal case) the playout
frame is pulled right then and handed over; otherwise the credit is kept (at most
`MAX_CREDIT_FRAMES`) and the next `recv()` pulls its frame at once. Either way the playout's
played-sample cursor moves when aiortc takes the frame, never earlier: before the peer
connection is up nobody takes frames, so queued audio waits instead of being "played" into
the void, and barge-in / heard-text see what really left (docs/design.md §4). The cap on credits
bounds the burst after a stall to a few frames, as the RTP pacer does.

Inbound. A task in the signalling glue reads decoded frames from the remote track and calls
`push_inbound`; they are mixed to mono, resampled once (only when the decoder's rate differs
from ours: Opus decodes at 48 kHz, our rate) and buffered. Each tick pulls exactly one 20 ms
`AudioFrame` for `taps.inbound`, once two frames are buffered (priming, like the RTP jitter
buffer); after that a starved tick gets silence so that the inbound clock never stops, and
a backlog beyond `MAX_INBOUND_FRAMES` is trimmed from the oldest end to bound latency.

DTMF from the page arrives as data-channel messages; the glue calls `receive_dtmf`, which
emits each digit on `taps.dtmf`. Digits cannot go the other way: aiortc sends no RFC 4733
telephone-events, so `send_dtmf` raises `DtmfUnsupported` (SWML send_digits then fails
cleanly). Every frame handed to aiortc goes to `taps.outbound` as it goes, and the played
cursor after it to `on_played` (the page's heard transcript); `on_playout_cleared` hears
`stop_playout`.

ICE: `rtc_configuration` builds aiortc's configuration from an `IceConfig` (the `[webrtc]`
settings section satisfies it; this module does not import settings) and always
passes an explicit server list, because aiortc falls back to a public Google STUN server
when given none. `restrict_host_addresses` limits host candidates to configured addresses.

Closing. `close_peer` ends a peer connection so that the peer learns of it at once. aiortc's
`close()` sends an SCTP ABORT and a DTLS close_notify, but Chromium counts a DTLS transport
closed by the peer as still connected (its aggregate state treats "closed" like "connected"),
so a plain WHIP client would wait for ICE consent freshness to expire (about 7 s to
"disconnected", 17 s to "failed"). A DTLS fatal alert is the explicit consent revocation of
RFC 7675 §5.2; OpenSSL sends no alert on request, so for a libwebrtc peer (Chromium, Safari;
known by its certificate's name) `revoke_dtls` starts a renegotiation, which BoringSSL refuses
with a fatal alert (unexpected_message) before it drops the DTLS transport: the peer connection
goes "failed" on the spot. Other peers get the plain close: OpenSSL ones (aiortc, GStreamer)
honour close_notify, and would answer a renegotiation with a mere warning, which leaves our
side mid-handshake. Before all that, whatever the data channel still holds (the call's last
events, the hangup message) is given a moment to get out and be acknowledged (`drain_sctp`),
because the close discards it.
"""

from __future__ import annotations

import asyncio
import fractions
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import aioice.ice
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from mediaserver.audio.frame import AudioFrame, Pcm, samples_per_frame
from mediaserver.audio.playout import Playout
from mediaserver.kernel.media import DtmfUnsupported, MediaCounters
from mediaserver.kernel.taps import Digit, DigitSource, MediaTaps, SentFrame
from mediaserver.transport.stun_guard import harden_stun_parser
from mscodecs import Resampler, codec_info

harden_stun_parser()  # before any ICE socket exists (stun_guard.py says why)

OPUS = codec_info("opus")  # aiortc runs the codec; its facts come from the one codec table
SAMPLE_RATE = OPUS.sample_rate  # Opus's native rate (48 kHz): inbound needs no resampling, only a mono mix
FRAME_SAMPLES = samples_per_frame(SAMPLE_RATE)
MAX_CREDIT_FRAMES = 3  # frames aiortc may take back to back after a stall
PRIME_FRAMES = 2
MAX_INBOUND_FRAMES = 10  # 200 ms of backlog at most
DTMF_DIGITS = frozenset("0123456789*#ABCD")
DRAIN_TIMEOUT_S = 1.0  # the most a close waits for the data channel's last messages
LIBWEBRTC_CERTIFICATE_NAME = "WebRTC"  # the subject of libwebrtc's self-signed DTLS certificates


class PlayoutTrack(MediaStreamTrack):
    """The outbound audio track: one playout frame per kernel tick, taken when aiortc asks."""

    kind = "audio"

    def __init__(self, media: WebRtcMedia) -> None:
        super().__init__()
        self._media = media
        self._credits = 0
        self._waiter: asyncio.Future[av.AudioFrame] | None = None
        self._pts = 0

    def grant(self) -> None:
        """One tick's frame: hand it to a waiting sender now, or keep the credit."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_result(self._take())
        else:
            self._credits = min(self._credits + 1, MAX_CREDIT_FRAMES)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError  # aiortc's sender ends its loop on this
        if self._credits > 0:
            self._credits -= 1
            return self._take()
        self._waiter = asyncio.get_running_loop().create_future()
        return await self._waiter

    def _take(self) -> av.AudioFrame:
        media = self._media
        frame = media.playout.next_frame()
        media.counters.packets_out += 1
        if media.on_played is not None:
            media.on_played(media.playout.played_samples)
        if media.taps.outbound:
            media.taps.outbound.emit(SentFrame(frame.pcm, SAMPLE_RATE, media.playout.played_samples, frame.speech))
        out = av.AudioFrame.from_ndarray(frame.pcm.reshape(1, -1), format="s16", layout="mono")
        out.sample_rate = SAMPLE_RATE
        out.time_base = fractions.Fraction(1, SAMPLE_RATE)
        out.pts = self._pts
        self._pts += FRAME_SAMPLES
        return out

    def stop(self) -> None:
        super().stop()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(MediaStreamError())


class WebRtcMedia:
    """The aiortc implementation of `CallMedia` (browser and WHIP calls)."""

    codec_name = OPUS.name

    def __init__(self) -> None:
        self.sample_rate = SAMPLE_RATE
        self.playout = Playout(SAMPLE_RATE, FRAME_SAMPLES)
        self.counters = MediaCounters()
        self.outbound = PlayoutTrack(self)
        self.taps = MediaTaps(SAMPLE_RATE)
        self.inbound_concealed_frames = 0
        self.inbound_dropped_samples = 0
        self._out_resamplers: dict[int, Resampler] = {}
        self._in_resamplers: dict[int, Resampler] = {}
        self._inbound: deque[Pcm] = deque()
        self._inbound_queued = 0
        self._inbound_samples = 0
        self._primed = False
        self.on_played: Callable[[int], None] | None = None  # the played cursor, after each frame taken
        self.on_playout_cleared: Callable[[], None] | None = None

    # -- outbound ------------------------------------------------------------------------
    def enqueue(self, pcm: Pcm, sample_rate: int, *, final: bool = True) -> int:
        """Queue audio for playout (resampled once to 48 kHz); returns its end mark."""
        if sample_rate != SAMPLE_RATE:
            resampler = self._out_resamplers.get(sample_rate)
            if resampler is None:
                resampler = self._out_resamplers[sample_rate] = Resampler(sample_rate, SAMPLE_RATE)
            out = resampler.process(pcm)
            if final:
                tail = resampler.flush()
                out = np.concatenate([out, tail]) if len(tail) else out
                del self._out_resamplers[sample_rate]
            pcm = out
        return self.playout.enqueue(pcm)

    def stop_playout(self) -> int:
        self._out_resamplers.clear()
        dropped = self.playout.clear()
        if self.on_playout_cleared is not None:
            self.on_playout_cleared()
        return dropped

    def tick(self, now_ns: int, unix_time: float) -> list[bytes]:
        """One 20 ms frame: one frame credit to the outbound track, one inbound frame out."""
        self.outbound.grant()
        self._pull_inbound(now_ns)
        return []  # aiortc sends by itself

    def skip_frames(self, frames: int) -> None:
        """The ticker stalled: aiortc stamps frames by count, so nothing to skip here."""

    def goodbye(self) -> bytes | None:
        return None  # the peer connection's close sends the RTCP BYE

    def receive_datagram(self, data: bytes, arrival_ns: int) -> None:
        """Not used: aiortc receives the packets; kept for the `CallMedia` protocol."""

    def send_dtmf(
        self, digits: str, duration_ms: int = 100, gap_ms: int = 60, done: Callable[[], None] | None = None
    ) -> None:
        """Always refused: aiortc has no telephone-event sender, and tones in the Opus audio
        would be unreliable; the page gets digits only from its own keypad."""
        raise DtmfUnsupported("WebRTC legs carry no RFC 4733 telephone-events: digits cannot be sent to the peer")

    # -- inbound -------------------------------------------------------------------------
    def push_inbound(self, frame: av.AudioFrame) -> None:
        """A decoded frame from aiortc's remote track (any rate, mono or stereo)."""
        pcm = to_mono_int16(frame)
        rate = int(frame.sample_rate)
        if rate != SAMPLE_RATE:
            resampler = self._in_resamplers.get(rate)
            if resampler is None:
                resampler = self._in_resamplers[rate] = Resampler(rate, SAMPLE_RATE, low_latency=True)
            pcm = resampler.process(pcm)
        if not len(pcm):
            return
        self.counters.packets_in += 1
        self._inbound.append(pcm)
        self._inbound_queued += len(pcm)
        excess = self._inbound_queued - MAX_INBOUND_FRAMES * FRAME_SAMPLES
        while excess > 0 and self._inbound:
            head = self._inbound[0]
            cut = min(excess, len(head))
            if cut == len(head):
                self._inbound.popleft()
            else:
                self._inbound[0] = head[cut:]
            self._inbound_queued -= cut
            self.inbound_dropped_samples += cut
            excess -= cut

    def _pull_inbound(self, now_ns: int) -> None:
        if not self._primed:
            if self._inbound_queued < PRIME_FRAMES * FRAME_SAMPLES:
                return
            self._primed = True
        if self._inbound_queued >= FRAME_SAMPLES:
            pcm = np.empty(FRAME_SAMPLES, dtype=np.int16)
            filled = 0
            while filled < FRAME_SAMPLES:
                head = self._inbound[0]
                k = min(FRAME_SAMPLES - filled, len(head))
                pcm[filled : filled + k] = head[:k]
                filled += k
                if k == len(head):
                    self._inbound.popleft()
                else:
                    self._inbound[0] = head[k:]
            self._inbound_queued -= FRAME_SAMPLES
            self.counters.last_packet_ns = now_ns
        else:
            pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)  # starved: keep the inbound clock going
            self.inbound_concealed_frames += 1
        frame = AudioFrame(pcm, SAMPLE_RATE, self._inbound_samples)
        self._inbound_samples += FRAME_SAMPLES
        self.taps.inbound.emit(frame)

    def receive_dtmf(self, digit: str) -> bool:
        """A keypad press from the page; False (and ignored) if it is not a DTMF digit."""
        if len(digit) != 1 or digit.upper() not in DTMF_DIGITS:
            return False
        self.counters.dtmf_digits += 1
        self.taps.dtmf.emit(Digit(digit.upper(), DigitSource.DATA_CHANNEL))
        return True

    def close(self) -> None:
        self.outbound.stop()


def to_mono_int16(frame: av.AudioFrame) -> Pcm:
    """An aiortc/PyAV audio frame as mono int16 (packed or planar, any channel count)."""
    if frame.format.name not in ("s16", "s16p"):
        raise ValueError(f"unexpected inbound audio format {frame.format.name!r} (want s16)")
    channels = len(frame.layout.channels)
    data = frame.to_ndarray()
    if frame.format.is_planar:
        samples = data.astype(np.int32)  # (channels, n)
    else:
        samples = data.reshape(-1, channels).T.astype(np.int32)
    mono = samples.sum(axis=0) // channels if channels > 1 else samples[0]
    return np.ascontiguousarray(mono, dtype=np.int16)


# -- ICE configuration -------------------------------------------------------------------
class IceServerConfig(Protocol):
    """One STUN/TURN server (`settings.IceServer` is one)."""

    @property
    def urls(self) -> Sequence[str]: ...
    @property
    def username(self) -> str: ...
    @property
    def credential(self) -> str: ...


class IceConfig(Protocol):
    """What ICE needs of the configuration (`settings.WebRtcSettings` is one)."""

    @property
    def ice_servers(self) -> Sequence[IceServerConfig]: ...
    @property
    def ice_transport_policy(self) -> str: ...  # "all" or "relay"


def rtc_configuration(ice: IceConfig) -> RTCConfiguration:
    """aiortc's configuration; an explicit (maybe empty) list so no default STUN is contacted."""
    servers = [
        RTCIceServer(urls=list(s.urls), username=s.username or None, credential=s.credential or None)
        for s in ice.ice_servers
    ]
    policy = RTCIceTransportPolicy.RELAY if ice.ice_transport_policy == "relay" else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


_original_host_addresses = aioice.ice.get_host_addresses


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Offer host candidates only on these addresses (empty: every non-loopback interface).

    aioice has no per-connection option for this, so the module's address lookup is wrapped;
    the setting is process-wide, like the config it comes from. Configured addresses are used
    as given (127.0.0.1 included), so one machine can keep its media on loopback.
    """
    wanted = list(addresses)
    if not wanted:
        aioice.ice.get_host_addresses = _original_host_addresses
        return

    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in wanted if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = configured


# -- closing -----------------------------------------------------------------------------
async def close_peer(pc: RTCPeerConnection, drain_timeout_s: float = DRAIN_TIMEOUT_S) -> None:
    """Close `pc` so that the peer sees it now: drain the data channel, revoke DTLS, close."""
    if pc.connectionState != "closed":
        await drain_sctp(pc, drain_timeout_s)
        for dtls in dtls_transports(pc):
            await revoke_dtls(dtls)
    await pc.close()


def dtls_transports(pc: RTCPeerConnection) -> list[RTCDtlsTransport]:
    """The peer connection's DTLS transports, each once (BUNDLE shares one)."""
    found: list[RTCDtlsTransport] = []
    candidates = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        candidates.append(pc.sctp.transport)
    for dtls in candidates:
        if dtls is not None and all(dtls is not other for other in found):
            found.append(dtls)
    return found


async def drain_sctp(pc: RTCPeerConnection, timeout_s: float) -> None:
    """Wait (at most `timeout_s`) until every data channel message queued is sent and acknowledged.

    aiortc keeps no public flag for this; its SCTP queues are read, and a change in them only
    shortens the wait to nothing (the close then goes on as before).
    """
    sctp = pc.sctp
    if sctp is None or sctp.state != "connected":
        return

    def pending() -> bool:
        queues = ("_data_channel_queue", "_outbound_queue", "_sent_queue")
        return any(getattr(sctp, name, None) for name in queues)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while pending() and loop.time() < deadline:  # noqa: ASYNC110 (aiortc signals no "all acknowledged")
        await asyncio.sleep(0.01)


def is_libwebrtc_peer(dtls: RTCDtlsTransport) -> bool:
    """Whether the peer is libwebrtc (Chromium, Safari, native apps): its self-signed DTLS
    certificate is named "WebRTC"; aiortc's and Firefox's carry random names."""
    ssl: SSL.Connection | None = getattr(dtls, "_ssl", None)
    cert = ssl.get_peer_certificate() if ssl is not None else None
    if cert is None:
        return False
    names = cert.to_cryptography().subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return [n.value for n in names] == [LIBWEBRTC_CERTIFICATE_NAME]


async def revoke_dtls(dtls: RTCDtlsTransport) -> None:
    """Make a libwebrtc peer fail this DTLS transport at once (see "Closing" above).

    No-op unless connected, and for other peers: OpenSSL ones (aiortc) answer a renegotiation
    with a warning and would be left mid-handshake, while they honour the close_notify.
    """
    ssl: SSL.Connection | None = getattr(dtls, "_ssl", None)
    if ssl is None or dtls.state != "connected" or not is_libwebrtc_peer(dtls):
        return
    try:
        ssl.renegotiate()
        ssl.do_handshake()
    except SSL.WantReadError:
        pass  # the hello is written; the peer's answer is its fatal alert
    except SSL.Error:
        return
    try:
        await dtls._write_ssl()  # one datagram, sent before this returns
    except ConnectionError:
        pass
    # Our side of the session now waits on a handshake that will not finish: nothing more can be
    # sent through it. Closed, aiortc's close() skips its sends (ABORT, close_notify) instead of
    # failing on them, and stops ICE.
    dtls._set_state(DtlsState.CLOSED)
