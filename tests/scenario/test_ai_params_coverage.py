"""Each `ai.params` key that mediaserver/swaig/coverage.py calls honoured, exercised on a real session.

The calls run on the manual clock of `ai_fakes.Scenario` (one 20 ms tick per step, the caller's
packet of tick k heard in tick k + 3). Each test compares the key set against the key unset (or
set otherwise), so a key that stopped reaching the session fails here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.session import AiSession
from mediaserver.kernel.taps import Digit, DigitSource
from mediaserver.pipeline.llm import LlmSettings
from tests.scenario.ai_fakes import Scenario, ScriptedLlm, noise_burst, tone

GREETING = "one two three four five six seven eight nine ten"  # 10 words x 200 ms: ticks 1..100


def ai(**params: Any) -> dict[str, Any]:
    return {"prompt": {"text": "You are a test."}, "params": params}


def rebuilt(s: Scenario, **engines: Any) -> Scenario:
    """The session built again after the test changed the call or the engines (before start)."""
    for name, value in engines.items():
        setattr(s.engines, name, value)
    s.session = AiSession(s.call, s.config, s.engines)
    return s


def level_db(frames: list[np.ndarray]) -> float:
    x = np.concatenate(frames).astype(np.float64)
    return 10 * float(np.log10(np.mean(x * x)))


async def test_ai_model_and_max_response_tokens_reach_the_llm() -> None:
    seen: list[AiSessionConfig] = []

    def settings(config: AiSessionConfig) -> LlmSettings:
        seen.append(config)
        return LlmSettings(model=config.model, max_tokens=config.max_tokens)

    s = rebuilt(Scenario(ai(ai_model="llama3", max_response_tokens=77)), llm_settings=settings)
    await s.start()
    await s.play(ticks=5)
    assert s.events("ai_started")[0]["model"] == "llama3"
    assert seen and (seen[0].model, seen[0].max_tokens) == ("llama3", 77)
    plain = AiSessionConfig.from_params(ai(), default_model="server-default")
    assert (plain.model, plain.max_tokens) == ("server-default", None)
    await s.finish()


async def test_wait_for_user_and_speak_when_spoken_to_keep_the_agent_quiet() -> None:
    opener = Scenario(ai(), llm=ScriptedLlm(["Hello, how can I help?"]))
    await opener.start()
    await opener.play(ticks=5)
    assert len(opener.llm.requests) == 1  # without either key the agent speaks first
    await opener.finish()

    waits = Scenario(ai(wait_for_user=True), llm=ScriptedLlm(["It is noon."]), phrases={700: "what time is it"})
    await waits.start()
    await waits.play(ticks=50)
    assert not waits.llm.requests and not waits.tts.spoken
    await waits.play(tone(700, 800), ticks=60)
    assert waits.tts.spoken == ["It is noon."]
    await waits.finish()

    # speak_when_spoken_to: not even the static greeting, and no attention nudge, only answers.
    quiet = Scenario(
        ai(speak_when_spoken_to=True, static_greeting=GREETING, attention_timeout=10_000),
        llm=ScriptedLlm(["It is noon."]),
        phrases={700: "what time is it"},
    )
    await quiet.start()
    await quiet.play(ticks=520)
    assert not quiet.llm.requests and not quiet.tts.spoken and not quiet.agent_ticks()
    await quiet.play(tone(700, 800), ticks=60)
    assert quiet.tts.spoken == ["It is noon."]
    await quiet.finish()


async def test_initial_sleep_ms_delays_the_first_words() -> None:
    firsts = []
    for sleep_ms in (0, 1000):
        s = Scenario(ai(static_greeting=GREETING, initial_sleep_ms=sleep_ms))
        await s.start()
        await s.play(ticks=120)
        firsts.append(s.agent_ticks()[0])
        await s.finish()
    assert firsts[1] - firsts[0] == 1000 // 20


async def test_hard_stop_time_says_the_prompt_and_ends_the_ai() -> None:
    s = Scenario(
        ai(static_greeting=GREETING + " " + GREETING, hard_stop_time="1s", hard_stop_prompt="Time is up."),
        phrases={500: "wait a moment"},
    )
    await s.start()
    await s.play(ticks=120)
    [stop] = s.events("ai_hard_stop")
    assert stop["prompt"] == "Time is up." and stop["elapsed_ms"] == 1000
    assert s.tts.spoken == [GREETING + " " + GREETING, "Time is up."]
    # The greeting is cut at the stop: 50 frames of it, then the three words of the prompt (30 frames).
    assert len(s.agent_ticks()) == 50 + 30
    assert s.session.history[-1] == {"role": "assistant", "content": "Time is up."}
    assert s.task is not None and s.task.done() and s.task.result().result == "success"
    assert [e["result"] for e in s.events("ai_finished")] == ["success"]


async def test_hard_stop_prompt_is_not_interruptible_and_the_caller_is_not_answered() -> None:
    s = Scenario(
        ai(wait_for_user=True, hard_stop_time="0h0m1s", hard_stop_prompt="Our time is up, goodbye now."),
        llm=ScriptedLlm(["never said"]),
        phrases={500: "wait a moment"},
    )
    await s.start()
    await s.play(ticks=52)
    await s.play(tone(500, 1000), ticks=60)
    assert not s.events("barge_paused") and not s.llm.requests
    assert s.tts.spoken == ["Our time is up, goodbye now."]
    assert s.agent_ticks() == list(range(51, 51 + 6 * 10))  # six words, whole, from the tick after the stop
    assert s.task is not None and s.task.done()


async def test_ai_volume_is_gain_in_db_clamped_to_50() -> None:
    async def agent_level(volume: object, **params: Any) -> tuple[float, Scenario]:
        s = Scenario(ai(ai_volume=volume, **params), llm=ScriptedLlm(["one two three four five"]))
        await s.start()
        await s.play(ticks=60)
        await s.finish()
        return level_db([s.agent[t - 1] for t in s.agent_ticks()[:40]]), s

    for params in ({"static_greeting": GREETING}, {}):  # the phrase cache and an LLM reply
        base, _ = await agent_level(0, **params)
        quieter, _ = await agent_level(-6, **params)
        assert quieter - base == pytest.approx(-6, abs=0.3)  # through G.711, so not to the last bit
    loud, s = await agent_level(80, static_greeting=GREETING)
    assert s.config.timing.ai_volume_db == 50
    assert any("params.ai_volume" in e["warning"] for e in s.events("ai_config_warning"))
    assert loud > base  # clipped at full scale, but louder than the unscaled greeting
    cached = s.engines.phrase_cache[GREETING][0].pcm
    assert int(np.abs(cached).max()) == 6000  # the shared cache keeps the unscaled audio


async def test_energy_level_is_the_floor_a_quiet_caller_must_pass() -> None:
    started = []
    for level in (52, 100):  # -45 dBFS (the default) and -21 dBFS; the caller talks at about -24
        s = Scenario(ai(wait_for_user=True, energy_level=level), phrases={700: "hello"})
        await s.start()
        await s.play(tone(700, 600, amplitude=3000), ticks=20)
        started.append(bool(s.events("turn_speech_started")))
        await s.finish()
    assert started == [True, False]


class HalfSure:
    """A neural confirmer that gives a pure tone a speech probability of 0.6."""

    def speech_probability(self, pcm: np.ndarray) -> float:
        return 0.6 if np.abs(pcm).max() > 1000 else 0.0

    def reset(self) -> None:
        pass


async def test_vad_config_sets_the_onset_and_the_threshold() -> None:
    onsets = []
    for vad_config in ("", "50:200"):
        s = Scenario(ai(wait_for_user=True, vad_config=vad_config), phrases={700: "hello"})
        await s.start()
        await s.play(tone(700, 600), ticks=20)
        [started] = s.events("turn_speech_started")
        onsets.append((started["decided_at"] - started["caller_sample"]) // 320)
        await s.finish()
    assert onsets == [2, 10]  # frames of voice that make an onset: the default, then 200 ms

    flushed = []
    for vad_config in ("50", "80"):  # the caller's voice over the agent scores 0.6
        s = Scenario(ai(static_greeting=GREETING, vad_config=vad_config), phrases={500: "stop please"})
        s = rebuilt(s, confirmer=HalfSure)
        await s.start()
        await s.play(ticks=30)
        await s.play(tone(500, 800), ticks=30)
        flushed.append(bool(s.events("barge_flushed")))
        await s.finish()
    assert flushed == [True, False]


async def test_outbound_attention_timeout_on_outbound_calls() -> None:
    async def nudged(call_direction: str, **params: Any) -> bool:
        s = Scenario(
            ai(wait_for_user=True, attention_timeout_prompt="Are you there?", **params), llm=ScriptedLlm(["Hello?"])
        )
        s.call.info["direction"] = call_direction
        s = rebuilt(s)
        await s.start()
        await s.play(ticks=510)
        await s.finish()
        return any(m == {"role": "system", "content": "Are you there?"} for m in s.session.history)

    assert await nudged("outbound", outbound_attention_timeout=10_000)
    assert not await nudged("inbound", outbound_attention_timeout=10_000)
    assert await nudged("inbound", direction="outbound", outbound_attention_timeout=10_000)
    assert not await nudged("outbound", direction="inbound", outbound_attention_timeout=10_000)
    assert not await nudged("outbound", outbound_attention_timeout=20_000)  # not yet at 10 s


async def test_attention_timeout_nudges_with_the_attention_prompt() -> None:
    s = Scenario(
        ai(wait_for_user=True, attention_timeout=10_000, attention_timeout_prompt="Check on the caller."),
        llm=ScriptedLlm(["Are you still there?"]),
    )
    await s.start()
    await s.play(ticks=495)
    assert not s.llm.requests
    await s.play(ticks=15)
    [request] = s.llm.requests
    assert request[-1] == {"role": "system", "content": "Check on the caller."}
    await s.play(ticks=30)
    assert s.tts.spoken == ["Are you still there?"]
    await s.finish()


async def test_inactivity_timeout_ends_the_ai() -> None:
    s = Scenario(ai(wait_for_user=True, inactivity_timeout=10_000))
    await s.start()
    await s.play(ticks=495)
    assert s.task is not None and not s.task.done()
    await s.play(ticks=15)
    assert s.task.done() and s.events("ai_inactivity")[0]["reason"] == "inactivity_timeout"


async def test_enable_barge_off_never_pauses_the_agent() -> None:
    paused = []
    for enable in (True, False):
        s = Scenario(ai(static_greeting=GREETING, enable_barge=enable), phrases={500: "stop please"})
        await s.start()
        await s.play(ticks=30)
        await s.play(tone(500, 800), ticks=20)
        paused.append(bool(s.events("barge_paused")))
        await s.finish()
    assert paused == [True, False]


async def test_barge_min_words_and_barge_match_string_decide_the_flush() -> None:
    flushed = []
    for params in (
        {"barge_min_words": 4},
        {"barge_min_words": 5},
        {"barge_min_words": 5, "barge_match_string": "^wait"},
    ):
        s = Scenario(ai(static_greeting=GREETING, **params), phrases={500: "wait a moment please"})
        await s.start()
        await s.play(ticks=30)
        await s.play(tone(500, 1000), ticks=60)
        flushed.append(bool(s.events("barge_flushed")))
        await s.finish()
    assert flushed == [True, False, True]


async def test_interrupt_on_noise_flushes_the_agent_after_a_second_of_noise() -> None:
    outcome = []
    for interrupt in (False, True):
        s = Scenario(ai(static_greeting=GREETING, interrupt_on_noise=interrupt))
        await s.start()
        await s.play(ticks=20)
        await s.play(noise_burst(1200, decay=False), ticks=40)  # hiss with no word in it
        outcome.append((bool(s.events("barge_paused")), bool(s.events("barge_flushed"))))
        await s.finish()
    assert outcome == [(True, False), (True, True)]


async def test_convo_seeds_the_history_and_the_sliding_window_cuts_it() -> None:
    convo = [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "hello Ada"},
        {"role": "user", "content": "I need a table"},
        {"role": "assistant", "content": "for how many?"},
    ]
    seen = []
    for window in (0, 2):
        s = Scenario(ai(convo=convo, conversation_sliding_window=window))
        await s.start()
        await s.play(ticks=5)
        seen.append(s.llm.requests[0][1:])
        await s.finish()
    assert seen == [convo, convo[2:]]


async def test_digits_end_on_the_terminator_or_after_digit_timeout() -> None:
    s = Scenario(ai(wait_for_user=True, digit_terminators="#", digit_timeout=2000), llm=ScriptedLlm(["ok", "ok"]))
    await s.start()
    for digit in "12#":
        s.call.media.taps.dtmf.emit(Digit(digit, DigitSource.RFC4733))
        await s.play(ticks=2)
    assert s.llm.requests[0][-1] == {"role": "user", "content": "12#"}
    for digit in "34":
        s.call.media.taps.dtmf.emit(Digit(digit, DigitSource.RFC4733))
        await s.play(ticks=2)
    await s.play(ticks=95)
    assert len(s.llm.requests) == 1  # 1.98 s since the 4: not yet
    await s.play(ticks=5)
    assert s.llm.requests[1][-1] == {"role": "user", "content": "34"}
    await s.finish()


async def test_first_word_timeout_drops_a_short_wordless_burst() -> None:
    failures = []
    for first_word_ms in (1000, 0):
        s = Scenario(ai(wait_for_user=True, first_word_timeout=first_word_ms))
        await s.start()
        await s.play(noise_burst(300, amplitude=12000, decay=False), ticks=60)
        failures.append(
            ([e["reason"] for e in s.events("turn_discarded")], [e["kind"] for e in s.events("ai_failure")])
        )
        await s.finish()
    assert failures == [(["no_words"], []), ([], ["empty_transcript"])]


async def test_speech_timeout_caps_a_long_utterance() -> None:
    reasons = []
    for cap in (1000, 60_000):
        s = Scenario(ai(wait_for_user=True, speech_timeout=cap, speech_event_timeout=0), phrases={700: "and so on"})
        await s.start()
        await s.play(tone(700, 3000), ticks=60)
        reasons.append((s.events("turn_endpoint")[0]["reason"], s.ticks_of("turn_endpoint")[0]))
        await s.finish()
    # the caller's voice is heard from tick 4 (behind the jitter buffer's 3 frames): its first second ends in tick 53
    assert reasons[0] == ("speech_timeout", 3 + 1000 // 20)
    assert reasons[1][0] == "end_of_speech" and reasons[1][1] > 150


async def test_speech_event_timeout_ends_a_turn_whose_transcript_stopped() -> None:
    reasons = []
    for timeout in (1000, 0):
        s = Scenario(ai(wait_for_user=True, speech_event_timeout=timeout), phrases={700: "and so on"})
        await s.start()
        await s.play(tone(700, 4000), ticks=60)
        reasons.append(s.events("turn_endpoint")[0]["reason"])
        await s.finish()
    assert reasons == ["speech_event_timeout", "end_of_speech"]


def test_bad_values_are_named_and_replaced() -> None:
    config = AiSessionConfig.from_params(
        ai(
            initial_sleep_ms="soon",
            hard_stop_time="when it ends",
            ai_volume=80,
            direction="sideways",
            vad_config="loud:fast",
            outbound_attention_timeout=5,
            speak_when_spoken_to="perhaps",
        )
    )
    joined = "\n".join(config.warnings)
    for key in (
        "params.initial_sleep_ms",
        "params.hard_stop_time",
        "params.ai_volume",
        "params.direction",
        "params.vad_config: threshold",
        "params.vad_config: frame_ms",
        "params.outbound_attention_timeout",
        "params.speak_when_spoken_to",
    ):
        assert key in joined
    timing = config.timing
    assert (timing.initial_sleep_ms, timing.hard_stop_ms, timing.ai_volume_db, timing.direction) == (0, 0, 50, "")
    assert (timing.confirm_threshold, timing.onset_ms, timing.outbound_attention_timeout_ms) == (None, None, 10_000)
    assert not timing.speak_when_spoken_to


@pytest.mark.parametrize(
    ("value", "ms"), [("1h45m30s", 6_330_000), ("90s", 90_000), ("2m", 120_000), ("30", 30_000), (12, 12_000)]
)
def test_hard_stop_time_forms(value: object, ms: int) -> None:
    assert AiSessionConfig.from_params(ai(hard_stop_time=value)).timing.hard_stop_ms == ms


LONG_ANSWER = (
    "Thank you for calling, we open at nine every day, and we close at five in the evening, except on holidays."
)


@pytest.mark.parametrize(
    ("quick_stops", "clauses"),
    [
        (0, [LONG_ANSWER]),
        (1, ["Thank you for calling,", LONG_ANSWER.split(", ", 1)[1]]),
        (None, LONG_ANSWER.replace(", ", ",|").split("|")),  # the schema's default: 3
    ],
)
async def test_speech_gen_quick_stops_cuts_the_first_clauses_early_for_tts(
    quick_stops: int | None, clauses: list[str]
) -> None:
    params = {} if quick_stops is None else {"speech_gen_quick_stops": quick_stops}
    s = Scenario(ai(**params), llm=ScriptedLlm([LONG_ANSWER]))
    await s.start()
    await s.play(ticks=20)
    assert s.tts.spoken == clauses
    await s.finish()
