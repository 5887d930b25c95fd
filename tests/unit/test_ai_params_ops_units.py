"""The pieces behind the ai verb's operations and language params: reading, storing, voice lookup."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.conversations import ConversationStore, resume
from mediaserver.agents.ai.languages import DEFAULT_VOICE, Language, VoiceTable, read_languages
from mediaserver.agents.ai.ops import AiOps, read_ops
from mediaserver.pipeline.asr import Recognition
from mediaserver.pipeline.engines.whisper_asr import WhisperRecognizer
from mediaserver.pipeline.engines.whisper_languages import MultilingualWhisper, multilingual


def test_read_ops_defaults_level_one_with_a_url_and_warns_on_bad_values() -> None:
    warnings: list[str] = []
    assert read_ops({}, warnings) == AiOps() and warnings == []
    ops = read_ops({"debug_webhook_url": "https://x/debug", "enable_accounting": "true", "debug": 2}, warnings)
    assert (ops.debug_webhook_level, ops.enable_accounting, ops.debug, ops.diagnostics) == (1, True, 2, True)
    assert read_ops({"debug_webhook_url": "https://x", "debug_webhook_level": 0}, warnings).debug_webhook_level == 0
    bad = read_ops({"debug_webhook_level": 9, "debug_webhook_url": "ftp://x", "summary_mode": "long"}, warnings)
    assert (bad.debug_webhook_level, bad.debug_webhook_url, bad.summary_mode) == (2, "", "")
    assert [w.split(":")[0] for w in warnings] == [
        "params.debug_webhook_level",
        "params.debug_webhook_url",
        "params.summary_mode",
    ]


def test_the_config_names_a_bad_value_and_the_call_goes_on() -> None:
    config = AiSessionConfig.from_params(
        {"prompt": {"text": "x"}, "params": {"debug": "lots"}, "languages": [{"name": "French"}, {"code": "de-DE"}]}
    )
    assert config.ops.debug == 0 and config.languages == [Language("de-DE", "de-DE")]
    assert any(w.startswith("params.debug:") for w in config.warnings)
    assert any(w.startswith("languages[0]: needs a code") for w in config.warnings)


def test_read_languages_keeps_name_code_voice_in_order() -> None:
    warnings: list[str] = []
    doc = {"languages": [{"name": "French", "code": "fr-FR", "voice": "gcloud.fr-FR-Neural2-B"}]}
    assert read_languages(doc, warnings) == [Language("French", "fr-FR", "gcloud.fr-FR-Neural2-B")]
    assert Language("x", "pt_BR").primary == "pt" and warnings == []
    assert read_languages({"languages": "en"}, warnings) == [] and warnings


def test_a_conversation_file_stays_in_its_folder_and_a_broken_one_is_reported(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c")
    escape = store.path_of("../../etc/passwd")
    assert escape.parent == tmp_path / "c" and escape.name.endswith(".json")
    assert store.path_of("a/b") != store.path_of("a_b")  # the hash keeps look-alike ids apart
    store.save("a/b", [{"role": "user", "content": "hi"}], "s")
    assert store.load("a/b")["messages"] == [{"role": "user", "content": "hi"}]  # type: ignore[index]
    assert store.load("a_b") is None
    store.path_of("bad").write_text("{not json")
    errors: list[str] = []
    assert resume(store, AiOps(conversation_id="bad"), errors.append) == [] and "not resumed" in errors[0]


def test_voice_table_matches_whole_then_without_model_then_without_engine() -> None:
    opened: list[str] = []
    bundled, other = object(), object()

    class Beside:
        def open(self, name: str) -> object | None:
            return other if name == "piper.amy" else None

    table = VoiceTable(
        {"gcloud.fr-FR-Neural2-B": "fr.onnx", "de-voice": "de.onnx"},
        lambda path: opened.append(path) or path,  # type: ignore[func-returns-value]
        Beside(),  # type: ignore[arg-type]
        bundled,  # type: ignore[arg-type]
    )
    assert table.open("gcloud.fr-FR-Neural2-B:arcana") == "fr.onnx"
    assert table.open("elevenlabs.de-voice") == "de.onnx" and table.open("de-voice") == "de.onnx"
    assert opened == ["fr.onnx", "de.onnx"]  # each file loaded once
    assert table.open(DEFAULT_VOICE) is bundled and table.open("piper.amy") is other and table.open("x.y") is None
    assert table.knows("gcloud.fr-FR-Neural2-B") and not table.knows("piper.amy")


class _Segment:
    def __init__(self, text: str) -> None:
        self.text, self.tokens, self.avg_logprob = text, [1, 2, 3], -0.1


class _Model:
    """faster-whisper's WhisperModel as MultilingualWhisper uses it."""

    def __init__(self, multilingual: bool) -> None:
        self.model = SimpleNamespace(is_multilingual=multilingual)
        self.asked: list[str | None] = []

    def transcribe(self, audio: np.ndarray, *, language: str | None, **_: object) -> tuple[list[_Segment], object]:
        self.asked.append(language)
        return [_Segment(" bonjour ")], SimpleNamespace(language=language or "fr")


def _whisper(multilingual_model: bool) -> WhisperRecognizer:
    recognizer = object.__new__(WhisperRecognizer)  # no model file: the model is the stand-in above
    recognizer.model = _Model(multilingual_model)  # type: ignore[assignment]
    return recognizer


def test_a_multilingual_whisper_hears_the_language_asked_or_detects_it() -> None:
    asr = multilingual(_whisper(True))
    assert isinstance(asr, MultilingualWhisper)
    pcm = np.zeros(16_000, dtype=np.int16)
    result, heard = asr.transcribe_language(pcm, language=None)
    assert (result.text, heard) == ("bonjour", "fr") and 0.85 < result.confidence < 0.95
    assert asr.transcribe_language(pcm, language="de")[1] == "de"
    assert asr.recognizer.model.asked == [None, "de"]  # type: ignore[attr-defined]
    assert asr.transcribe_language(pcm[:800], language=None) == (Recognition("", 0.0), "")
    english = _whisper(False)
    assert multilingual(english) is english  # tiny.en: one language, nothing to switch
