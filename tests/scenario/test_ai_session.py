"""The AI session on a real Call and MediaStream, tick by tick, with fake engines: exact frames.

Frame arithmetic used below: the caller's packet sent before tick k reaches the session at tick
k + 3 (the jitter buffer holds 3 frames); over agent speech one voiced frame makes a barge-in
onset (2 elsewhere), so caller voice that starts with the packet of tick k pauses the agent in
tick k + 3. Each tick analyses its inbound frame before it takes the agent's frame, so the decision
tick itself carries no agent audio: the last agent frame is the one of the tick before.
"""

from __future__ import annotations

import numpy as np
import pytest

from mediaserver.agents.ai.tools import StaticTool, StaticToolRunner, ToolOutcome
from mediaserver.pipeline.llm import LlmError, ToolCallRequested
from tests.scenario.ai_fakes import WORD_SAMPLES, Scenario, ScriptedLlm, WordTts, noise_burst, tone

GREETING = "one two three four five six seven eight nine ten"  # 10 words x 200 ms = ticks 1..100


def greeting_call(**params: object) -> dict[str, object]:
    return {"prompt": {"text": "You are a test."}, "params": {"static_greeting": GREETING, **params}}


async def test_barge_in_pauses_in_the_decision_tick_and_history_keeps_the_heard_words() -> None:
    s = Scenario(greeting_call(), llm=ScriptedLlm(["Sure, here it is."]), phrases={500: "wait a moment please"})
    await s.start()
    await s.play(ticks=30)
    await s.play(tone(500, 1000), ticks=60)  # caller voice in the packets of ticks 31..80
    assert s.ticks_of("barge_paused") == [34]
    agent = s.agent_ticks()
    assert [t for t in agent if t <= 34] == list(range(1, 34))  # the greeting played up to the tick before
    assert not [t for t in agent if 33 < t <= 118]  # not one agent frame from the decision tick on
    flushed = s.events("barge_flushed")[0]
    # 33 frames x 160 samples = 5280 played; words end every 1600 samples: three words heard.
    assert flushed["cursor"] == 33 * 160 and flushed["heard_text"] == "one two three"
    assert s.session.history[0] == {"role": "assistant", "content": "one two three"}
    await s.finish()
    assert s.llm.requests[0][1:] == [
        {"role": "assistant", "content": "one two three"},
        {"role": "user", "content": "wait a moment please"},
    ]


async def test_far_end_delay_is_taken_off_the_played_cursor() -> None:
    s = Scenario(greeting_call(), phrases={500: "stop"}, far_end_delay_ms=100)
    await s.start()
    await s.play(ticks=37)  # voice from the packet of tick 38: decided in tick 41, cursor 6400 = end of word 4
    await s.play(tone(500, 600), ticks=40)
    flushed = s.events("barge_flushed")[0]
    assert flushed["cursor"] == 40 * 160 == 4 * WORD_SAMPLES
    assert flushed["heard_text"] == "one two three"  # 6400 - 800 samples of far-end buffer
    await s.finish()


async def _greeting_audio(cough_at: int | None) -> Scenario:
    s = Scenario(greeting_call())
    await s.start()
    if cough_at is not None:
        await s.play(ticks=cough_at - 1)
        await s.play(noise_burst(100))
    await s.play(ticks=160 - s.tick)
    await s.finish()
    return s


async def test_cough_pauses_then_resumes_from_the_exact_sample() -> None:
    clean = await _greeting_audio(None)
    coughed = await _greeting_audio(31)
    assert coughed.ticks_of("barge_paused") == [34]
    # Only the burst's first frames stand above the echo gate (the agent's own level less 15 dB);
    # three unvoiced frames end it in tick 38, its final transcript is "" and the reply resumes there.
    assert coughed.ticks_of("barge_resumed") == [38] and not coughed.events("barge_flushed")
    agent = coughed.agent_ticks()
    assert [t for t in agent if t <= 37] == list(range(1, 34))
    assert agent[33] == 39  # the first frame after the resume tick (the empty transcript comes between ticks)
    # Nothing lost, nothing repeated: the agent audio is the clean greeting sample for sample.
    played = np.concatenate([coughed.agent[t - 1] for t in agent])
    reference = np.concatenate([clean.agent[t - 1] for t in clean.agent_ticks()])
    assert len(agent) == 100 and np.array_equal(played, reference)
    assert coughed.call.media.playout.played_samples == 10 * WORD_SAMPLES
    assert coughed.session.history == [{"role": "assistant", "content": GREETING}]
    assert coughed.events("turn_discarded")[0]["reason"] == "barge_not_confirmed"


