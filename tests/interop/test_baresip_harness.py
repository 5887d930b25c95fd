"""The baresip harness itself, checked baresip-to-baresip on loopback (no server involved).

Alice auto-answers and speaks an espeak-ng sentence as her microphone, then hangs up when it ends;
Bob calls her restricted to one codec, records what he receives, notices her hang-up, and the
recording is transcribed with faster-whisper tiny.en.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.baresip import CODEC_FORMAT, BaresipError, require_baresip
from tests.support.speech import contains_words, read_wav, synthesize_espeak, transcribe, word_recall

pytestmark = pytest.mark.interop

require_baresip("espeak-ng", at_import=True)

# tiny.en hears espeak-ng's "quick brown fox" as "quick round-fark ..."; this sentence survives
# even G.711 intact.
SENTENCE = "Hello, this is a test call. Please call me back tomorrow morning."


@pytest.fixture(scope="module")
def sentence_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_baresip("espeak-ng")
    return synthesize_espeak(SENTENCE, tmp_path_factory.mktemp("speech") / "sentence.wav")


@pytest.mark.parametrize("codec", ["PCMU", "G722", "opus"])
def test_caller_records_and_transcribes_answerers_speech(codec, baresip_factory, sentence_wav):
    rate, channels = CODEC_FORMAT[codec]
    alice = baresip_factory("alice", codec=codec, auto_answer=True, mic=sentence_wav, mic_tail_s=0.6)
    bob = baresip_factory("bob", codec=codec)

    started = time.monotonic()
    bob.call(alice.uri)
    bob.wait_for("established", timeout=5)
    assert bob.wait_negotiated_codec() == (codec, rate, channels)

    # Alice's aufile source runs out -> she sends BYE -> Bob sees the remote hang-up.
    bob.wait_for("closed", timeout=15)
    call_s = time.monotonic() - started
    assert bob.closed_reason == "Connection reset by peer"
    alice.wait_for("closed", timeout=2)
    assert alice.closed_reason == "end of file"

    samples, rec_rate = bob.read_recording()
    assert (rec_rate, samples.shape[1]) == (rate, channels)
    source, source_rate = read_wav(sentence_wav)
    speech_s = source.shape[0] / source_rate
    assert samples.shape[0] / rate >= speech_s - 0.3, f"recording too short for {speech_s:.1f}s of speech"
    assert float(np.sqrt(np.mean(samples**2))) > 0.01, "recording is (nearly) silent"

    transcript = transcribe(bob.recording_path)
    assert contains_words(transcript, SENTENCE, min_fraction=0.75), (
        f"{codec}: heard {transcript!r} (recall {word_recall(transcript, SENTENCE):.2f}) "
        f"in {bob.recording_path}; call took {call_s:.1f}s"
    )


def test_caller_hangs_up_after_n_seconds(baresip_factory, sentence_wav):
    alice = baresip_factory("alice", auto_answer=True)  # silent, records what Bob says
    bob = baresip_factory("bob", mic=sentence_wav)

    bob.call(alice.uri)
    started = time.monotonic()
    assert bob.hangup_after(2.0) is True
    held_s = time.monotonic() - started
    assert 1.8 <= held_s <= 4.0
    assert bob.closed_reason == "Connection reset by user"
    alice.wait_for("closed", timeout=3)
    assert alice.closed_reason == "Connection reset by peer"

    samples, rate = alice.read_recording()
    assert rate == 8000
    assert 1.5 <= samples.shape[0] / rate <= 3.0
    assert float(np.sqrt(np.mean(samples**2))) > 0.01, "Alice heard nothing"


def test_codec_mismatch_fails_loudly(baresip_factory):
    alice = baresip_factory("alice", codec="G722", auto_answer=True)
    bob = baresip_factory("bob", codec="PCMU")

    bob.call(alice.uri)
    with pytest.raises(BaresipError, match="488 Not Acceptable Here") as excinfo:
        bob.wait_for("established", timeout=5)
    assert "last 25 log lines" in str(excinfo.value)
    assert not bob.established
