"""Every SWAIG action of seed 001 / contract §5 has its effect on the live AiSession.

Each test drives the real session on a manual clock (one 20 ms tick per step) with a scripted
LLM and the real SWAIG runner: the tools are data_map functions whose output carries the
actions, so they go through the gateway, `apply_actions` and the session's `AiControl` exactly
as a webhook reply would. What is asserted is what the caller, the model or a watcher would
see: the next LLM request's settings and tools, the audio that left on the wire, the
recognizer's arguments, the history, the call events and the event bus.
"""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mediaserver.agents.ai.steering import EXTENSIVE_KEEP
from mediaserver.kernel.eventbus import BusEvent, EventBus
from mediaserver.logs import CallEventLog
from mediaserver.pipeline.asr import Recognition
from mediaserver.pipeline.llm import LlmSettings
from mediaserver.pipeline.tts import TtsChunk
from mediaserver.swaig.gateway import SwaigToolRunner
from mediaserver.swaig.seam import CallInfo
from tests.scenario import ai_fakes
from tests.scenario.ai_fakes import Scenario, ScriptedLlm, ToneAsr, ToolCallRequested, tone

RATE = 8000
MUSIC_HZ = 1000  # hold music and background files
VOICE_HZ = 300  # WordTts, the session's voice
OTHER_VOICE_HZ = 500  # the voice change_voice picks
CALLER_HZ = 440


class RecordingLlm(ScriptedLlm):
    """ScriptedLlm that also keeps each request's settings and tools."""

    def __init__(self, script: list[Any]) -> None:
        super().__init__(script)
        self.settings: list[LlmSettings] = []
        self.tools: list[list[dict[str, Any]] | None] = []

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[Any]:
        self.settings.append(settings)
        self.tools.append(tools)
        return super().stream(messages, tools=tools, settings=settings)


class HintAsr(ToneAsr):
    def __init__(self, phrases: dict[int, str], confidence: float = 0.9) -> None:
        super().__init__(phrases)
        self.hotwords: list[str | None] = []
        self.confidence = confidence

    def transcribe(self, pcm: np.ndarray, *, prompt: str | None = None, hotwords: str | None = None) -> Recognition:
        self.hotwords.append(hotwords)
        result = super().transcribe(pcm, prompt=prompt, hotwords=hotwords)
        return Recognition(result.text, self.confidence) if result.text else result


class ToneVoice:
    """A TtsEngine (blocking) whose every word is 200 ms of one tone."""

    sample_rate = RATE

    def __init__(self, hz: int) -> None:
        self.hz = hz

    @property
    def voice_id(self) -> str:
        return f"tone{self.hz}"

    def synthesize(self, text: str) -> Iterator[TtsChunk]:
        yield TtsChunk(tone(self.hz, 200 * len(text.split()), amplitude=6000), RATE, text)


class Voices:
    def open(self, name: str) -> ToneVoice | None:
        return ToneVoice(OTHER_VOICE_HZ) if name == "piper.en_US-amy-medium" else None


def swaig_ai(
    functions: dict[str, dict[str, Any]], params: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """An `ai` verb whose functions are data_map outputs (response, action, post_process)."""
    return {
        "prompt": {"text": "You are a test agent."},
        "params": params or {},
        "SWAIG": {
            "functions": [
                {"function": name, "description": name, "data_map": {"output": output}}
                for name, output in functions.items()
            ],
            **extra,
        },
    }


async def scenario(ai: dict[str, Any], script: list[Any], **kwargs: Any) -> tuple[Scenario, RecordingLlm]:
    llm = RecordingLlm(script)
    s = Scenario(ai, llm=llm, tools=SwaigToolRunner(ai, CallInfo("ai1")), **kwargs)
    await s.start()
    return s, llm


async def done(s: Scenario) -> None:
    await s.finish()
    await s.session.tools.close()


def call(name: str, n: int = 1) -> ToolCallRequested:
    return ToolCallRequested(f"c{name}{n}", name, "{}")


def peaks(frames: list[np.ndarray]) -> set[int]:
    """The tones (to 50 Hz) carrying at least a fifth of the strongest one's energy."""
    pcm = np.concatenate(frames).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm))
    freqs = np.fft.rfftfreq(len(pcm), 1 / RATE)
    strong = spectrum > 0.2 * spectrum.max()
    return {int(round(f / 50) * 50) for f in freqs[strong] if f > 100}