async def test_noise_the_confirmer_rejects_pauses_briefly_and_never_flushes() -> None:
    s = Scenario(greeting_call(interrupt_on_noise=True), confirmer=True)
    await s.start()
    await s.play(ticks=30)
    await s.play(noise_burst(1200, decay=False))  # 1.2 s of hiss from tick 31's packet: webrtcvad calls it voice
    await s.play(ticks=30)
    # webrtcvad pauses at once (tick 34); silero never agrees, so after 4 grace frames the run counts
    # as silence: 3 more frames end the utterance (tick 40), its transcript is "" and the reply resumes.
    assert s.ticks_of("barge_paused") == [34] and s.ticks_of("barge_resumed") == [40]
    assert not s.events("barge_flushed")
    # The whole greeting played, seven ticks late (no agent frame in ticks 34..40).
    assert s.call.media.playout.played_samples == 10 * WORD_SAMPLES and s.agent_ticks()[-1] == 107
    await s.finish()


async def test_speech_the_confirmer_accepts_still_barges_in() -> None:
    s = Scenario(greeting_call(), phrases={500: "stop please"}, confirmer=True)
    await s.start()
    await s.play(ticks=30)
    await s.play(tone(500, 800), ticks=20)
    assert s.ticks_of("barge_paused") == [34] and s.events("barge_flushed")
    await s.finish()


async def test_static_greeting_no_barge_is_not_paused() -> None:
    s = Scenario(greeting_call(static_greeting_no_barge=True), phrases={500: "hello there"})
    await s.start()
    await s.play(ticks=30)
    await s.play(tone(500, 600), ticks=5)
    assert not s.events("barge_paused")
    assert s.agent_ticks()[:40] == list(range(1, 41))
    await s.finish()


