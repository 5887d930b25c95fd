"""Several consumers on one call's media at once: `record_call` keeps both directions through an
`ai` verb and through a `connect` bridge (on the callback-slot kernel both lost the caller)."""

from __future__ import annotations

import random
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mediaserver.agents.ai.runner import SessionRunner
from mediaserver.agents.ai.session import AiEngines
from mediaserver.kernel.bridge import run_bridge
from mediaserver.kernel.call import Call
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.services import DialResult
from mediaserver.logs import CallEventLog
from mediaserver.rtp.packet import RtpPacket
from tests.scenario.ai_fakes import InlineExecutor, ScriptedLlm, ToneAsr, ToneVad, WordTts, tone
from tests.scenario.test_swml_executor import FRAME_NS, Harness
from tests.support.fakes import FakeSignal

CALLER_HZ = 500
CALLEE_HZ = 700


def read_stereo(path: str) -> tuple[np.ndarray, np.ndarray, int]:
    with wave.open(path, "rb") as wav:
        assert wav.getnchannels() == 2
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
        return pcm[:, 0], pcm[:, 1], wav.getframerate()


def tone_share(pcm: np.ndarray, rate: int, hz: float) -> float:
    """How much of the signal's spectrum lies within 25 Hz of `hz` (0 for silence)."""
    x = pcm.astype(np.float64)
    if not len(x) or not np.abs(x).max():
        return 0.0
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[np.abs(freqs - hz) < 25].sum() / spectrum.sum())


def recorded_file(harness: Harness) -> str:
    (stopped,) = [e for e in harness.call.events.events if e["event"] == "record_call_stopped"]
    assert stopped["file"] and "/" not in stopped["file"], stopped  # a name, never a server path
    return str(harness.options.recordings_dir / stopped["file"])


async def test_record_call_then_ai_records_the_caller_and_the_agent(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    engines = AiEngines(
        vad=ToneVad,
        asr=ToneAsr({CALLER_HZ: "what time is it"}),
        llm=ScriptedLlm(["Hello caller how can I help", "It is noon"]),
        tts=WordTts(),
        blocking=InlineExecutor(),
        far_end_delay_ms=0,
    )
    harness.ai_runner = SessionRunner(engines)
    speech = tone(CALLER_HZ, 1000)
    speaks_at = 150  # ticks: after the greeting

    def caller(n: int) -> None:
        i = (n - speaks_at) * 160
        harness.send_inbound(speech[i : i + 160] if 0 <= i < len(speech) else 0)

    await harness.run(
        {"main": ["answer", {"record_call": {"stereo": True}}, {"ai": {"prompt": {"text": "Be brief."}}}]},
        on_tick=caller,
        ticks=400,
    )
    assert [e["event"] for e in harness.call.events.events].count("ai_started") == 1
    caller_side, our_side, rate = read_stereo(recorded_file(harness))
    window = caller_side[speaks_at * 160 : (speaks_at + 60) * 160]  # the caller spoke during the AI verb
    assert tone_share(window, rate, CALLER_HZ) > 0.5
    assert np.abs(our_side.astype(np.int32)).max() > 1000  # the agent's greeting and answer
    assert engines.asr.calls > 0  # and the agent heard the caller too


class LoopDialer:
    """A Dialer whose callee is a second in-process call leg that plays a tone back."""

    def __init__(self) -> None:
        self.leg: Call | None = None

    async def dial(self, origin: Call, to: str, **_: Any) -> DialResult:
        media = MediaStream(MediaParams("PCMU", 0, 8000, 101), "callee", rng=random.Random(2))
        self.leg = Call(
            "callee-1",
            from_uri="sip:a@x",
            to_uri=to,
            media=media,
            signal=FakeSignal(),
            send_media=lambda data: None,
            event_log=CallEventLog("callee-1"),
        )
        self.leg.answer()
        return DialResult(answered=True, status=200, reason="OK", leg=self.leg)

    async def bridge(self, a: Call, b: Call) -> str:
        return (await run_bridge(a, b)).call_id

    async def refer(self, call: Call, to_uri: str) -> int:
        return 501

    def __getattr__(self, name: str) -> Mapping[str, Any]:
        raise AttributeError(name)


async def test_record_call_during_connect_records_both_directions(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    dialer = harness.dialer = LoopDialer()
    caller_speech, callee_speech = tone(CALLER_HZ, 2000), tone(CALLEE_HZ, 2000)
    seq = [0]

    def tick(n: int) -> None:
        i = n * 160
        harness.send_inbound(caller_speech[i : i + 160] if i < len(caller_speech) else 0)
        leg = dialer.leg
        if leg is None or leg.is_over:
            return
        media = leg.media
        assert isinstance(media, MediaStream)
        pcm = callee_speech[i : i + 160] if i < len(callee_speech) else np.zeros(160, np.int16)
        leg.receive_media(RtpPacket(0, seq[0], 160 * seq[0], 77, media.codec.encode(pcm)).serialize(), 0)
        seq[0] += 1
        leg.on_tick((n + 1) * FRAME_NS, 0.0)
        if n == 80:
            leg.remote_hung_up("callee hung up")
            leg.signaling_ended("BYE")

    await harness.run(
        {
            "main": [
                "answer",
                {"record_call": {"stereo": True}},
                {"connect": {"to": "sip:callee@example.com"}},
                "hangup",
            ]
        },
        on_tick=tick,
        ticks=200,
    )
    assert any(e["event"] == "bridged" for e in harness.call.events.events)
    caller_side, our_side, rate = read_stereo(recorded_file(harness))
    middle = slice(20 * 160, 70 * 160)  # while bridged
    assert tone_share(caller_side[middle], rate, CALLER_HZ) > 0.5  # the caller, heard by the recorder
    assert tone_share(our_side[middle], rate, CALLEE_HZ) > 0.5  # the callee, relayed to the caller