def loud(frames: list[np.ndarray]) -> bool:
    return bool(frames) and max(int(np.abs(f.astype(np.int32)).max()) for f in frames) > 64


@pytest.fixture
def music(tmp_path: Path) -> str:
    path = tmp_path / "music.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(tone(MUSIC_HZ, 3000, amplitude=3000).tobytes())
    return str(path)


# -- settings ------------------------------------------------------------------------------------


async def test_settings_reach_the_next_llm_request() -> None:
    knobs = {"temperature": 1.9, "top-p": 0.5, "max-tokens": 64, "frequency-penalty": 1.0, "presence-penalty": -0.5}
    ai = swaig_ai({"tune": {"response": "tuned", "action": [{"settings": knobs}]}})
    s, llm = await scenario(ai, [call("tune"), "Done."])
    await s.play(ticks=10)
    first, after = llm.settings[0], llm.settings[1]
    assert (first.temperature, first.top_p, first.max_tokens) == (None, None, None)
    assert (after.temperature, after.top_p, after.max_tokens) == (1.5, 0.5, 64)  # temperature clamped
    assert (after.frequency_penalty, after.presence_penalty) == (1.0, -0.5)
    await done(s)


@pytest.mark.parametrize(("confidence", "heard"), [(0.95, False), (0.8, True)])
async def test_confidence_drops_transcripts_below_it(confidence: float, heard: bool) -> None:
    ai = swaig_ai({"strict": {"response": "ok", "action": [{"settings": {"confidence": confidence}}]}})
    llm = RecordingLlm([call("strict"), "Hi.", "Sure."])
    s = Scenario(ai, llm=llm, tools=SwaigToolRunner(ai, CallInfo("ai1")))
    s.session.engines.asr = HintAsr({CALLER_HZ: "book a table"}, confidence=0.9)
    await s.start()
    await s.play(ticks=30)
    await s.play(tone(CALLER_HZ, 800), ticks=60)
    users = [m["content"] for m in s.session.history if m["role"] == "user"]
    assert users == (["book a table"] if heard else [])
    assert [e["reason"] for e in s.events("turn_discarded")] == ([] if heard else ["no_words"])
    await done(s)


# -- hold ----------------------------------------------------------------------------------------


async def test_hold_plays_hold_music_ignores_the_caller_and_resumes_at_its_timeout(music: str) -> None:
    ai = swaig_ai({"park": {"response": "on hold", "action": [{"hold": 2}]}}, {"hold_music": music})
    s, llm = await scenario(ai, [call("park"), "Welcome back."], phrases={CALLER_HZ: "are you there"})
    await s.play(ticks=5)
    assert len(llm.requests) == 1  # the held reply says nothing more: no second round
    assert s.events("ai_hold")[0]["timeout_s"] == 2
    start = len(s.agent)
    await s.play(tone(CALLER_HZ, 1000), ticks=40)  # the caller talks over the hold music
    held = s.agent[start:]
    assert peaks(held) == {MUSIC_HZ}
    assert not s.events("turn_speech_started") and s.asr.calls == 0 and len(llm.requests) == 1
    await s.play(ticks=50)  # 2 s after the hold began
    assert s.events("ai_hold_ended") == [{**s.events("ai_hold_ended")[0], "reason": "timeout"}]
    ended = s.ticks_of("ai_hold_ended")[0]
    await s.play(ticks=40)
    assert len(llm.requests) == 2 and "hold has ended" in llm.requests[1][-1]["content"]
    back = [s.agent[t - 1] for t in s.agent_ticks() if t > ended]
    assert len(back) >= 15 and peaks(back) == {VOICE_HZ}  # the agent speaks again, the music is gone
    await done(s)


