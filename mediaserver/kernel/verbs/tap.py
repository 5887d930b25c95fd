"""`tap` / `stop_tap`: stream the call's audio as RTP to a UDP address, in the background.

Theory of operation: `tap` with an `rtp://host:port` URI opens a UDP socket towards it and
subscribes to the leg's taps (kernel/taps.py): `speak` (what the caller says) sends each
inbound frame, `listen` (what the caller hears) each outbound frame, `both` the outbound frames
mixed with the inbound audio that came in the same tick. Audio is resampled from the leg rate
to 8 kHz, cut into `rtp_ptime` packets (a multiple of the 20 ms frame) and encoded PCMU or PCMA
(payload type 0 or 8, one random SSRC, sequence and timestamp from zero up). The tap is a
background job by `control_id` (`VerbContext.background`, like `record_call`): the script goes
on at once, and the tap runs until `stop_tap` (that control_id, or the latest tap) or the end of
the script (`recording.stop_all`). Vars (SignalWire's): tap_uri, tap_result success | failed,
tap_control_id, tap_rtp_src_addr, tap_rtp_src_port, tap_ptime, tap_codec, tap_rate; and
stop_tap_result.

Failing cleanly: a `ws://`/`wss://` URI (no WebSocket tap on this server), an RTP URI without a
host or port, a control_id already in use, or a socket that cannot be opened leave
tap_result failed with a `tap_failed` log line, and the call goes on. Send errors while the tap
runs (an ICMP port unreachable from a listener that is not there yet) are counted, not fatal.
`status_url` is accepted and not posted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from mediaserver.audio.dsp import mix
from mediaserver.audio.frame import AudioFrame, Pcm
from mediaserver.events import OMIT, CallEvent, event
from mediaserver.kernel.call import Call
from mediaserver.kernel.taps import SentFrame, Subscription
from mediaserver.kernel.verbs.context import KernelVerb, VerbContext
from mediaserver.rtp.packet import RtpPacket
from mediaserver.swml.builders import Expander, expanded_params, integer
from mediaserver.swml.document import Verb
from mediaserver.swml.effects import VerbResult
from mediaserver.swml.errors import SwmlError
from mscodecs import Resampler
from mscodecs.registry import codec_info, make_codec

TAP_RATE = 8000  # PCMU and PCMA
FRAME_MS = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Tap:
    path: str
    uri: str
    control_id: str | None = None
    direction: str = "speak"  # speak: what the caller says; listen: what it hears; both
    codec: str = "PCMU"
    ptime_ms: int = FRAME_MS
    status_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StopTap:
    path: str
    control_id: str | None = None


@event
class TapStarted(CallEvent):
    EVENT = "tap_started"
    path: str
    control_id: str
    uri: str
    direction: str
    codec: str
    ptime_ms: int


@event
class TapFailed(CallEvent):
    EVENT = "tap_failed"
    LEVEL = logging.WARNING
    path: str
    uri: str = OMIT
    control_id: str = OMIT
    error: str


@event
class TapStopped(CallEvent):
    EVENT = "tap_stopped"
    control_id: str
    packets: int
    send_errors: int
    path: str = OMIT  # stop_tap's; absent when the script ended


def build_tap(interp: Expander, verb: Verb) -> Tap:
    params = expanded_params(interp, verb)
    base = f"{verb.path}.tap"
    ptime = integer(params.get("rtp_ptime", FRAME_MS), f"{base}.rtp_ptime")
    if ptime <= 0 or ptime % FRAME_MS:
        raise SwmlError(f"{base}.rtp_ptime", f"expected a multiple of {FRAME_MS} ms, got {ptime}")
    codec = str(params.get("codec", "PCMU"))
    if codec not in ("PCMU", "PCMA"):
        raise SwmlError(f"{base}.codec", f"expected PCMU or PCMA, got {codec!r}")
    direction = str(params.get("direction", "speak"))
    if direction not in ("speak", "listen", "both"):
        raise SwmlError(f"{base}.direction", f"expected speak, listen or both, got {direction!r}")
    return Tap(
        path=verb.path,
        uri=str(params["uri"]),
        control_id=params.get("control_id"),
        direction=direction,
        codec=codec,
        ptime_ms=ptime,
        status_url=params.get("status_url"),
    )


def build_stop_tap(interp: Expander, verb: Verb) -> StopTap:
    return StopTap(path=verb.path, control_id=expanded_params(interp, verb).get("control_id"))


class _Sender(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.errors = 0

    def error_received(self, exc: Exception) -> None:
        self.errors += 1  # e.g. ICMP port unreachable: the listener is not (yet) there


class TapStream:
    """One running tap: leg audio in, RTP out; `stop()` ends it (a `BackgroundJob`)."""

    def __init__(
        self, call: Call, effect: Tap, control_id: str, transport: asyncio.DatagramTransport, sender: _Sender
    ) -> None:
        self.call = call
        self.control_id = control_id
        self.transport = transport
        self.sender = sender
        info = codec_info(effect.codec)
        self.payload_type = info.default_payload_type or 0
        self.codec = make_codec(effect.codec, frame_ms=effect.ptime_ms)
        self.packet_samples = TAP_RATE * effect.ptime_ms // 1000
        self.resampler = Resampler(call.media.sample_rate, TAP_RATE)
        self.ssrc = random.getrandbits(32)
        self.sequence = 0
        self.timestamp = 0
        self.packets = 0
        self._pending = np.zeros(0, dtype=np.int16)  # 8 kHz audio not yet a whole packet
        self._inbound = np.zeros(0, dtype=np.int16)  # `both`: this tick's caller audio
        self._subscriptions: list[Subscription[Any]] = []
        taps = call.media.taps
        if effect.direction == "speak":
            self._subscriptions.append(taps.inbound.subscribe(self._caller, name="tap"))
        else:
            if effect.direction == "both":
                self._subscriptions.append(taps.inbound.subscribe(self._caller_for_mix, name="tap"))
            self._subscriptions.append(taps.outbound.subscribe(self._heard, name="tap"))
        self.direction = effect.direction

    def _caller(self, frame: AudioFrame) -> None:
        self._send(frame.pcm)

    def _caller_for_mix(self, frame: AudioFrame) -> None:
        # Inbound comes first in a tick (MediaStream.tick); keep at most a few frames if outbound stalls.
        self._inbound = np.concatenate([self._inbound, frame.pcm])[-5 * len(frame.pcm) :]

    def _heard(self, frame: SentFrame) -> None:
        pcm = frame.pcm
        if self.direction == "both":
            take, self._inbound = self._inbound[: len(pcm)], self._inbound[len(pcm) :]
            pcm = mix(pcm, take)
        self._send(pcm)

    def _send(self, pcm: Pcm) -> None:
        if self.transport.is_closing():
            return
        self._pending = np.concatenate([self._pending, self.resampler.process(pcm)])
        while len(self._pending) >= self.packet_samples:
            chunk, self._pending = self._pending[: self.packet_samples], self._pending[self.packet_samples :]
            packet = RtpPacket(
                self.payload_type,
                self.sequence,
                self.timestamp,
                self.ssrc,
                self.codec.encode(chunk),
                marker=self.packets == 0,
            )
            self.transport.sendto(packet.serialize())
            self.sequence = (self.sequence + 1) % 65536
            self.timestamp = (self.timestamp + self.packet_samples) % 2**32
            self.packets += 1

    def stop(self, path: str | None = None) -> None:
        for subscription in self._subscriptions:
            subscription.close()
        self.transport.close()
        self.call.events.emit(
            TapStopped(
                control_id=self.control_id,
                packets=self.packets,
                send_errors=self.sender.errors,
                path=OMIT if path is None else path,
            )
        )


async def tap(ctx: VerbContext, call: Call, effect: Tap) -> VerbResult:
    control_id = effect.control_id or str(uuid.uuid4())
    result: dict[str, Any] = {"tap_uri": effect.uri, "tap_control_id": control_id, "tap_result": "failed"}

    def failed(error: str) -> VerbResult:
        call.events.emit(TapFailed(path=effect.path, uri=effect.uri, control_id=control_id, error=error))
        return VerbResult(result)

    target = urlparse(effect.uri)
    if target.scheme in ("ws", "wss"):
        return failed("WebSocket taps are not supported by this server; use rtp://host:port")
    if target.scheme != "rtp" or not target.hostname or not target.port:
        return failed(f"expected rtp://host:port, got {effect.uri!r}")
    if control_id in ctx.background:
        return failed(f"control_id {control_id!r} is already in use")
    if not call.answered:
        call.answer()
    try:
        transport, sender = await asyncio.get_running_loop().create_datagram_endpoint(
            _Sender, remote_addr=(target.hostname, target.port)
        )
    except OSError as exc:  # an unresolvable host, no route
        return failed(str(exc))
    stream = TapStream(call, effect, control_id, transport, sender)
    ctx.background[control_id] = stream
    source = transport.get_extra_info("sockname") or ("", 0)
    call.events.emit(
        TapStarted(
            path=effect.path,
            control_id=control_id,
            uri=effect.uri,
            direction=effect.direction,
            codec=effect.codec,
            ptime_ms=effect.ptime_ms,
        )
    )
    result.update(
        tap_result="success",
        tap_rtp_src_addr=source[0],
        tap_rtp_src_port=source[1],
        tap_ptime=effect.ptime_ms,
        tap_codec=effect.codec,
        tap_rate=TAP_RATE,
    )
    return VerbResult(result)


async def stop_tap(ctx: VerbContext, call: Call, effect: StopTap) -> VerbResult:
    running = [key for key, job in ctx.background.items() if isinstance(job, TapStream)]
    if effect.control_id:
        control_id = effect.control_id if effect.control_id in running else None
    else:
        control_id = running[-1] if running else None  # the latest tap
    if control_id is None:
        call.events.emit(TapFailed(path=effect.path, error=f"no running tap {effect.control_id or ''}".rstrip()))
        return VerbResult({"stop_tap_result": "failed"})
    stream = ctx.background.pop(control_id)
    assert isinstance(stream, TapStream)
    stream.stop(effect.path)
    return VerbResult({"stop_tap_result": "success", "tap_control_id": control_id})


VERBS = (KernelVerb("tap", Tap, build_tap, tap), KernelVerb("stop_tap", StopTap, build_stop_tap, stop_tap))
