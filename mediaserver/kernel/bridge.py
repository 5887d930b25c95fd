"""The B2BUA media bridge: decoded audio relayed both ways between two calls.

Theory of operation: each call's `CallMedia` hands out its decoded inbound audio once per 20 ms
tick on `taps.inbound`; the bridge subscribes there (beside any recorder or sidecar that listens
to the same leg) and enqueues that frame on the other call's playout,
which encodes it with that call's codec on its next tick. Transcoding therefore happens through
PCM: decode with A's codec, resample (the playout's per-rate resampler, kept across frames with
`final=False` so that no click appears at frame seams) and encode with B's codec. DTMF digits
received on one leg are logged on the other's event log (not regenerated as RFC 4733 yet).

The bridge owns nothing: `run_bridge` subscribes to both legs, waits until either call ends,
closes its own subscriptions (nobody else's) and returns the call that ended first. The caller decides
what to do with the other leg (the dialer hangs up the outbound leg; the origin call goes on
with its script). Latency added: at most one tick (20 ms) plus the far side's jitter buffer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mediaserver.audio.frame import AudioFrame
from mediaserver.events import Bridged, BridgeDtmf, Unbridged
from mediaserver.kernel.call import Call
from mediaserver.kernel.taps import Digit, Subscription


class MediaBridge:
    def __init__(self, a: Call, b: Call) -> None:
        self.a = a
        self.b = b
        self.frames = {a.call_id: 0, b.call_id: 0}  # frames relayed from each call
        self._subscriptions: list[tuple[Call, Subscription[AudioFrame], Subscription[Digit]]] = []

    def _relay(self, source: Call, target: Call) -> Callable[[AudioFrame], None]:
        def on_inbound(frame: AudioFrame) -> None:
            if target.is_over or not target.answered:
                return
            target.media.enqueue(frame.pcm, frame.sample_rate, final=False)
            self.frames[source.call_id] += 1

        return on_inbound

    def _dtmf(self, source: Call, target: Call) -> Callable[[Digit], None]:
        def on_dtmf(digit: Digit) -> None:
            target.events.emit(BridgeDtmf(digit=digit.digit, from_call=source.call_id))

        return on_dtmf

    def start(self) -> None:
        for source, target in ((self.a, self.b), (self.b, self.a)):
            taps = source.media.taps
            inbound = taps.inbound.subscribe(self._relay(source, target), name=f"bridge->{target.call_id}")
            dtmf = taps.dtmf.subscribe(self._dtmf(source, target), name=f"bridge->{target.call_id}")
            self._subscriptions.append((source, inbound, dtmf))
            source.events.emit(
                Bridged(peer_call=target.call_id, codec=source.media.codec_name, peer_codec=target.media.codec_name)
            )

    def stop(self) -> None:
        for call, inbound, dtmf in self._subscriptions:
            inbound.close()
            dtmf.close()
            call.events.emit(Unbridged(frames_relayed=self.frames[call.call_id]))
        self._subscriptions.clear()
        for call in (self.a, self.b):
            if not call.is_over:
                call.media.stop_playout()  # the other side's last words must not leak into what follows


async def run_bridge(a: Call, b: Call) -> Call:
    """Bridge `a` and `b` until one of them ends; returns the one that ended first."""
    bridge = MediaBridge(a, b)
    bridge.start()
    waits = {asyncio.ensure_future(a.ended.wait()): a, asyncio.ensure_future(b.ended.wait()): b}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        bridge.stop()
    return a if a.ended.is_set() else b