async def test_hold_without_music_is_silence() -> None:
    ai = swaig_ai({"park": {"response": "on hold", "action": [{"hold": 1}]}})
    s, llm = await scenario(ai, [call("park"), "Back."])
    await s.play(ticks=45)
    assert not loud(s.agent) and len(llm.requests) == 1
    await s.play(ticks=30)
    assert s.events("ai_hold_ended") and loud(s.agent[-20:])
    await done(s)


# -- background audio ----------------------------------------------------------------------------


async def test_playback_bg_is_mixed_under_the_agent_and_stop_playback_bg_stops_it(music: str) -> None:
    ai = swaig_ai(
        {
            "music_on": {"response": "playing", "action": [{"playback_bg": {"file": music, "wait": True}}]},
            "music_off": {"response": "stopped", "action": [{"stop_playback_bg": True}]},
        }
    )
    script = [call("music_on"), "one two three four five", call("music_off"), "Quiet now."]
    s, llm = await scenario(ai, script, phrases={CALLER_HZ: "stop the music"})
    await s.play(ticks=30)
    speaking = [i - 1 for i in s.agent_ticks()]
    assert s.events("ai_background_started")[0]["wait"] is True
    assert peaks([s.agent[i] for i in speaking[5:15]]) == {VOICE_HZ, MUSIC_HZ}  # under the speech
    await s.play(ticks=40)
    assert peaks(s.agent[-10:]) == {MUSIC_HZ}  # alone after the reply
    await s.play(tone(CALLER_HZ, 800), ticks=80)
    assert s.events("ai_background_stopped")[0]["reason"] == "stopped"
    assert not loud(s.agent[-10:])  # the reply is over and the music stopped
    await done(s)


# -- wait_for_user -------------------------------------------------------------------------------


async def test_native_wait_for_user_ends_the_reply_and_no_attention_prompt_comes() -> None:
    ai = swaig_ai({}, {"attention_timeout": 10000}, native_functions=["wait_for_user"])
    s, llm = await scenario(ai, [call("wait_for_user"), "Never said.", "Hello!"], phrases={CALLER_HZ: "hi"})
    await s.play(ticks=600)  # 12 s of silence: past the attention timeout
    assert len(llm.requests) == 1 and not loud(s.agent)
    assert s.events("ai_wait_for_user")[0]["mode"] == "on"
    await s.play(tone(CALLER_HZ, 800), ticks=60)  # the caller speaks: the agent answers
    assert len(llm.requests) == 2 and llm.requests[1][-1] == {"role": "user", "content": "hi"}
    assert s.events("ai_wait_for_user")[-1]["mode"] == "off"
    await done(s)


async def test_wait_for_user_seconds_then_the_agent_prompts_the_caller() -> None:
    ai = swaig_ai({"pause": {"response": "waiting", "action": [{"wait_for_user": 1}]}})
    s, llm = await scenario(ai, [call("pause"), "Are you still there?"])
    await s.play(ticks=45)
    assert len(llm.requests) == 1
    await s.play(ticks=30)
    assert len(llm.requests) == 2 and llm.requests[1][-1]["role"] == "system"
    assert loud(s.agent[-20:])
    await done(s)


# -- post_process --------------------------------------------------------------------------------


async def test_post_process_hangs_up_after_the_answer_was_spoken() -> None:
    ai = swaig_ai({"bye": {"response": "Say goodbye.", "action": [{"hangup": True}], "post_process": True}})
    s, llm = await scenario(ai, [call("bye"), "Goodbye and thank you."])
    await s.play(ticks=60)
    assert s.tts.spoken == ["Goodbye and thank you."]
    assert s.events("ai_actions_deferred") and s.events("hangup_requested")
    assert s.ticks_of("hangup_requested")[0] >= s.agent_ticks()[-1]  # after the last word left
    assert len(s.agent_ticks()) >= 4 * 10  # four words of 200 ms, all of them played
    await done(s)


async def test_without_post_process_the_hangup_cuts_the_answer() -> None:
    ai = swaig_ai({"bye": {"response": "Say goodbye.", "action": [{"hangup": True}]}})
    s, llm = await scenario(ai, [call("bye"), "Goodbye and thank you."])
    await s.play(ticks=60)
    assert s.events("hangup_requested") and len(s.agent_ticks()) < 4 * 10
    await done(s)


