"""In-band DTMF (Goertzel) on generated key presses, through G.711, and against real speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mediaserver.kernel.dtmf_inband import COLS, KEYS, ROWS, InbandDtmfDetector
from mscodecs import make_codec


def keypress(digit: str, rate: int, on_ms: int = 80, off_ms: int = 60, level: float = 0.25) -> np.ndarray:
    r = next(i for i, row in enumerate(KEYS) if digit in row)
    c = KEYS[r].index(digit)
    t = np.arange(int(rate * on_ms / 1000)) / rate
    tone = level * (np.sin(2 * np.pi * ROWS[r] * t) + np.sin(2 * np.pi * COLS[c] * t))
    return np.concatenate([(tone * 32767).astype(np.int16), np.zeros(int(rate * off_ms / 1000), np.int16)])


def detect(pcm: np.ndarray, rate: int, frame: int) -> list[str]:
    detector = InbandDtmfDetector()
    digits: list[str] = []
    for i in range(0, len(pcm), frame):
        digits += detector.feed(pcm[i : i + frame], rate)
    return digits


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_every_key_is_detected_once(rate: int) -> None:
    keys = "123A456B789C*0#D"
    pcm = np.concatenate([keypress(d, rate) for d in keys])
    assert detect(pcm, rate, rate // 50) == list(keys)


def test_repeated_key_needs_a_pause_and_short_blips_are_ignored() -> None:
    pcm = np.concatenate([keypress("5", 8000), keypress("5", 8000), keypress("7", 8000, on_ms=20)])
    assert detect(pcm, 8000, 160) == ["5", "5"]


def test_through_pcmu_with_noise() -> None:
    codec = make_codec("PCMU")
    rng = np.random.default_rng(1)
    pcm = np.concatenate([keypress(d, 8000, level=0.1) for d in "2580"])
    noisy = np.clip(pcm + rng.normal(0, 300, len(pcm)), -32768, 32767).astype(np.int16)
    decoded = np.concatenate([codec.decode(codec.encode(noisy[i : i + 160])) for i in range(0, len(noisy), 160)])
    assert detect(decoded, 8000, 160) == list("2580")


def test_speech_gives_no_digits(tmp_path: Path) -> None:
    speech = pytest.importorskip("tests.support.speech")
    try:
        wav = speech.synthesize_espeak(
            "one two three, press five for sales, zero for the operator", tmp_path / "s.wav", 8000
        )
    except RuntimeError as exc:
        pytest.skip(str(exc))
    samples, rate = speech.read_wav(wav)
    pcm = (speech.to_mono(samples) * 32767).astype(np.int16)
    assert detect(pcm, rate, rate // 50) == []


def test_stream_sends_every_digit_to_one_place_with_its_source() -> None:
    from mediaserver.kernel.media import MediaParams, MediaStream
    from mediaserver.kernel.taps import DigitSource
    from mediaserver.rtp.packet import RtpPacket

    stream = MediaStream(MediaParams("PCMU", 0, 8000, None, 3), "test", inband_dtmf=True)
    logged: list[tuple[str, str]] = []
    digits: list[str] = []
    frames: list[int] = []
    stream.taps.dtmf.subscribe(lambda d: logged.append((d.digit, d.source.value)))
    stream.taps.dtmf.subscribe(lambda d: digits.append(d.digit))
    stream.taps.inbound.subscribe(lambda frame: frames.append(len(frame.pcm)))
    # A bridge-like user subscribes and leaves: the others keep everything.
    stream.taps.inbound.subscribe(lambda frame: None).close()
    stream.taps.dtmf.subscribe(lambda digit: None).close()
    pcm = np.concatenate([keypress(d, 8000) for d in "19"])
    for n, i in enumerate(range(0, len(pcm) - 159, 160)):  # the tones arrive as PCMU packets
        payload = stream.codec.encode(pcm[i : i + 160])
        stream.receive_datagram(RtpPacket(0, 100 + n, i, 42, payload).serialize(), n * 20_000_000)
        stream.tick((n + 1) * 20_000_000, 0.0)
    for n in range(3):  # drain the jitter buffer
        if len(frames) < len(pcm) // 160:
            stream.tick((n + 1000) * 20_000_000, 0.0)
    stream.deliver_dtmf("5", DigitSource.SIP_INFO)
    stream.deliver_dtmf("7", DigitSource.RFC4733)  # what MediaStream does with an RFC 4733 event
    assert digits == ["1", "9", "5", "7"] and len(frames) == len(pcm) // 160
    assert logged == [("1", "inband"), ("9", "inband"), ("5", "sip_info"), ("7", "rfc4733")]
