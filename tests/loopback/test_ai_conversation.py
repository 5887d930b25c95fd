"""A three-turn AI conversation through the real SIP front end, real ASR/TTS, the scripted LLM.

The caller (espeak-ng speech over PCMU, sent as paced RTP for the whole call) asks a question,
barges in over the long answer, coughs over the next answer (a false barge-in: the answer must
go on) and says goodbye. The scripted LLM server records every request; the last one carries
the final history, where the interrupted answer is cut to the words the caller heard.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from benchmarks.latency_ai import AiCaller, cough, espeak_8k, write_config
from tests.support.llm_server import ScriptedLlmServer, Turn
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")]

GREETING = "Hello, this is the test line."
HOURS = (
    "We are open from nine in the morning until five in the evening from Monday to Friday, and from "
    "ten until two on Saturday. We are closed on public holidays, but you can always leave a message."
)
SUNDAY = "No, we are closed on Sunday. On Saturday we open at ten in the morning and we close at two in the afternoon."
GOODBYE = "Goodbye, and thanks for calling."


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


async def test_three_turns_with_a_barge_in_and_a_false_barge_in(tmp_path: Path) -> None:
    script = [Turn(text=t, ttft_s=0.1, token_delay_s=0.01) for t in (GREETING, HOURS, SUNDAY, GOODBYE)]
    async with ScriptedLlmServer(script) as llm:
        config = write_config(tmp_path, llm.base_url, eos_ms=800)
        server = ServerProcess(config=config).start()
        caller = AiCaller(("127.0.0.1", server.sip_port), user="ai")
        try:
            await caller.open()
            assert (await caller.call()).status == 200
            await caller.start_media()
            await caller.wait_agent(speaking_ms=600, silent_ms=800)  # the greeting
            caller.say(espeak_8k("What are your opening hours"))
            await caller.until_said()
            await caller.wait_agent(speaking_ms=1600, since_ns=time.monotonic_ns())  # well into the answer
            caller.say(espeak_8k("Are you open on Sunday"))
            await caller.until_said()
            await caller.wait_agent(speaking_ms=1400, since_ns=time.monotonic_ns())
            caller.say(cough())
            await caller.until_said()
            await caller.wait_agent(speaking_ms=200, silent_ms=800, since_ns=time.monotonic_ns())
            caller.say(espeak_8k("Thank you goodbye"))
            await caller.until_said()
            await caller.wait_agent(speaking_ms=400, silent_ms=800, since_ns=time.monotonic_ns())
            await caller.stop_media()
            await caller.hangup()
        finally:
            caller.close()
            server.stop()
        events = [r for r in server.records(caller.call_id) if "event" in r]

    names = [e["event"] for e in events]
    flushed = [e for e in events if e["event"] == "barge_flushed"]
    assert len(flushed) == 1, names  # the question over the hours answer, not the cough
    assert len(llm.requests) == 4, [r.messages[-1] for r in llm.requests]
    history = llm.requests[-1].messages
    assistant = [m["content"] for m in history if m["role"] == "assistant"]
    user = [m["content"] for m in history if m["role"] == "user"]
    assert len(user) == 3 and "sunday" in user[1].lower() and "goodbye" in user[2].lower()
    assert assistant[0] == GREETING
    # The interrupted answer: a strict, non-empty word prefix of what the LLM said.
    cut = _words(assistant[1])
    assert 0 < len(cut) < len(_words(HOURS)) and cut == _words(HOURS)[: len(cut)]
    assert cut == _words(flushed[0]["heard_text"])
    # The answer the caller coughed over was played to the end and kept whole.
    assert _words(assistant[2]) == _words(SUNDAY)
    resumed = [e for e in events if e["event"] == "barge_resumed"]
    paused = [e for e in events if e["event"] == "barge_paused"]
    assert len(paused) == len(flushed) + len(resumed)  # every pause either flushed or resumed
