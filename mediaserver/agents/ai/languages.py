"""`ai.languages` and `params.languages_enabled`: the language the caller is heard in and spoken to.

Theory of operation: `read_languages(ai, warnings)` takes the verb's `languages` list
(`{name, code, voice, …}`, the first is where the call starts; an entry without a `code` or a
`name` is dropped with a warning naming it). `LanguageState` holds the current one:

- hearing: each transcription pass goes through `transcribe()`. A recognizer that can be told
  the language and reports the one it heard (`LanguageRecognizer`: a multilingual Whisper model
  set by `[asr] model`) is given the current language's code (its primary subtag, as Whisper
  names languages: `fr-FR` -> `fr`), or, with `languages_enabled`, no language at all, so that
  it detects it. A recognizer without that (the bundled English-only `tiny.en`) transcribes as
  before: one language, nothing to switch.
- switching: with `languages_enabled`, a final transcript heard in another configured language
  (`heard()`) makes it current: the recognizer hears it from then on, the agent speaks it with
  that language's `voice` (SWAIG change_voice's path, so from the next utterance on), and the
  LLM gets a system note before the caller's turn ("The caller is now speaking French. Answer in
  French."), which is how the platform's prompt names languages (`name`). The switch is an
  `ai_language_changed` call event. Without `languages_enabled` nothing switches.
- speaking: each language speaks with its `voice` when the `[tts.voices]` table of the config
  has it (voice name -> Piper `.onnx` file; `VoiceTable` matches the name whole, then without
  its `:model`, then without its `engine.` prefix, so an SDK document's
  `gcloud.fr-FR-Neural2-B` can be mapped to a local French voice), else with the bundled voice
  (`DEFAULT_VOICE`): the call starts in the first language's voice, and switching back to a
  language without a table voice goes back to the bundled one. The catalog also serves SWAIG
  change_voice: a name not in the table goes to the catalog beside it (Piper voices in the
  bundled voice's folder).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from mediaserver.audio.frame import Pcm
from mediaserver.events import CallEvent, event
from mediaserver.pipeline.asr import Recognition, SpeechRecognizer
from mediaserver.pipeline.tts import TtsEngine

__all__ = [
    "DEFAULT_VOICE",
    "AiLanguageChanged",
    "Language",
    "LanguageRecognizer",
    "LanguageState",
    "VoiceTable",
    "read_languages",
]

DEFAULT_VOICE = "default"  # VoiceTable's name for the bundled voice
SWITCH_NOTE = "The caller is now speaking {name}. Answer in {name} from now on."


@dataclass(frozen=True)
class Language:
    name: str
    code: str
    voice: str = ""

    @property
    def primary(self) -> str:
        """The primary subtag (`fr-FR` -> `fr`): the name Whisper gives a language."""
        return self.code.replace("_", "-").split("-")[0].lower()


@event
class AiLanguageChanged(CallEvent):
    EVENT = "ai_language_changed"
    name: str
    code: str
    voice: str


@runtime_checkable
class LanguageRecognizer(Protocol):
    """A recognizer told which language to hear (None: detect it) that says which it heard."""

    sample_rate: int

    def transcribe_language(
        self, pcm: Pcm, *, language: str | None, hotwords: str | None = None
    ) -> tuple[Recognition, str]: ...


def read_languages(ai: dict[str, Any], warnings: list[str]) -> list[Language]:
    raw = ai.get("languages")
    if raw is None:
        return []
    if not isinstance(raw, list):
        warnings.append(f"languages: expected a list, got {type(raw).__name__}; ignored")
        return []
    languages = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not str(item.get("code") or "").strip():
            warnings.append(f"languages[{index}]: needs a code; ignored")
            continue
        code = str(item["code"]).strip()
        name = str(item.get("name") or code).strip()
        languages.append(Language(name=name, code=code, voice=str(item.get("voice") or "").strip()))
    return languages


class LanguageState:
    def __init__(
        self,
        languages: list[Language],
        *,
        enabled: bool,
        change_voice: Callable[[str], None],
        open_voice: Callable[[str], Awaitable[None]],
        knows_voice: Callable[[str], bool],
        note: Callable[[str], None],
        emit: Callable[[CallEvent], None],
    ) -> None:
        self.languages = languages
        self.enabled = enabled and len(languages) > 1
        self.current = languages[0] if languages else None
        self._change_voice = change_voice
        self._open_voice = open_voice
        self._knows_voice = knows_voice
        self._note = note
        self._emit = emit

    def voice_of(self, language: Language) -> str:
        return language.voice if language.voice and self._knows_voice(language.voice) else DEFAULT_VOICE

    async def start(self) -> None:
        """The first language's voice, opened before the first utterance (the bundled one needs none)."""
        if self.current is not None and self.voice_of(self.current) != DEFAULT_VOICE:
            await self._open_voice(self.voice_of(self.current))

    def transcribe(self, asr: SpeechRecognizer, pcm: Pcm, hotwords: str | None) -> tuple[Recognition, str]:
        """One pass (in the engine worker): the recognition and the language heard ("" unknown)."""
        if self.current is None or not isinstance(asr, LanguageRecognizer):
            return asr.transcribe(pcm, hotwords=hotwords), ""
        language = None if self.enabled else self.current.primary
        return asr.transcribe_language(pcm, language=language, hotwords=hotwords)

    def heard(self, code: str) -> None:
        """A final transcript in `code` (on the loop, before the caller's turn is answered)."""
        if not self.enabled or not code or self.current is None:
            return
        wanted = code.replace("_", "-").split("-")[0].lower()
        if wanted == self.current.primary:
            return
        match = next((lang for lang in self.languages if lang.primary == wanted or lang.code == code), None)
        if match is None:
            return  # a language the verb did not configure: stay in the current one
        self.current = match
        voice = self.voice_of(match)
        self._change_voice(voice)
        self._note(SWITCH_NOTE.format(name=match.name))
        self._emit(AiLanguageChanged(name=match.name, code=match.code, voice=voice))


class VoiceCatalog(Protocol):
    def open(self, name: str) -> TtsEngine | None: ...


class VoiceTable:
    """`[tts.voices]`: voice names -> voice files, loaded once on first use, then `fallback`."""

    def __init__(
        self,
        files: dict[str, str],
        open_file: Callable[[str], TtsEngine],
        fallback: VoiceCatalog,
        default: TtsEngine,
    ) -> None:
        self.files = dict(files)
        self.open_file = open_file
        self.fallback = fallback
        self.default = default  # the bundled (configured) voice, DEFAULT_VOICE
        self._loaded: dict[str, TtsEngine] = {}
        self._lock = threading.Lock()  # two calls asking for one voice load it once

    def file_of(self, name: str) -> str | None:
        name = name.strip()
        bare = name.split(":", 1)[0]
        for key in (name, bare, bare.partition(".")[2]):
            if key and key in self.files:
                return self.files[key]
        return None

    def knows(self, name: str) -> bool:
        return name == DEFAULT_VOICE or self.file_of(name) is not None

    def open(self, name: str) -> TtsEngine | None:
        if name == DEFAULT_VOICE:
            return self.default
        path = self.file_of(name)
        if path is None:
            return self.fallback.open(name)
        with self._lock:
            if path not in self._loaded:
                self._loaded[path] = self.open_file(path)
            return self._loaded[path]
