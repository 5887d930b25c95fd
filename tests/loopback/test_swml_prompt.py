"""A real server runs `prompt` with speech input: the caller says a word, the server's
recognizer (whisper tiny.en, the ai verb's engine) hears it and SWML says it back; then a
keypad prompt is answered with RFC 4733 digits."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmarks.sipclient import SipCaller
from mediaserver.rtp.packet import RtpPacket
from mscodecs.dtmf import dtmf_payloads
from tests.support.server import ServerProcess
from tests.support.speech import read_wav, synthesize_espeak, transcribe, words, write_wav

FLOW = """
sections:
  main:
    - answer: {}
    - prompt:
        play: "say:Say a color."
        max_digits: 0
        speech_end_timeout: 0.8
        speech_timeout: 8
        initial_timeout: 6
    - play:
        url: "say:You said ${prompt_value}."
    - prompt:
        play: "silence:0.2"
        max_digits: 3
        terminators: "#"
        initial_timeout: 6
    - play:
        url: "say:Code ${prompt_value.split('').join(' ')}."
    - hangup: {}
"""


@pytest.fixture
def prompt_server(tmp_path: Path) -> Iterator[ServerProcess]:
    (tmp_path / "flow.yaml").write_text(FLOW)
    config = tmp_path / "prompt.toml"
    config.write_text('[routes.users]\ncolor = "flow.yaml"\n[llm]\nbase_url = "http://127.0.0.1:9/v1"\n')
    server = ServerProcess(config=config, rtp_base=33000 + random.randrange(100) * 20).start()
    yield server
    server.stop()


async def send_digits(caller: SipCaller, digits: str) -> None:
    assert caller.remote_rtp is not None and caller._rtp.transport is not None
    seq, ts, ssrc = random.getrandbits(16), random.getrandbits(32), random.getrandbits(32)
    for digit in digits:
        for index, event in enumerate(dtmf_payloads(digit, 800, 160)):
            packet = RtpPacket(101, seq, ts, ssrc, event.serialize(), marker=index == 0)
            caller._rtp.transport.sendto(packet.serialize(), caller.remote_rtp)
            seq = (seq + 1) & 0xFFFF
            await asyncio.sleep(0.02)
        ts = (ts + 1600) & 0xFFFFFFFF
        await asyncio.sleep(0.1)


async def wait_for_verb(server: ServerProcess, call_id: str, path: str, timeout: float = 30.0) -> None:
    """Until the server has logged `verb_started` for the verb at `path` of this call."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(r.get("event") == "verb_started" and r.get("path") == path for r in server.records(call_id)):
        assert asyncio.get_running_loop().time() < deadline, f"{path} never started"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_speech_then_digits_prompt(prompt_server: ServerProcess, tmp_path: Path) -> None:
    samples, _ = read_wav(synthesize_espeak("The purple one, please.", tmp_path / "purple.wav", sample_rate=8000))
    speech = (np.clip(samples.reshape(-1), -1, 1) * 20000).astype(np.int16)
    caller = SipCaller(("127.0.0.1", prompt_server.sip_port), user="color", codec="PCMU")
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        await asyncio.sleep(2.5)  # "Say a color."
        await caller.send_audio(np.concatenate([speech, np.zeros(8000 * 2, np.int16)]))
        # The server transcribes and says it back; the digits go once the digit prompt runs (a
        # fixed 3 s wait sent the "4" before it on a loaded box, and the server said "Code 2").
        await wait_for_verb(prompt_server, caller.call_id, "sections.main[3]")
        await send_digits(caller, "42#")
        await asyncio.wait_for(caller.bye_received.wait(), 60)
    finally:
        caller.close()
    pcm, rate = caller.decoded_audio()
    heard = words(await asyncio.to_thread(transcribe, write_wav(tmp_path / "reply.wav", pcm, rate)))
    done = [r for r in prompt_server.records(caller.call_id) if r.get("event") == "prompt_done"]
    assert {"you", "said", "purple"} <= set(heard), (" ".join(heard), [(d["result"], d["value"]) for d in done])
    assert "code" in heard and ("four" in heard or "4" in heard or "42" in heard), " ".join(heard)
    assert [d["result"] for d in done] == ["match_speech", "match_digits"]
    assert done[1]["value"] == "42"
