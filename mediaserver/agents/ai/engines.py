"""What an AI session runs on: the engines the runner hands each call (`AiEngines`).

The runner (runner.py) builds one `AiEngines` per call from the process's shared engines: VAD and
confirmer factories, ASR, LLM, TTS, the blocking executor, the end-of-turn detector and its
worker, the voice catalog, the response cache and the conversation store. Without a detector
every turn ends after `end_of_speech_timeout` of silence (`fixed_silence`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

from mediaserver.agents.ai.asr_slots import AsrSlots
from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.controls import NoVoices, VoiceCatalog
from mediaserver.agents.ai.conversations import Conversations, NoConversations
from mediaserver.agents.ai.reply import Synthesizer
from mediaserver.clock import MonotonicClock
from mediaserver.pipeline.asr import PartialBudget, SpeechRecognizer
from mediaserver.pipeline.end_of_turn import EndOfTurnDetector
from mediaserver.pipeline.llm import LanguageModel, LlmEvent, LlmSettings
from mediaserver.pipeline.tts import TtsChunk
from mediaserver.pipeline.turn import TurnParams
from mediaserver.pipeline.vad import SpeechConfirmer, VoiceActivityDetector

log = logging.getLogger(__name__)

_no_detector_logged = False


@dataclass
class AiEngines:
    """What a session needs; the runner builds one per call from shared engines."""

    vad: Callable[[], VoiceActivityDetector]
    asr: SpeechRecognizer
    llm: LanguageModel
    tts: Synthesizer
    blocking: Executor
    confirmer: Callable[[], SpeechConfirmer | None] = lambda: None
    llm_settings: Callable[[AiSessionConfig], LlmSettings] = lambda config: LlmSettings()
    # Transcriptions at once in the process, finals first (asr_slots.py), and their threads
    # (app.py: [asr] workers of each; None: `blocking`, one slot, as embedders and tests have it).
    asr_slots: AsrSlots = field(default_factory=AsrSlots)
    asr_executor: Executor | None = None
    # Partial ASR passes of every call together (app.py: [performance] partial_asr_per_s); finals never ask.
    partial_budget: PartialBudget = field(default_factory=lambda: PartialBudget(MonotonicClock()))
    phrase_cache: dict[str, list[TtsChunk]] = field(default_factory=dict)
    far_end_delay_ms: int = 40
    first_token_timeout_s: float = 10.0
    # The end-of-turn detector (thread-safe, shared); None: the fixed silence rule (end_of_speech_timeout).
    detector: EndOfTurnDetector | None = None
    # The detector's own worker (app.py: one thread, "turn-detector"), so that a check never waits
    # behind, nor delays, an ASR final or a TTS clause in `blocking`. With it the session starts an
    # early check when the caller's voice ends; None (embedders, tests): the detector runs in
    # `blocking` and only when the manager asks (an early check there would compete with the ASR
    # final, which starts at the same moment).
    detector_executor: Executor | None = None
    # The voices SWAIG change_voice may pick (piper_tts.PiperVoices); NoVoices: the one voice only.
    voices: VoiceCatalog = field(default_factory=NoVoices)
    # params.openai_asr_engine: model name -> a recognizer of the configured transcription endpoint
    # (pipeline/engines/openai_asr.py); None: none configured, the local recognizer transcribes.
    remote_asr: Callable[[str], SpeechRecognizer] | None = None
    # params.cache_mode: the process's response cache (agents/ai/response_cache.py), shared by calls
    response_cache: dict[str, tuple[LlmEvent, ...]] = field(default_factory=dict)
    # Where conversation_id + save_conversation keep conversations ([swml] conversations_dir).
    conversations: Conversations = field(default_factory=NoConversations)


def fixed_silence(params: TurnParams) -> TurnParams:
    """Without a detector `end_of_speech_timeout` of silence ends every turn (said once per process)."""
    global _no_detector_logged
    if params.turn_detection and not _no_detector_logged:
        _no_detector_logged = True
        log.info("no end-of-turn detector: turns end after end_of_speech_timeout of silence")
    return replace(params, turn_detection=False)