@pytest.mark.parametrize("eos_ms", [300, 700, 1500])
async def test_end_of_speech_timeout_and_preemptive_reply_on_the_next_tick(eos_ms: int) -> None:
    s = Scenario(
        {"prompt": {"text": "t"}, "params": {"wait_for_user": True, "end_of_speech_timeout": eos_ms}},
        llm=ScriptedLlm(["It is noon."]),
        phrases={700: "what time is it"},
    )
    await s.start()
    await s.play(ticks=10)
    await s.play(tone(700, 1000), ticks=100)  # voice in the packets of ticks 11..60, received 14..63
    [ended] = s.events("turn_speech_ended")
    [endpoint] = s.events("turn_endpoint")
    # Inbound frame i is the packet of tick i + 1; the hangover ends the voice 3 frames later.
    assert ended["caller_sample"] == 60 * 320 and s.ticks_of("turn_speech_ended") == [66]
    assert endpoint["caller_sample"] - ended["caller_sample"] == eos_ms * 16
    assert s.ticks_of("turn_endpoint") == [63 + eos_ms // 20]
    assert endpoint["preemptive"] is True  # the final transcript was ready in the trailing silence
    assert s.ticks_of("turn_first_agent_frame") == [64 + eos_ms // 20]
    assert s.agent_ticks()[0] == 64 + eos_ms // 20
    assert s.tts.spoken == ["It is noon."]
    await s.finish()


async def test_caller_going_on_cancels_the_preemptive_reply() -> None:
    s = Scenario(
        {"prompt": {"text": "t"}, "params": {"wait_for_user": True, "end_of_speech_timeout": 1000}},
        llm=ScriptedLlm(["first answer", "second answer"]),
        phrases={700: "book a table"},
    )
    await s.start()
    await s.play(tone(700, 600), ticks=20)  # a pause of 400 ms: a final transcript, a preemptive start
    assert len(s.llm.requests) == 1
    await s.play(tone(700, 600), ticks=80)
    # The preemptive reply was generated (and even synthesized) but never played nor kept.
    assert len(s.llm.requests) == 2 and len(s.ticks_of("turn_endpoint")) == 1
    assert s.agent_ticks()[0] == s.ticks_of("turn_endpoint")[0] + 1
    assert s.session.history == [
        {"role": "user", "content": "book a table"},
        {"role": "assistant", "content": "second answer"},
    ]
    await s.finish()


async def test_a_preemptive_replys_tool_waits_for_the_turn_and_never_runs_when_the_caller_goes_on() -> None:
    """A tool has effects outside the call: the preemptive reply asks for it in the caller's pause,
    the caller goes on, and the webhook is never called; the committed turn's reply runs its own."""
    booked: list[str] = []
    book = StaticTool("book", "Book", lambda args, control: (booked.append(args), ToolOutcome("booked"))[1])
    runner = StaticToolRunner([book])
    script = [
        ToolCallRequested("c1", "book", '{"when": "now"}'),  # the pause's guess
        ToolCallRequested("c2", "book", '{"when": "tuesday"}'),  # the whole turn's
        "Booked for Tuesday.",
    ]
    s = Scenario(
        {"prompt": {"text": "t"}, "params": {"wait_for_user": True, "end_of_speech_timeout": 1000}},
        llm=ScriptedLlm(script),
        tools=runner,
        phrases={700: "book a table"},
    )
    await s.start()
    await s.play(tone(700, 600), ticks=20)  # a pause of 400 ms: a final transcript, a preemptive start
    assert len(s.llm.requests) == 1
    assert not s.events("tool_invoked")  # the reply asked for the tool; it waits for the endpoint
    await s.play(tone(700, 600), ticks=80)
    assert [inv.id for inv in runner.invocations] == ["c2"] and len(booked) == 1
    assert [e["name"] for e in s.events("tool_invoked")] == ["book"]
    await s.finish()


async def test_own_echo_does_not_barge_in_but_the_same_audio_at_full_level_does() -> None:
    for gain, expect_barge in ((0.1, False), (1.0, True)):  # -20 dB echo return loss vs none at all
        s = Scenario(greeting_call(), phrases={300: "one two"})
        await s.start()
        for _ in range(60):
            back = s.agent[s.tick - 6] if s.tick >= 6 else np.zeros(160, dtype=np.int16)  # 120 ms echo path
            await s.step((back.astype(np.float64) * gain).astype(np.int16))
        assert bool(s.events("barge_paused")) is expect_barge
        await s.finish()


async def test_llm_timeout_speaks_the_recovery_phrase() -> None:
    s = Scenario({"prompt": {"text": "t"}}, llm=ScriptedLlm([LlmError("timeout", "no first token")]))
    await s.start()
    await s.play(ticks=60)
    [failure] = s.events("ai_failure")
    assert failure["kind"] == "llm_timeout"
    assert s.tts.spoken == [s.config.recovery["llm_timeout"]] and s.agent_ticks()
    await s.finish()


async def test_wordless_long_noise_gets_the_empty_transcript_phrase() -> None:
    s = Scenario({"prompt": {"text": "t"}, "params": {"wait_for_user": True}})
    await s.start()
    await s.play(noise_burst(1500, amplitude=12000, decay=False), ticks=80)  # 1.5 s of hiss, no tone
    assert [e["kind"] for e in s.events("ai_failure")] == ["empty_transcript"]
    assert s.tts.spoken == [s.config.recovery["empty_transcript"]]
    assert not s.llm.requests
    await s.finish()


async def test_tool_call_speaks_a_function_filler_and_feeds_the_result_back() -> None:
    weather = StaticTool("weather", "Weather for a city", lambda args, control: ToolOutcome(f"sunny in {args['city']}"))
    runner = StaticToolRunner([weather])
    llm = ScriptedLlm([ToolCallRequested("c1", "weather", '{"city": "Paris"}'), "It is sunny in Paris."])
    ai = {
        "prompt": {"text": "t"},
        "params": {"wait_for_user": True},
        "languages": [{"name": "English", "code": "en-US", "voice": "x", "function_fillers": ["One moment."]}],
    }
    s = Scenario(ai, llm=llm, phrases={700: "weather in paris"}, tools=runner)
    await s.start()
    await s.play(tone(700, 800), ticks=100)
    assert s.tts.spoken[0] == "One moment." and s.tts.spoken[1].startswith("It is sunny in Paris")
    assert runner.invocations[0].arguments == '{"city": "Paris"}'
    tool_message = {"role": "tool", "tool_call_id": "c1", "content": "sunny in Paris"}
    assert tool_message in llm.requests[1] and tool_message in s.session.history
    assert s.session.history[-1] == {"role": "assistant", "content": "It is sunny in Paris."}
    await s.finish()


async def test_tool_failure_and_tts_failure_are_logged_with_their_class() -> None:
    broken = StaticTool("broken", "fails", lambda args, control: 1 / 0)  # type: ignore[arg-type,return-value]
    s = Scenario(
        {"prompt": {"text": "t"}},
        llm=ScriptedLlm([ToolCallRequested("c1", "broken", "{}")]),
        tools=StaticToolRunner([broken]),
    )
    await s.start()
    await s.play(ticks=40)
    assert [e["kind"] for e in s.events("ai_failure")] == ["tool_failure"]
    assert s.tts.spoken == [s.config.recovery["tool_failure"]]
    await s.finish()
    mute = Scenario({"prompt": {"text": "t"}, "params": {"static_greeting": "hi"}}, tts=WordTts(fail=True))
    await mute.start()
    await mute.play(ticks=10)
    assert [e["kind"] for e in mute.events("ai_failure")] == ["tts_failure"]
    await mute.finish()
