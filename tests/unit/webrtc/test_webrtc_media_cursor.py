"""WebRtcMedia tells the signalling glue where the played cursor is (the page's heard transcript)."""

from __future__ import annotations

import numpy as np

from mediaserver.transport.webrtc import FRAME_SAMPLES, SAMPLE_RATE, WebRtcMedia


async def test_the_cursor_is_reported_as_each_frame_is_taken_and_a_clear_is_reported() -> None:
    media = WebRtcMedia()
    cursors: list[int] = []
    cleared: list[bool] = []
    media.on_played = cursors.append
    media.on_playout_cleared = lambda: cleared.append(True)
    media.enqueue(np.ones(3 * FRAME_SAMPLES, dtype=np.int16), SAMPLE_RATE)
    media.tick(0, 0.0)
    assert cursors == []  # a credit only: nothing has left until aiortc takes it
    await media.outbound.recv()
    media.tick(0, 0.0)
    await media.outbound.recv()
    assert cursors == [FRAME_SAMPLES, 2 * FRAME_SAMPLES]
    assert media.stop_playout() == FRAME_SAMPLES and cleared == [True]
