"""`AiSessionConfig.from_params`: the ai verb's keys become turn parameters; bad values are named."""

from __future__ import annotations

from mediaserver.agents.ai.config import AiSessionConfig


def test_turn_parameters_greeting_fillers_hints_and_knobs() -> None:
    config = AiSessionConfig.from_params(
        {
            "prompt": {"text": "Be brief.", "temperature": 0.3, "max_tokens": 100},
            "params": {
                "end_of_speech_timeout": 900,
                "barge_min_words": "2",
                "barge_match_string": "stop|wait",
                "enable_barge": "false",
                "attention_timeout": 15000,
                "inactivity_timeout": 20000,
                "first_word_timeout": 800,
                "speech_event_timeout": 1200,
                "speech_timeout": 30000,
                "digit_timeout": 2000,
                "digit_terminators": "#",
                "interrupt_on_noise": True,
                "static_greeting": "Hi!",
                "static_greeting_no_barge": "true",
                "wait_for_user": False,
                "ai_model": "llama3",
                "energy_level": 60,
            },
            "languages": [
                {
                    "name": "English",
                    "code": "en-US",
                    "voice": "v",
                    "speech_fillers": ["Hmm."],
                    "function_fillers": ["One moment."],
                }
            ],
            "hints": ["SignalWire", {"hint": "AI", "pattern": "a eye", "replace": "AI", "ignore_case": True}],
            "pronounce": [{"replace": "SQL", "with": "sequel"}],
        }
    )
    turn = config.turn
    assert (turn.end_of_speech_ms, turn.barge_min_words, turn.barge_match, turn.enable_barge) == (
        900,
        2,
        "stop|wait",
        False,
    )
    assert (turn.attention_timeout_ms, turn.inactivity_timeout_ms, turn.first_word_timeout_ms) == (15000, 20000, 800)
    assert (turn.speech_event_timeout_ms, turn.speech_timeout_ms, turn.digit_timeout_ms) == (1200, 30000, 2000)
    assert turn.digit_terminators == "#" and turn.interrupt_on_noise
    assert config.static_greeting == "Hi!" and config.static_greeting_no_barge and not config.wait_for_user
    assert (config.prompt, config.temperature, config.max_tokens, config.model) == ("Be brief.", 0.3, 100, "llama3")
    assert config.speech_fillers == ["Hmm."] and config.function_fillers == ["One moment."]
    assert config.hotwords == ["SignalWire", "AI"] and len(config.hint_rules) == 1
    assert config.pronounce == [{"replace": "SQL", "with": "sequel"}] and config.energy_level == 60
    assert config.warnings == []


def test_bad_values_fall_back_to_defaults_with_a_warning_naming_the_key() -> None:
    config = AiSessionConfig.from_params(
        {
            "prompt": {"pom": [{"title": "Role", "body": "You help.", "bullets": ["Be kind"]}]},
            "params": {
                "end_of_speech_timeout": "soon",
                "barge_min_words": 500,
                "barge_match_string": "(",
                "wait_for_user": "maybe",
            },
            "hints": [{"hint": "x", "pattern": "(", "replace": "y"}],
        }
    )
    assert config.turn.end_of_speech_ms == 700 and config.turn.barge_min_words == 99 and config.turn.barge_match == ""
    assert config.prompt == "## Role\nYou help.\n- Be kind"
    joined = "\n".join(config.warnings)
    for key in (
        "params.end_of_speech_timeout",
        "params.barge_min_words",
        "params.barge_match_string",
        "params.wait_for_user",
        "hints[0]",
    ):
        assert key in joined