# -- dynamic hints -------------------------------------------------------------------------------


async def test_dynamic_hints_reach_the_recognizer_and_rewrite_transcripts() -> None:
    hints = ["Qubit", {"pattern": "cue bit", "replace": "Qubit", "ignore_case": True}]
    ai = swaig_ai(
        {
            "learn": {"response": "ok", "action": [{"add_dynamic_hints": hints}]},
            "forget": {"response": "ok", "action": [{"clear_dynamic_hints": {}}]},
        }
    )
    llm = RecordingLlm([call("learn"), "Ask me.", call("forget"), "Okay.", "Fine."])
    s = Scenario(ai, llm=llm, tools=SwaigToolRunner(ai, CallInfo("ai1")))
    asr = HintAsr({CALLER_HZ: "tell me about cue bit"})
    s.session.engines.asr = asr
    await s.start()
    await s.play(ticks=30)
    await s.play(tone(CALLER_HZ, 800), ticks=60)
    assert asr.hotwords[-1] == "Qubit"
    assert llm.requests[2][-1] == {"role": "user", "content": "tell me about Qubit"}
    await s.play(tone(CALLER_HZ, 800), ticks=60)  # after clear_dynamic_hints in the last reply
    assert asr.hotwords[-1] is None
    assert llm.requests[-1][-1] == {"role": "user", "content": "tell me about cue bit"}
    await done(s)


# -- change_voice --------------------------------------------------------------------------------


@pytest.mark.parametrize(("voice", "hz"), [("piper.en_US-amy-medium", OTHER_VOICE_HZ), ("elevenlabs.rachel", VOICE_HZ)])
async def test_change_voice_speaks_the_next_utterance_in_the_new_voice(voice: str, hz: int) -> None:
    ai = swaig_ai({"voice": {"response": "ok", "action": [{"change_voice": voice}]}})
    llm = RecordingLlm([call("voice"), "Hello there.", "Now in my voice."])
    s = Scenario(ai, llm=llm, tools=SwaigToolRunner(ai, CallInfo("ai1")), phrases={CALLER_HZ: "go on"})
    s.session.controls.voices = Voices()
    await s.start()
    await s.play(ticks=30)
    assert peaks(s.agent[-25:]) == {VOICE_HZ}  # the reply that changed it keeps the voice it had
    await s.play(tone(CALLER_HZ, 800), ticks=60)
    assert peaks(s.agent[-40:]) == {hz}
    changed, refused = s.events("ai_voice_changed"), s.events("ai_voice_refused")
    assert (len(changed), len(refused)) == ((1, 0) if hz == OTHER_VOICE_HZ else (0, 1))
    await done(s)


# -- user_event ----------------------------------------------------------------------------------


async def test_user_event_reaches_the_event_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    bus = EventBus()
    seen: list[BusEvent] = []
    bus.listen(seen.append, call_id="ai1", kinds=["log"])  # what /api/events?kinds=log streams
    monkeypatch.setattr(ai_fakes, "CallEventLog", lambda call_id: CallEventLog(call_id, bus=bus))
    payload = {"type": "cards_dealt", "score": 21}
    ai = swaig_ai({"deal": {"response": "dealt", "action": [{"user_event": {"event": payload}}]}})
    s, llm = await scenario(ai, [call("deal"), "Your cards."])
    await s.play(ticks=5)
    events = [e.data for e in seen if e.data["event"] == "user_event"]
    assert events == [{**events[0], "user_event": payload}] and s.call.info["user_events"] == [payload]
    await done(s)


# -- tools offered: back_to_back_functions, functions_on_speaker_timeout -------------------------


