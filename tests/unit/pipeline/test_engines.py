"""The engine registry (mediaserver/pipeline/engines/__init__.py): one row per engine, lazy imports."""

import importlib
import subprocess
import sys

import pytest

from mediaserver.pipeline.engines import (
    ENGINES,
    OPTIONS,
    AsrOptions,
    LlmOptions,
    UnknownEngineError,
    engine_names,
    load_engine,
)
from mediaserver.pipeline.engines.openai_llm import OpenAiLanguageModel

ROWS = [(kind, name, target) for kind, table in ENGINES.items() for name, target in table.items()]


def test_every_kind_has_an_options_type_and_todays_engines() -> None:
    assert set(ENGINES) == set(OPTIONS) == {"asr", "tts", "llm", "end_of_turn"}
    assert {kind: engine_names(kind) for kind in ENGINES} == {
        "asr": ("whisper",),
        "tts": ("piper",),
        "llm": ("openai",),
        "end_of_turn": ("smart_turn",),
    }


@pytest.mark.parametrize(("kind", "name", "target"), ROWS, ids=[f"{k}:{n}" for k, n, _ in ROWS])
def test_every_row_names_a_module_of_the_package_and_its_factory(kind: str, name: str, target: str) -> None:
    module, sep, factory = target.partition(":")
    assert sep and module and factory, f"{kind}.{name}: {target!r} is not 'module:factory'"
    loaded = importlib.import_module(f"mediaserver.pipeline.engines.{module}")
    assert hasattr(loaded, factory), f"{kind}.{name}: {loaded.__name__} has no {factory}"
    assert callable(getattr(loaded, factory))


def test_a_cheap_engine_is_built_from_its_options() -> None:
    llm = load_engine("llm", "openai", LlmOptions(base_url="http://127.0.0.1:9/v1", api_key="k"))
    assert isinstance(llm, OpenAiLanguageModel)
    assert llm.base_url == "http://127.0.0.1:9/v1"


def test_an_unknown_name_is_refused_with_the_kind_and_the_known_names() -> None:
    with pytest.raises(UnknownEngineError) as info:
        load_engine("asr", "vosk", AsrOptions())
    assert str(info.value) == "unknown asr engine 'vosk' (known: whisper)"


def test_an_unknown_kind_is_refused_with_the_known_kinds() -> None:
    with pytest.raises(UnknownEngineError, match=r"unknown engine kind 'vad' \(known: asr, tts, llm, end_of_turn\)"):
        engine_names("vad")


def test_options_of_another_kind_are_refused() -> None:
    with pytest.raises(TypeError, match="llm engines take LlmOptions, got AsrOptions"):
        load_engine("llm", "openai", AsrOptions())  # type: ignore[call-overload]


def test_importing_the_package_loads_no_engine_or_native_code() -> None:
    code = (
        "import sys, mediaserver.pipeline.engines as e\n"
        "heavy = ('faster_whisper', 'ctranslate2', 'piper', 'onnxruntime', 'openai', 'numpy')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "engines = sorted(m for m in sys.modules if m.startswith('mediaserver.pipeline.engines.'))\n"
        "print(loaded, engines)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[] []"
