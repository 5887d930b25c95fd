"""`denoise` / `stop_denoise` through the real SWML executor on a PCMU call: the `ai` listener's
front end (16 kHz view + VAD) and `record_call` hear the denoised caller while it is on, and the
raw caller again after `stop_denoise`.

The caller sends white noise at about -25 dBFS the whole time (speech-level noise, so the VAD,
with the AI's -40 dBFS floor, calls it voice), with a spoken sentence in the middle."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mediaserver.agents.ai.runner import SessionRunner
from mediaserver.agents.ai.session import AiEngines
from mediaserver.audio import denoise
from mediaserver.audio.dsp import rms_dbfs
from mediaserver.audio.frame import AudioFrame
from mediaserver.kernel.taps import MediaTaps
from mediaserver.kernel.verbs.denoise import DenoiseTransform
from mediaserver.pipeline.asr import Recognition
from tests.scenario.ai_fakes import InlineExecutor, ScriptedLlm, WordTts
from tests.scenario.test_media_taps import read_stereo, recorded_file
from tests.scenario.test_swml_executor import Harness
from tests.support.speech import read_wav, synthesize_espeak, to_mono

NOISE_DBFS = -25.0
SPEECH_AT = 150  # tick at which the caller starts talking over the noise
NOISE_ONLY = range(60, 140)  # ticks of noise alone, after RNNoise has adapted (and the AI started)


class LevelVad:
    """The AI's VAD, recording what the leg's front end hands it: level and verdict per frame, by
    the tick it ran in (the AI starts a few ticks in, more on a loaded box: the script runs beside
    the test's ticks in real time, so an index into the frames is not a tick)."""

    def __init__(self, seen: dict[int, tuple[float, bool]], tick: list[int]) -> None:
        self.seen = seen
        self.tick = tick

    def is_speech(self, pcm: np.ndarray) -> bool:
        level = rms_dbfs(pcm)
        self.seen[self.tick[0]] = (level, level > -40.0)
        return level > -40.0

    def reset(self) -> None:
        pass


class SilentAsr:
    sample_rate = 16000

    def __init__(self) -> None:
        self.heard: list[np.ndarray] = []

    def transcribe(self, pcm: np.ndarray, *, prompt: str | None = None, hotwords: str | None = None) -> Recognition:
        self.heard.append(pcm)
        return Recognition("", 0.0)


@pytest.fixture(scope="module")
def caller_audio(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """8 kHz: noise throughout, a sentence from SPEECH_AT on; 400 ticks."""
    wav = synthesize_espeak("Please cancel my order for tomorrow.", tmp_path_factory.mktemp("dn") / "s.wav", 8000)
    samples, _ = read_wav(wav)
    sentence = to_mono(samples) * 12000
    rng = np.random.default_rng(4)
    audio = rng.standard_normal(400 * 160) * 32768 * 10 ** (NOISE_DBFS / 20)
    audio[SPEECH_AT * 160 : SPEECH_AT * 160 + len(sentence)] += sentence[: 400 * 160 - SPEECH_AT * 160]
    return np.clip(audio, -32768, 32767).astype(np.int16)


def caller(harness: Harness, audio: np.ndarray, now: list[int] | None = None) -> Any:
    def tick(n: int) -> None:
        if now is not None:
            now[0] = n
        harness.send_inbound(audio[n * 160 : (n + 1) * 160] if (n + 1) * 160 <= len(audio) else 0)

    return tick


Seen = dict[int, tuple[float, bool]]  # tick -> (level dBFS, voiced) of the frame the VAD judged


async def run_ai(tmp: Path, audio: np.ndarray, main: list[Any]) -> tuple[Harness, Seen, SilentAsr]:
    harness = Harness(tmp)
    seen: Seen = {}
    now = [0]
    asr = SilentAsr()
    engines = AiEngines(
        vad=lambda: LevelVad(seen, now),
        asr=asr,
        llm=ScriptedLlm(["Hi"]),
        tts=WordTts(),
        blocking=InlineExecutor(),
        far_end_delay_ms=0,
    )
    harness.ai_runner = SessionRunner(engines)
    await harness.run({"main": main}, on_tick=caller(harness, audio, now), ticks=400)
    return harness, seen, asr


def at(seen: Seen, ticks: range) -> list[tuple[float, bool]]:
    """The VAD's frames of those ticks; most of them must be there (the AI started in time)."""
    frames = [seen[n] for n in ticks if n in seen]
    assert len(frames) >= len(ticks) // 2, f"the VAD saw {len(frames)} of ticks {ticks}: the AI started late"
    return frames


async def test_denoise_then_ai_the_listener_hears_the_denoised_caller(tmp_path: Path, caller_audio: np.ndarray) -> None:
    ai = {"ai": {"prompt": {"text": "Be brief."}}}
    raw, raw_seen, _ = await run_ai(tmp_path / "raw", caller_audio, ["answer", ai])
    clean, clean_seen, clean_asr = await run_ai(tmp_path / "dn", caller_audio, ["answer", "denoise", ai])

    (started,) = clean.events("denoise_started")
    assert started["sample_rate"] == 8000 and started["latency_ms"] == pytest.approx(32.9)
    assert not raw.events("denoise_started")
    raw_noise = [level for level, _ in at(raw_seen, NOISE_ONLY)]
    clean_noise = [level for level, _ in at(clean_seen, NOISE_ONLY)]
    assert np.median(raw_noise) > NOISE_DBFS - 4  # without: the VAD hears the noise as it is
    assert np.median(clean_noise) < np.median(raw_noise) - 15  # with: lower by the -20 dB floor
    assert all(voiced for _, voiced in at(raw_seen, NOISE_ONLY))  # noise alone passes for voice...
    assert not any(voiced for _, voiced in at(clean_seen, NOISE_ONLY))  # ...but not once denoised
    talking = at(clean_seen, range(SPEECH_AT, SPEECH_AT + 160))  # the 3.2 s sentence
    assert sum(voiced for _, voiced in talking) > 30  # still reaches the VAD (measured 81 frames)
    assert clean_asr.heard and max(rms_dbfs(u) for u in clean_asr.heard) > -35  # and the recognizer


async def test_record_call_hears_it_denoised_until_stop_denoise(tmp_path: Path, caller_audio: np.ndarray) -> None:
    harness = Harness(tmp_path)
    noise_only = caller_audio[: SPEECH_AT * 160]
    audio = np.concatenate([noise_only, noise_only, noise_only])[: 400 * 160]
    main = [
        "answer",
        {"record_call": {"stereo": True}},
        {"play": {"url": "silence:1"}},
        "denoise",
        {"play": {"url": "silence:2"}},
        "stop_denoise",
        {"play": {"url": "silence:2"}},
        "hangup",
    ]
    await harness.run({"main": main}, on_tick=caller(harness, audio), ticks=400)

    assert not isinstance(harness.call.media.taps.inbound.transform, DenoiseTransform)  # off again
    (stopped,) = harness.events("denoise_stopped")
    assert 150 <= stopped["frames"] <= 250  # about 2 s of 10 ms RNNoise frames
    caller_side, _, rate = read_stereo(recorded_file(harness))
    second = rate
    before = rms_dbfs(caller_side[int(0.2 * second) : int(0.9 * second)])
    during = rms_dbfs(caller_side[int(1.8 * second) : int(2.9 * second)])
    after = rms_dbfs(caller_side[int(3.3 * second) : int(4.8 * second)])
    assert before > NOISE_DBFS - 4 and after > NOISE_DBFS - 4
    assert during < before - 15  # the -20 dB floor


async def test_denoise_twice_keeps_one_suppressor_and_results_say_on_off(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    say = {"play": {"url": "say:${denoise_result}"}}
    await harness.run({"main": ["denoise", "denoise", say, "stop_denoise", say, "stop_denoise", say, "hangup"]})
    assert harness.tts.spoken == ["on", "off", "off"]
    assert len(harness.events("denoise_started")) == 1 and len(harness.events("denoise_stopped")) == 1
    assert harness.call.media.taps.inbound.transform is None


async def test_without_the_wheel_denoise_is_unsupported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(denoise.importlib.util, "find_spec", lambda name: None if name == "pyrnnoise" else real(name))
    denoise.rnnoise_library.cache_clear()
    harness = Harness(tmp_path)
    try:
        await harness.run({"main": ["denoise", {"play": {"url": "say:${denoise_result}"}}, "hangup"]})
    finally:
        denoise.rnnoise_library.cache_clear()
    assert harness.tts.spoken == ["unsupported"]
    (unsupported,) = harness.events("verb_unsupported")
    assert unsupported["verb"] == "denoise" and "pyrnnoise" in unsupported["reason"]
    assert harness.call.media.taps.inbound.transform is None


def test_a_failing_transform_is_logged_and_removed_and_subscribers_get_the_raw_frame(
    caplog: pytest.LogCaptureFixture,
) -> None:
    taps = MediaTaps(8000)
    heard: list[AudioFrame] = []
    taps.inbound.subscribe(heard.append)

    def broken(frame: AudioFrame) -> AudioFrame:
        raise RuntimeError("native library crashed")

    taps.inbound.transform = broken
    frame = AudioFrame(np.ones(160, dtype=np.int16), 8000, 0)
    taps.inbound.emit(frame)
    assert heard == [frame] and taps.inbound.transform is None
    assert "media tap transform failed" in caplog.text