async def test_back_to_back_functions_lets_the_next_request_call_a_function() -> None:
    ai = swaig_ai(
        {
            "plain": {"response": "plain result"},
            "chain": {"response": "now call plain", "action": [{"back_to_back_functions": True}]},
        }
    )
    s, llm = await scenario(ai, [call("chain"), call("plain"), "Done."])
    await s.play(ticks=10)
    offered = [None if t is None else sorted(d["function"]["name"] for d in t) for t in llm.tools]
    assert offered == [["chain", "plain"], ["chain", "plain"], None]  # after plain: speak, no function
    await done(s)


async def test_functions_on_speaker_timeout_offers_tools_to_the_attention_prompt() -> None:
    params = {"attention_timeout": 10000}
    for action, expect_tools in (([], False), ([{"functions_on_speaker_timeout": True}], True)):
        ai = swaig_ai({"setup": {"response": "ok", "action": action}}, params)
        s, llm = await scenario(ai, [call("setup"), "Hi.", "Still there?"])
        await s.play(ticks=560)
        assert len(llm.requests) == 3 and llm.requests[2][-1]["role"] == "system"  # the nudge
        assert (llm.tools[2] is not None) is expect_tools
        await done(s)


# -- extensive_data ------------------------------------------------------------------------------


async def test_extensive_data_goes_whole_once_then_shortened() -> None:
    big = "row " * 500
    ai = swaig_ai({"dump": {"response": big, "action": [{"extensive_data": True}]}})
    s, llm = await scenario(ai, [call("dump"), "Here it is.", "Anything else?"], phrases={CALLER_HZ: "thanks"})
    await s.play(ticks=30)
    await s.play(tone(CALLER_HZ, 800), ticks=60)
    sent = [next(m["content"] for m in r if m["role"] == "tool") for r in llm.requests[1:]]
    assert sent[0].strip() == big.strip()  # the turn that called it sees it all
    assert len(sent[1]) < EXTENSIVE_KEEP + 100 and sent[1].startswith("row row")
    kept = next(m["content"] for m in s.session.history if m["role"] == "tool")
    assert kept.strip() == big.strip()  # the history (the call log) keeps it whole
    await done(s)


async def test_a_background_file_that_will_not_decode_is_logged_and_the_call_goes_on(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    ai = swaig_ai({"music_on": {"response": "playing", "action": [{"playback_bg": str(bad)}]}})
    s, llm = await scenario(ai, [call("music_on"), "Still here."])
    await s.play(ticks=30)
    assert [e["kind"] for e in s.events("ai_failure")] == ["playback_bg"]
    assert not s.events("ai_background_started") and peaks([s.agent[t - 1] for t in s.agent_ticks()]) == {VOICE_HZ}
    await done(s)


async def test_background_with_wait_holds_the_attention_prompt_back_until_it_ends(tmp_path: Path) -> None:
    long_music = tmp_path / "long.wav"
    with wave.open(str(long_music), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(tone(MUSIC_HZ, 12_000, amplitude=3000).tobytes())
    ai = swaig_ai(
        {"music_on": {"response": "playing", "action": [{"playback_bg": {"file": str(long_music), "wait": True}}]}},
        {"attention_timeout": 10000},
    )
    s, llm = await scenario(ai, [call("music_on"), "Enjoy.", "Still there?"])
    await s.play(ticks=580)  # past the attention timeout, the music still playing
    assert len(llm.requests) == 2 and peaks(s.agent[-10:]) == {MUSIC_HZ}
    await s.play(ticks=60)  # the file ends at 12 s: the held-back prompt comes
    assert s.events("ai_background_stopped")[0]["reason"] == "ended"
    assert len(llm.requests) == 3 and llm.requests[2][-1]["role"] == "system"
    await done(s)


async def test_a_hold_longer_than_the_inactivity_timeout_does_not_end_the_ai() -> None:
    params = {"inactivity_timeout": 10000}
    ai = swaig_ai({"park": {"response": "on hold", "action": [{"hold": 12}]}}, params)
    s, llm = await scenario(ai, [call("park"), "Thanks for waiting."])
    await s.play(ticks=640)  # 12.8 s: past the 10 s inactivity timeout, then the hold ends
    assert not s.events("ai_inactivity") and s.events("ai_hold_ended") and not s.session.finished
    assert len(llm.requests) == 2
    await done(s)
