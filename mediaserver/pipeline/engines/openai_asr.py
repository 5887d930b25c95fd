"""`SpeechRecognizer` over an OpenAI-compatible `/audio/transcriptions` endpoint (SWML `openai_asr_engine`).

Theory of operation: when an `ai` verb names a recognizer in `params.openai_asr_engine`, its
calls are transcribed by the configured OpenAI-compatible server (the `[llm]` base URL and key:
OpenAI, a faster-whisper or whisper.cpp server, vLLM) instead of the local model, with the
param's value as the request's `model`. Each utterance is uploaded whole as a 16 kHz mono WAV
through the `openai` client's `audio.transcriptions.create`; the session's hint words and
context go in the request's `prompt`, the only biasing the endpoint takes. The plain `json`
answer has no confidence, so a transcript counts as sure (1.0): SWAIG `confidence` thresholds
do not drop remote transcripts.

`transcribe` is blocking (the session runs it in the engine executor, like the local one) and
raises `TranscriptionFailed` with the endpoint and the reason; the session then logs it and goes
back to the local recognizer for the rest of the call (agents/ai/session_features.py). The
client does no retries: a retry only adds dead air to a live call.

`transcribers(options)` is what the app hands the session (`AiEngines.remote_asr`): one client
per model name, shared by the calls that ask for it, built on first use (importing this module
opens no connection). It has no row in `ENGINES`: the process's recognizer stays the one
`[asr] engine` names; this one is chosen per call, by the verb.
"""

from __future__ import annotations

import io
import threading
import wave
from collections.abc import Callable

import openai

from mediaserver.audio.frame import Pcm
from mediaserver.pipeline.asr import Recognition
from mediaserver.pipeline.engines import LlmOptions

__all__ = ["OpenAiTranscriber", "TranscriptionFailed", "transcribers"]

TIMEOUT_S = 10.0  # one utterance's upload and answer; longer is dead air on the call


class TranscriptionFailed(RuntimeError):
    """The endpoint did not transcribe (connection, HTTP status, timeout, a malformed answer)."""


class OpenAiTranscriber:
    sample_rate = 16000

    def __init__(self, base_url: str, model: str, *, api_key: str = "", timeout_s: float = TIMEOUT_S) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"transcription base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url
        self.model = model
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", max_retries=0, timeout=timeout_s)

    def transcribe(self, pcm: Pcm, *, prompt: str | None = None, hotwords: str | None = None) -> Recognition:
        bias = ", ".join(part for part in (prompt, hotwords) if part)
        try:
            answer = self._client.audio.transcriptions.create(
                model=self.model,
                file=("speech.wav", _wav(pcm, self.sample_rate), "audio/wav"),
                response_format="json",
                prompt=bias or openai.omit,  # an empty prompt is left out of the form
            )
        except openai.OpenAIError as exc:
            raise TranscriptionFailed(f"{self.base_url} ({self.model}): {exc}") from exc
        text = getattr(answer, "text", None)
        if not isinstance(text, str):
            raise TranscriptionFailed(f"{self.base_url} ({self.model}): the answer has no text")
        return Recognition(text.strip(), 1.0)

    def close(self) -> None:
        self._client.close()


def _wav(pcm: Pcm, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.astype("<i2").tobytes())
    return out.getvalue()


def transcribers(options: LlmOptions) -> Callable[[str], OpenAiTranscriber]:
    """model name -> its transcriber against `options.base_url` (one per model, made on first use)."""
    made: dict[str, OpenAiTranscriber] = {}
    lock = threading.Lock()

    def get(model: str) -> OpenAiTranscriber:
        with lock:
            if model not in made:
                made[model] = OpenAiTranscriber(options.base_url, model, api_key=options.api_key)
            return made[model]

    return get
