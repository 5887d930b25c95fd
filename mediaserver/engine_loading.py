"""The speech engines the app wires in: VAD, TTS, and the ai verb's ASR, LLM and end-of-turn model.

Theory of operation: every loader here blocks (it loads a model) and runs in one of the app's
inference workers, whose priority the threads an engine starts inherit
(pipeline/inference_threads.py). `inference_pool` and `in_worker` are the one place that turns
`[performance]` (nice, SCHED_IDLE) into a thread pool or, with `inference_process`, an engine
worker process (pipeline/engine_process.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mediaserver.agents.ai.asr_slots import AsrSlots
from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.controls import NoVoices, VoiceCatalog
from mediaserver.agents.ai.conversations import ConversationStore
from mediaserver.agents.ai.languages import VoiceTable
from mediaserver.agents.ai.session import AiEngines
from mediaserver.clock import MonotonicClock
from mediaserver.kernel.speech import SpeechSynthesizer
from mediaserver.pipeline.asr import PartialBudget, SpeechRecognizer
from mediaserver.pipeline.end_of_turn import EndOfTurnDetector
from mediaserver.pipeline.engine_process import EngineProcess, load_named, named_spec
from mediaserver.pipeline.inference_threads import inference_executor
from mediaserver.pipeline.tts import TtsEngine
from mediaserver.pipeline.vad import VoiceActivityDetector
from mediaserver.settings import Settings
from mediaserver.settings_schema import PerformanceSettings

__all__ = ["ai_voices", "inference_pool", "language_voices", "listening_vad", "load_ai_engines", "load_tts"]


def inference_pool(perf: PerformanceSettings, workers: int, name: str) -> ThreadPoolExecutor:
    """Worker threads below the event loop, as [performance] says (nice, SCHED_IDLE)."""
    return inference_executor(workers, name, perf.inference_nice, idle_policy=perf.inference_sched_idle)


def in_worker(perf: PerformanceSettings, row: tuple[str, str, Any], *, lanes: int) -> EngineProcess:
    """The `ENGINES` row (kind, name, options) in a worker process at [performance]'s priority."""
    kind, name, options = row
    idle = perf.inference_sched_idle
    return EngineProcess(named_spec(kind, name, options, nice=perf.inference_nice, lanes=lanes, idle=idle))


def listening_vad() -> VoiceActivityDetector:
    """The VAD of a call leg's audio front end, shared by every listener on the leg (the ai verb,
    the sidecar): webrtcvad at its most aggressive, with no energy floor of its own, since each
    listener applies its own floor to the level the front end measures."""
    from mediaserver.pipeline.vad import make_vad

    return make_vad(3, -90.0)


def load_tts(settings: Settings) -> TtsEngine:
    """The engine [tts] engine names (blocking: loads the voice)."""
    from mediaserver.pipeline.engines import TtsOptions, load_engine

    tts = settings.tts
    options = TtsOptions(model=tts.model, threads=tts.threads)
    if settings.performance.inference_process:  # two lanes: the engine executor's two workers synthesize at once
        from mediaserver.pipeline.engine_process import RemoteTts

        return RemoteTts(in_worker(settings.performance, ("tts", tts.engine, options), lanes=2))
    return load_engine("tts", tts.engine, options)


def ai_voices(settings: Settings) -> VoiceCatalog:
    """SWAIG change_voice's catalog: the Piper voices beside [tts] model (none for other engines)."""
    if settings.tts.engine != "piper":
        return NoVoices()
    from mediaserver.pipeline.engines import TtsOptions
    from mediaserver.pipeline.engines.piper_tts import voices

    return voices(TtsOptions(model=settings.tts.model, threads=settings.tts.threads))


def language_voices(settings: Settings, beside: VoiceCatalog, bundled: TtsEngine) -> VoiceCatalog:
    """[tts.voices] (name -> Piper file) before the catalog `beside`; "default" = the bundled voice."""
    if settings.tts.engine != "piper":
        return beside
    from mediaserver.pipeline.engines.piper_tts import PiperTts

    threads = settings.tts.threads
    files = {name: str(path) for name, path in settings.tts.voices.items()}
    return VoiceTable(files, lambda path: PiperTts(model_path=path, threads=threads), beside, bundled)


