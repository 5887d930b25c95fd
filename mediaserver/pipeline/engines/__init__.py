"""The speech engines, and `ENGINES`: the one table that names them (docs/architecture.md).

Theory of operation: each engine is one module of this package implementing the Protocol of its
kind (`pipeline/asr.py` SpeechRecognizer, `tts.py` TtsEngine, `llm.py` LanguageModel,
`end_of_turn.py` EndOfTurnDetector) and exposing a factory that takes the kind's options value
(`AsrOptions`, `TtsOptions`, `LlmOptions`, `TurnOptions`) and returns the engine. `ENGINES` maps
kind -> engine name -> "module:factory" (the module relative to this package). Adding an engine
is its module plus its row here: the settings check the configured names against this table
(`asr.engine`, `tts.engine`, `llm.engine`, `end_of_turn.engine`) and `app.py` builds what the
config names through `load_engine`.

The table holds strings: importing this package loads no engine module and no native code
(faster-whisper, piper, onnxruntime); `load_engine` imports only the module it builds from.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, overload

if TYPE_CHECKING:
    from mediaserver.pipeline.asr import SpeechRecognizer
    from mediaserver.pipeline.end_of_turn import EndOfTurnDetector
    from mediaserver.pipeline.llm import LanguageModel
    from mediaserver.pipeline.tts import TtsEngine

__all__ = [
    "ENGINES",
    "OPTIONS",
    "AsrOptions",
    "EngineKind",
    "LlmOptions",
    "TtsOptions",
    "TurnOptions",
    "UnknownEngineError",
    "engine_names",
    "import_factory",
    "load_engine",
    "load_factory",
]

EngineKind = Literal["asr", "tts", "llm", "end_of_turn"]


@dataclass(frozen=True, slots=True)
class AsrOptions:
    model: str = ""  # a model name or path; "" = the engine's bundled default
    window_s: float = 10.0  # the encoder window, for engines that have one
    threads: int = 1
    workers: int = 1  # transcriptions that may run at once (model replicas)


@dataclass(frozen=True, slots=True)
class TtsOptions:
    model: str = ""  # a voice model path; "" = the engine's bundled default
    threads: int = 1


@dataclass(frozen=True, slots=True)
class LlmOptions:
    base_url: str  # an http(s) endpoint
    api_key: str = ""  # "" = no key (local servers)


@dataclass(frozen=True, slots=True)
class TurnOptions:
    model: str = ""  # a model path; "" = the engine's bundled default
    threads: int = 1


# kind -> engine name -> "module:factory", the module relative to this package.
ENGINES: Final[Mapping[str, Mapping[str, str]]] = {
    "asr": {"whisper": "whisper_asr:build"},
    "tts": {"piper": "piper_tts:build"},
    "llm": {"openai": "openai_llm:build"},
    "end_of_turn": {"smart_turn": "smart_turn:build"},
}

# kind -> the options type its factories take.
OPTIONS: Final[Mapping[str, type]] = {
    "asr": AsrOptions,
    "tts": TtsOptions,
    "llm": LlmOptions,
    "end_of_turn": TurnOptions,
}


class UnknownEngineError(LookupError):
    """No such engine kind, or no engine of that name; the message names the known ones."""


def engine_names(kind: str) -> tuple[str, ...]:
    """The names `ENGINES` knows for `kind`, sorted."""
    table = ENGINES.get(kind)
    if table is None:
        raise UnknownEngineError(f"unknown engine kind {kind!r} (known: {', '.join(ENGINES)})")
    return tuple(sorted(table))


def load_factory(kind: str, name: str) -> Callable[[Any], Any]:
    """The factory of engine `name` of `kind`: its module imported, its function looked up."""
    known = engine_names(kind)
    if name not in known:
        raise UnknownEngineError(f"unknown {kind} engine {name!r} (known: {', '.join(known)})")
    return import_factory(f"{__name__}.{ENGINES[kind][name]}")


def import_factory(path: str) -> Callable[[Any], Any]:
    """The function `path` names ("package.module:function"), its module imported."""
    module, _, function = path.partition(":")
    factory: Callable[[Any], Any] = getattr(importlib.import_module(module), function)
    return factory


@overload
def load_engine(kind: Literal["asr"], name: str, options: AsrOptions) -> SpeechRecognizer: ...
@overload
def load_engine(kind: Literal["tts"], name: str, options: TtsOptions) -> TtsEngine: ...
@overload
def load_engine(kind: Literal["llm"], name: str, options: LlmOptions) -> LanguageModel: ...
@overload
def load_engine(kind: Literal["end_of_turn"], name: str, options: TurnOptions) -> EndOfTurnDetector: ...
def load_engine(kind: EngineKind, name: str, options: Any) -> Any:
    """Import engine `name` of `kind` and build it from `options` (blocking: may load a model)."""
    factory = load_factory(kind, name)
    expected = OPTIONS[kind]
    if not isinstance(options, expected):
        raise TypeError(f"{kind} engines take {expected.__name__}, got {type(options).__name__}")
    return factory(options)
