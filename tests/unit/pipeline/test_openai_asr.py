"""The OpenAI-compatible `/audio/transcriptions` recognizer (SWML `openai_asr_engine`) against a local endpoint."""

from __future__ import annotations

import asyncio
import io
import threading
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from mediaserver.pipeline.engines import LlmOptions
from mediaserver.pipeline.engines.openai_asr import OpenAiTranscriber, TranscriptionFailed, transcribers


class Endpoint:
    """/v1/audio/transcriptions on its own thread and loop (the recognizer blocks); keeps each upload."""

    def __init__(self) -> None:
        self.status = 200
        self.uploads: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        self.uploads.append({"model": form.get("model"), "prompt": form.get("prompt"), "wav": upload.file.read()})
        if self.status != 200:
            return web.json_response({"error": {"message": "unavailable"}}, status=self.status)
        return web.json_response({"text": "  hello there  "})

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/audio/transcriptions", self._handle)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    server.thread.start()
    server.ready.wait(5)
    yield server
    server.loop.call_soon_threadsafe(server.loop.stop)
    server.thread.join(5)


def test_the_utterance_is_uploaded_as_16k_wav_with_the_model_and_the_hints(endpoint: Endpoint) -> None:
    pcm = (np.sin(np.arange(8000) / 5) * 5000).astype(np.int16)
    asr = OpenAiTranscriber(f"http://127.0.0.1:{endpoint.port}/v1", "nova-3")
    result = asr.transcribe(pcm, prompt="What is your name?", hotwords="Qubit, ACME")
    assert (result.text, result.confidence) == ("hello there", 1.0)
    (upload,) = endpoint.uploads
    assert upload["model"] == "nova-3" and upload["prompt"] == "What is your name?, Qubit, ACME"
    with wave.open(io.BytesIO(upload["wav"])) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert np.array_equal(np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2"), pcm)
    asr.close()


def test_an_error_answer_raises_transcription_failed_naming_the_endpoint(endpoint: Endpoint) -> None:
    endpoint.status = 503
    url = f"http://127.0.0.1:{endpoint.port}/v1"
    with pytest.raises(TranscriptionFailed, match=r"127\.0\.0\.1.*nova-3"):
        OpenAiTranscriber(url, "nova-3").transcribe(np.zeros(1600, dtype=np.int16))


def test_a_refused_connection_raises_transcription_failed() -> None:
    with pytest.raises(TranscriptionFailed):
        OpenAiTranscriber("http://127.0.0.1:9/v1", "whisper-1", timeout_s=2).transcribe(np.zeros(1600, dtype=np.int16))


def test_transcribers_make_one_client_per_model_and_refuse_a_bad_url() -> None:
    get = transcribers(LlmOptions(base_url="http://127.0.0.1:1/v1"))
    assert get("nova-3") is get("nova-3") and get("nova-3") is not get("whisper-1")
    with pytest.raises(ValueError, match="http"):
        transcribers(LlmOptions(base_url="ftp://x"))("nova-3")
