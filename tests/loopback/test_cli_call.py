"""`mediaserver call URI` end to end, as a subprocess: against our own server (an `ai` document
with the scripted LLM, the greeting document) and against baresip as the callee.

Real speech both ways (Piper for `--say`, espeak-ng for baresip's WAV), real transcription
(the bundled Whisper model): the transcripts must carry the words spoken at the far end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

from benchmarks.ai_harness import write_config
from tests.support.baresip import Baresip, require_baresip
from tests.support.llm_server import ScriptedLlmServer, Turn
from tests.support.server import REPO, ServerProcess
from tests.support.speech import contains_words, synthesize_espeak, transcribe

GREETING = "Hello, how can I help you today?"
REPLY = "The shop is open every morning except Sunday."


def run_call(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediaserver", "call", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )


def start_server(config: Path) -> ServerProcess:
    """The server, started again if another process took its port between choosing and binding."""
    for attempt in range(3):
        try:
            return ServerProcess(config, log_level="INFO").start()
        except RuntimeError as exc:
            if "address already in use" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def channels(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2 and w.getsampwidth() == 2
        both = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
        return both[:, 0], both[:, 1], w.getframerate()


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


def test_call_our_ai_agent_prints_greeting_reply_transcripts_and_voice_to_voice(tmp_path: Path) -> None:
    with ScriptedLlmServer([Turn(text=GREETING), Turn(text=REPLY)]).running() as llm:
        server = start_server(write_config(tmp_path, llm.base_url))
        try:
            record = tmp_path / "call.wav"
            uri = f"sip:ai@127.0.0.1:{server.sip_port}"
            result = run_call(uri, "--say", "When is the shop open?", "--greeting-wait", "15", "--record", str(record))
        finally:
            server.stop()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"{uri}: 200 OK, codec PCMU\n")
    greeting = re.search(r"^greeting \(\d+ ms\): '(.*)'$", out, re.MULTILINE)
    assert greeting and contains_words(greeting.group(1), GREETING), out
    turn = re.search(r"^turn 1: sent (\d+) ms, voice-to-voice (\d+) ms, reply \((\d+) ms\): '(.*)'$", out, re.M)
    assert turn, out
    sent_ms, v2v_ms, reply_ms, text = int(turn[1]), int(turn[2]), int(turn[3]), turn[4]
    assert 800 < sent_ms < 4000 and v2v_ms > 0 and reply_ms > 1000
    assert contains_words(text, REPLY), out
    assert "hung up by the caller" in out
    sent, received, rate = channels(record)
    assert rate == 8000 and rms(sent) > 300 and rms(received) > 100  # both directions were recorded
    # The recording agrees with the timing: the reply starts voice-to-voice after the caller's
    # last loud sample (both tracks share the caller's 20 ms grid), not before.
    last_sent = int(np.flatnonzero(np.abs(sent.astype(np.int32)) > 800)[-1])
    reply_at = last_sent + v2v_ms * rate // 1000
    assert rms(received[last_sent : reply_at - rate // 10]) < 100 < rms(received[reply_at : reply_at + rate])


def test_call_the_greeting_document_reports_it_and_fails_when_it_hangs_up_before_the_turn(tmp_path: Path) -> None:
    config = tmp_path / "greeting.toml"
    config.write_text(f'[routes]\ndefault = "{REPO / "config/swml/greeting.yaml"}"\n')
    server = start_server(config)
    try:
        result = run_call(f"sip:greeting@127.0.0.1:{server.sip_port}", "--say", "Hello there.", "--json")
    finally:
        server.stop()
    assert result.returncode == 1
    assert "mediaserver call: the far end hung up before turn 1" in result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == 200 and report["hung_up_by"] == "far end"
    (greeting,) = report["turns"]
    assert greeting["turn"] == 0 and greeting["voice_to_voice_ms"] is None
    assert contains_words(greeting["transcript"], "thank you for calling this is your voice media server")


def test_call_baresip_as_the_callee_records_and_transcribes_what_it_plays(tmp_path: Path) -> None:
    require_baresip("espeak-ng")
    spoken = "Please call me back tomorrow morning."
    mic = synthesize_espeak(spoken, tmp_path / "mic.wav")
    # baresip answers at once and starts its WAV 4 s in: after our turn (about 1.5 s of speech).
    with Baresip("callee", workdir=tmp_path / "baresip", auto_answer=True, mic=mic, mic_lead_s=4.0) as callee:
        record = tmp_path / "call.wav"
        said = "Hello, this is a test call."
        result = run_call(callee.uri, "--say", said, "--greeting-wait", "0", "--record", str(record), "--json")
        assert result.returncode == 0, result.stderr + callee.tail()
        callee.wait_for("closed", timeout=10)  # we hung up: its recording is complete
        heard_by_callee = transcribe(callee.recording_path) if callee.recording_path else ""
    report = json.loads(result.stdout)
    assert report["status"] == 200 and report["codec"] == "PCMU" and report["error"] is None
    (turn,) = report["turns"]
    assert turn["turn"] == 1 and 1000 < turn["voice_to_voice_ms"] < 4000  # lead 4 s minus our speech
    assert contains_words(turn["transcript"], spoken), turn
    sent, received, rate = channels(record)
    assert rms(received) > 100 and rms(sent) > 300
    assert report["recording"] == str(record)
    assert contains_words(heard_by_callee, said), heard_by_callee  # and baresip heard our voice
