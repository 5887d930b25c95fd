"""[performance]: inference priority, the partial ASR cap and the TTS cache, checked at load."""

from __future__ import annotations

import pytest

from mediaserver.settings import ConfigError, PerformanceSettings, load_settings


def test_the_defaults_put_inference_below_the_loop() -> None:
    performance = load_settings().performance
    assert performance == PerformanceSettings()
    assert performance.inference_nice > 0 and performance.partial_asr_per_s > 0 and performance.tts_cache_mb > 0


def test_a_config_changes_them_and_bad_values_are_named() -> None:
    performance = load_settings(overrides={"performance.inference_nice": 0, "performance.tts_cache_mb": 0}).performance
    assert performance.inference_nice == 0 and performance.tts_cache_mb == 0
    with pytest.raises(ConfigError, match=r"performance\.inference_nice"):
        load_settings(overrides={"performance.inference_nice": 25})
    with pytest.raises(ConfigError, match=r"performance\.partial_asr_per_s"):
        load_settings(overrides={"performance.partial_asr_per_s": -1})