def load_ai_engines(
    settings: Settings,
    synthesizer: SpeechSynthesizer,
    blocking: ThreadPoolExecutor,
    partial_budget: PartialBudget | None = None,
) -> AiEngines:
    """The ai verb's engines (blocking: loads the ASR model); run in the executor, whose niced
    worker the engines' own threads (CTranslate2's) inherit their priority from."""
    from mediaserver.pipeline.engines import AsrOptions, LlmOptions, TurnOptions, load_engine
    from mediaserver.pipeline.engines.openai_asr import transcribers
    from mediaserver.pipeline.llm import LlmSettings
    from mediaserver.pipeline.vad import make_confirmer

    ai, perf = settings.ai, settings.performance
    asr_options = AsrOptions(
        model=ai.asr_model, window_s=ai.asr_window_s, threads=ai.asr_threads, workers=ai.asr_workers
    )
    turn = ai.end_of_turn_engine  # [end_of_turn] engine (smart-turn v3.2 by default); "none": fixed silence
    asr: SpeechRecognizer
    detector: EndOfTurnDetector | None = None
    if perf.inference_process:  # engine_process.py: a lane per worker thread that calls the engine
        from mediaserver.pipeline.engine_process import RemoteDetector, remote_recognizer

        asr = remote_recognizer(in_worker(perf, ("asr", ai.asr_engine, asr_options), lanes=ai.asr_workers))
        if turn != "none":
            detector = RemoteDetector(in_worker(perf, ("end_of_turn", turn, TurnOptions(threads=1)), lanes=1))
    else:
        asr = load_named(("asr", ai.asr_engine, asr_options))  # wrapped for ai.languages as in a worker
        if turn != "none":
            detector = load_engine("end_of_turn", turn, TurnOptions(threads=1))
    llm = load_engine("llm", ai.llm_engine, LlmOptions(base_url=ai.base_url, api_key=ai.api_key))
    make_confirmer()  # loads the shared silero model once, here, rather than on the first call
    voices = ai_voices(settings)  # what SWAIG change_voice may pick
    voices = language_voices(settings, voices, synthesizer.engine)  # ai.languages[].voice: [tts.voices] first

    def llm_settings(config: AiSessionConfig) -> LlmSettings:
        return config.llm_settings(ai.model, ai.timeout_s, ai.first_token_timeout_s)

    return AiEngines(
        vad=listening_vad,
        asr=asr,
        llm=llm,
        tts=synthesizer,
        blocking=blocking,
        confirmer=make_confirmer,
        llm_settings=llm_settings,
        far_end_delay_ms=ai.far_end_delay_ms,
        first_token_timeout_s=ai.first_token_timeout_s,
        detector=detector,
        voices=voices,
        # params.openai_asr_engine: the [llm] endpoint's /audio/transcriptions, per model asked for
        remote_asr=transcribers(LlmOptions(base_url=ai.base_url, api_key=ai.api_key)),
        conversations=ConversationStore(settings.swml.conversations_dir),  # params.conversation_id
        # The detector's own worker, beside the 2 engine workers: a check (~0.25 s of a core)
        # never queues in front of an ASR final or a TTS clause. One thread for every call: on 2
        # cores a second concurrent inference would only slow the ASR and TTS already running,
        # so checks from all calls wait in its queue, one inference at a time.
        detector_executor=None if detector is None else inference_pool(perf, 1, "turn-detector"),
        partial_budget=partial_budget or PartialBudget(MonotonicClock(), perf.partial_asr_per_s),
        # [asr] workers transcriptions at once, each on its own thread and model replica, finals
        # first: a final never waits behind a partial, nor a TTS clause behind either.
        asr_slots=AsrSlots(ai.asr_workers),
        asr_executor=inference_pool(perf, ai.asr_workers, "asr"),
    )
