"""The `ai.params` keys of the optional features, each with its documented effect on a real session.

Audio: `background_file` (+ `_loops`, `_volume`), `hold_on_process`, `tts_number_format`.
Recognition: `asr_smart_format`, `openai_asr_engine`. Language model: `enable_thinking` /
`thinking_model`, `enable_inner_dialog` / `inner_dialog_model` / `inner_dialog_prompt` /
`inner_dialog_synced`, `cache_mode`.

The calls run on the manual clock of `ai_fakes.Scenario` (one 20 ms tick per step). What is
asserted is what the caller hears (the audio that left on the wire, the text the voice was given),
what the model sees (its requests), the history and the call events, with the key set against
the key unset.
"""

from __future__ import annotations

import asyncio
import io
import threading
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from mediaserver.agents.ai.reasoning import NO_PLAN, NOTE_HEADER, THINKING_INSTRUCTION, THINKING_TOOL
from mediaserver.agents.ai.session import AiSession
from mediaserver.agents.ai.tools import StaticTool, StaticToolRunner, ToolRunner
from mediaserver.pipeline.engines import LlmOptions
from mediaserver.pipeline.engines.openai_asr import transcribers
from mediaserver.pipeline.llm import LlmError, LlmFinished, LlmSettings, TextDelta, ToolCallRequested
from tests.scenario.ai_fakes import Scenario, ScriptedLlm, tone

RATE = 8000
MUSIC_HZ = 1000
VOICE_HZ = 300  # WordTts
CALLER_HZ = 440
MUSIC_AMPLITUDE = 8000


def ai(**params: Any) -> dict[str, Any]:
    return {"prompt": {"text": "You are a test agent."}, "params": params}


def rebuilt(s: Scenario, tools: ToolRunner | None = None, **engines: Any) -> Scenario:
    """The session built again with these engines (before start)."""
    for name, value in engines.items():
        setattr(s.engines, name, value)
    s.session = AiSession(s.call, s.config, s.engines, tools)
    return s


def peaks(frames: list[np.ndarray]) -> set[int]:
    """The tones (to 50 Hz) carrying at least a fifth of the strongest one's energy."""
    pcm = np.concatenate(frames).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm))
    freqs = np.fft.rfftfreq(len(pcm), 1 / RATE)
    strong = spectrum > 0.2 * spectrum.max()
    return {int(round(f / 50) * 50) for f in freqs[strong] if f > 100}


def loud(frames: list[np.ndarray]) -> bool:
    return bool(frames) and max(int(np.abs(f.astype(np.int32)).max()) for f in frames) > 64


def rms(frames: list[np.ndarray]) -> float:
    x = np.concatenate(frames).astype(np.float64)
    return float(np.sqrt(np.mean(x * x)))


@pytest.fixture
def music(tmp_path: Path) -> str:
    """Half a second of a 1 kHz tone: 25 ticks per play."""
    path = tmp_path / "bed.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(tone(MUSIC_HZ, 500, amplitude=MUSIC_AMPLITUDE).tobytes())
    return str(path)


async def done(s: Scenario) -> None:
    await s.finish()


# -- background_file -----------------------------------------------------------------------------


@pytest.mark.parametrize(("volume", "gain"), [(None, 1.0), (-12, 10 ** (-12 / 20))])
async def test_background_file_loops_its_count_at_its_volume_from_the_first_frame(
    music: str, volume: int | None, gain: float
) -> None:
    params: dict[str, Any] = {"background_file": music, "background_file_loops": 2, "wait_for_user": True}
    if volume is not None:
        params["background_file_volume"] = volume
    s = Scenario(ai(**params))
    await s.start()
    await s.play(ticks=70)
    assert s.events("ai_background_started")[0]["purpose"] == "background_file"
    assert peaks(s.agent[:48]) == {MUSIC_HZ}  # the bed alone: the agent waits for the caller
    expected = MUSIC_AMPLITUDE / np.sqrt(2) * gain
    assert rms(s.agent[2:48]) == pytest.approx(expected, rel=0.08)  # background_file_volume in dB
    assert loud(s.agent[45:50]) and not loud(s.agent[52:])  # two plays of 25 ticks, then nothing
    assert s.events("ai_background_stopped") == [
        {**s.events("ai_background_stopped")[0], "purpose": "background_file", "reason": "ended"}
    ]
    await done(s)


async def test_background_file_without_loops_plays_under_the_agent_until_the_ai_ends(music: str) -> None:
    s = Scenario(ai(background_file=music), llm=ScriptedLlm(["one two three four five six"]))
    await s.start()
    await s.play(ticks=120)  # the reply (60 ticks), then more than two plays of the file
    speaking = [t - 1 for t in s.agent_ticks()][:60]
    assert peaks([s.agent[i] for i in speaking[5:40]]) == {VOICE_HZ, MUSIC_HZ}  # under the speech
    assert peaks(s.agent[-20:]) == {MUSIC_HZ}  # alone after it, still looping
    assert not s.events("ai_background_stopped")
    await done(s)
    assert s.call.media.playout.bed is None  # the AI ended: the bed leaves with it


async def test_no_background_file_is_silence_and_a_bad_one_is_logged(tmp_path: Path) -> None:
    quiet = Scenario(ai(wait_for_user=True))
    await quiet.start()
    await quiet.play(ticks=20)
    assert not loud(quiet.agent) and not quiet.events("ai_background_started")
    await done(quiet)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    s = Scenario(ai(background_file=str(bad), background_file_volume="loud", wait_for_user=True))
    await s.start()
    await s.play(ticks=20)
    assert [e["kind"] for e in s.events("ai_failure")] == ["background_file"]
    assert any("background_file_volume" in e["warning"] for e in s.events("ai_config_warning"))
    assert not loud(s.agent)  # the call goes on, silent
    await done(s)


# -- hold_on_process -----------------------------------------------------------------------------


class SlowLookup:
    """A function that runs until the test releases it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, args: dict[str, Any], control: Any) -> str:
        await self.release.wait()
        return "found it"


@pytest.mark.parametrize("hold", [True, False])
async def test_hold_on_process_plays_hold_music_while_a_function_runs(music: str, hold: bool) -> None:
    lookup = SlowLookup()
    tools = StaticToolRunner([StaticTool("lookup", "look it up", lookup)])
    llm = ScriptedLlm([ToolCallRequested("c1", "lookup", "{}"), "Here it is."])
    s = rebuilt(Scenario(ai(hold_on_process=hold, hold_music=music)), tools, llm=llm)
    await s.start()
    await s.play(ticks=40)  # the function runs all along
    assert loud(s.agent[5:]) is hold
    if hold:
        assert peaks(s.agent[5:]) == {MUSIC_HZ}
        assert s.events("ai_background_started")[0]["purpose"] == "hold_on_process"
    lookup.release.set()
    await s.play(ticks=5)
    returned = s.tick
    await s.play(ticks=40)
    after = s.agent[returned + 2 :]
    assert peaks([after[t] for t in range(len(after)) if loud([after[t]])]) == {VOICE_HZ}  # the music stopped
    assert [e["reason"] for e in s.events("ai_background_stopped")] == (["function_returned"] if hold else [])
    await done(s)


async def test_hold_on_process_without_hold_music_is_a_config_warning() -> None:
    s = Scenario(ai(hold_on_process=True, wait_for_user=True))
    await s.start()
    await s.play(ticks=2)
    assert any("hold_on_process" in e["warning"] for e in s.events("ai_config_warning"))
    await done(s)


# -- tts_number_format ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "spoken"),
    [
        ("international", "plus 1 2 3 4 5 6 7 8 9 0 1"),
        ("national", "2 3 4, 5 6 7, 8 9 0 1"),
        (None, "plus 1, 2 3 4, 5 6 7, 8 9 0 1"),  # unset: as the model wrote it
    ],
)
async def test_tts_number_format_is_how_the_agent_speaks_phone_numbers(style: str | None, spoken: str) -> None:
    params = {"tts_number_format": style} if style else {}
    s = Scenario(ai(**params), llm=ScriptedLlm(["Call us at +1 234 567 8901 today."]))
    await s.start()
    await s.play(ticks=5)
    assert s.tts.spoken[0] == f"Call us at {spoken} today."
    await done(s)


async def test_tts_number_format_applies_to_the_static_greeting() -> None:
    s = Scenario(ai(tts_number_format="national", static_greeting="Call 12345678901."))
    await s.start()
    await s.play(ticks=3)
    assert s.tts.spoken[0] == "Call (234) 567-8901."
    await done(s)


# -- asr_smart_format ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("smart", "heard"),
    [(True, "it costs $25.50 at 3:30 PM"), (False, "it costs twenty five dollars and fifty cents at three thirty pm")],
)
async def test_asr_smart_format_writes_numbers_money_and_times_in_the_transcript(smart: bool, heard: str) -> None:
    said = "it costs twenty five dollars and fifty cents at three thirty pm"
    s = Scenario(ai(asr_smart_format=smart, wait_for_user=True), phrases={CALLER_HZ: said})
    await s.start()
    await s.play(tone(CALLER_HZ, 800), ticks=60)
    assert [m["content"] for m in s.session.history if m["role"] == "user"] == [heard]
    await done(s)


# -- openai_asr_engine ---------------------------------------------------------------------------


class TranscriptionServer:
    """An OpenAI-compatible /v1/audio/transcriptions on its own thread (the recognizer blocks)."""

    def __init__(self, status: int = 200, text: str = "from the endpoint") -> None:
        self.status = status
        self.text = text
        self.uploads: list[dict[str, Any]] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        self.uploads.append({"model": form.get("model"), "prompt": form.get("prompt"), "wav": upload.file.read()})
        if self.status != 200:
            return web.json_response({"error": {"message": "no such model"}}, status=self.status)
        return web.json_response({"text": self.text})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/audio/transcriptions", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._runner = runner
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> TranscriptionServer:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture
def endpoint() -> Iterator[TranscriptionServer]:
    with TranscriptionServer() as server:
        yield server


async def test_openai_asr_engine_sends_the_callers_audio_to_the_transcriptions_endpoint(
    endpoint: TranscriptionServer,
) -> None:
    s = Scenario(ai(openai_asr_engine="nova-3", wait_for_user=True), phrases={CALLER_HZ: "heard locally"})
    rebuilt(s, remote_asr=transcribers(LlmOptions(base_url=endpoint.base_url)))
    await s.start()
    await s.play(tone(CALLER_HZ, 800), ticks=60)
    assert [m["content"] for m in s.session.history if m["role"] == "user"] == ["from the endpoint"]
    assert s.asr.calls == 0  # the local recognizer was not asked
    upload = endpoint.uploads[-1]
    assert upload["model"] == "nova-3"
    with wave.open(io.BytesIO(upload["wav"])) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert wav.getnframes() >= 16000 * 0.8  # the whole utterance
    await done(s)


async def test_openai_asr_engine_failing_is_logged_and_the_local_recognizer_takes_over() -> None:
    with TranscriptionServer(status=404) as server:
        s = Scenario(ai(openai_asr_engine="nova-3", wait_for_user=True), phrases={CALLER_HZ: "heard locally"})
        rebuilt(s, remote_asr=transcribers(LlmOptions(base_url=server.base_url)))
        await s.start()
        await s.play(tone(CALLER_HZ, 800), ticks=60)
        assert [m["content"] for m in s.session.history if m["role"] == "user"] == ["heard locally"]
        assert [e["kind"] for e in s.events("ai_failure")] == ["openai_asr"]
        assert len(server.uploads) == 1  # tried once, then local for the rest of the call
        await done(s)


async def test_openai_asr_engine_default_or_no_endpoint_keeps_the_local_recognizer() -> None:
    platform = Scenario(ai(openai_asr_engine="gcloud_speech_v2_async", wait_for_user=True), phrases={CALLER_HZ: "hi"})
    await platform.start()
    await platform.play(tone(CALLER_HZ, 800), ticks=60)
    assert platform.asr.calls > 0 and not platform.events("ai_config_warning")
    await done(platform)
    s = Scenario(ai(openai_asr_engine="nova-3", wait_for_user=True), phrases={CALLER_HZ: "hi"})
    await s.start()
    await s.play(tone(CALLER_HZ, 800), ticks=60)
    assert s.asr.calls > 0
    assert any("openai_asr_engine" in e["warning"] for e in s.events("ai_config_warning"))
    await done(s)


# -- thinking and inner dialog -------------------------------------------------------------------


class ModelsLlm:
    """Each model answers from its own script; every request is kept with its model and tools."""

    def __init__(self, scripts: dict[str, list[Any]]) -> None:
        self.scripts = {model: list(script) for model, script in scripts.items()}
        self.requests: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None]] = []

    async def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None, settings: LlmSettings
    ) -> AsyncIterator[Any]:
        self.requests.append((settings.model, [dict(m) for m in messages], tools))
        script = self.scripts.get(settings.model, [])
        entry = script.pop(0) if script else "Okay."
        if isinstance(entry, Exception):
            raise entry
        if isinstance(entry, ToolCallRequested):
            yield entry
            yield LlmFinished("tool_calls")
            return
        for token in entry.split(" "):
            yield TextDelta(token + " ")
        yield LlmFinished("stop")

    def of(self, model: str) -> list[list[dict[str, Any]]]:
        return [messages for m, messages, _ in self.requests if m == model]


def settings_for(config: Any) -> LlmSettings:
    return LlmSettings(model=config.model or "main")


@pytest.mark.parametrize("thinking", [True, False])
async def test_enable_thinking_offers_get_ideal_strategy_and_the_thinking_model_plans(thinking: bool) -> None:
    llm = ModelsLlm(
        {
            "main": [ToolCallRequested("t1", THINKING_TOOL, "{}"), "We have a blue plan."],
            "planner": ["Offer the blue plan first."],
        }
    )
    params = {"enable_thinking": True, "thinking_model": "planner"} if thinking else {}
    s = rebuilt(Scenario(ai(**params)), llm=llm, llm_settings=settings_for)
    await s.start()
    await s.play(ticks=10)
    offered = [t["function"]["name"] for t in llm.requests[0][2] or []]
    assert (THINKING_TOOL in offered) is thinking
    if thinking:
        (plan_request,) = llm.of("planner")
        assert plan_request[0]["content"] == THINKING_INSTRUCTION
        assert "You are a test agent." in plan_request[1]["content"]  # it reads the agent's instructions
        answer = llm.of("main")[1]
        assert answer[-1] == {"role": "tool", "tool_call_id": "t1", "content": "Offer the blue plan first."}
        assert s.tts.spoken[-1] == "We have a blue plan."
        assert s.events("ai_thought")[0]["model"] == "planner"
    else:
        assert not llm.of("planner")
    await done(s)


async def test_a_failing_thinking_model_is_logged_and_the_agent_answers_without_a_plan() -> None:
    llm = ModelsLlm(
        {
            "main": [ToolCallRequested("t1", THINKING_TOOL, "{}"), "Here is my answer."],
            "planner": [LlmError("http", "503 from the endpoint", status=503)],
        }
    )
    params = {"enable_thinking": True, "thinking_model": "planner"}
    s = rebuilt(Scenario(ai(**params)), llm=llm, llm_settings=settings_for)
    await s.start()
    await s.play(ticks=10)
    assert [e["kind"] for e in s.events("ai_failure")] == ["thinking"]
    assert llm.of("main")[1][-1]["content"] == NO_PLAN  # the tool still answers: the model goes on
    assert s.tts.spoken[-1] == "Here is my answer."
    await done(s)


async def test_a_failing_inner_dialog_model_is_logged_and_adds_no_note() -> None:
    llm = ModelsLlm({"main": ["First.", "Second."], "watcher": [LlmError("connection", "refused")]})
    params = {"enable_inner_dialog": True, "inner_dialog_model": "watcher", "wait_for_user": True}
    s = rebuilt(Scenario(ai(**params), phrases={CALLER_HZ: "hello"}), llm=llm, llm_settings=settings_for)
    await s.start()
    await s.play(tone(CALLER_HZ, 800), ticks=80)
    assert [e["kind"] for e in s.events("ai_failure")] == ["inner_dialog"]
    assert not any(NOTE_HEADER in str(m["content"]) for request in llm.of("main") for m in request)
    assert [m["content"] for m in s.session.history if m["role"] == "assistant"] == ["First."]
    await done(s)


@pytest.mark.parametrize("synced", [False, True])
async def test_inner_dialog_model_watches_and_its_note_reaches_the_next_request(synced: bool) -> None:
    notes = ["The caller wants a refund.", "Still the refund."]
    llm = ModelsLlm({"main": ["First answer.", "Second answer."], "watcher": list(notes)})
    params = {
        "enable_inner_dialog": True,
        "inner_dialog_model": "watcher",
        "inner_dialog_prompt": "You watch for refunds.",
        "inner_dialog_synced": synced,
        "wait_for_user": True,
    }
    s = rebuilt(Scenario(ai(**params), phrases={CALLER_HZ: "my order broke"}), llm=llm, llm_settings=settings_for)
    await s.start()
    await s.play(tone(CALLER_HZ, 800), ticks=80)
    (watch,) = llm.of("watcher")  # one analysis per caller turn
    assert watch[0] == {"role": "system", "content": "You watch for refunds."}
    # not synced: it ran at the caller's turn, beside the reply; synced: after the agent's turn
    assert ("assistant: First answer." in watch[1]["content"]) is synced
    assert "user: my order broke" in watch[1]["content"]
    first = llm.of("main")[0]
    assert not any(NOTE_HEADER in str(m["content"]) for m in first)  # the note came after this request
    s.session.add_user_input("and now?")
    await s.play(ticks=10)
    second = llm.of("main")[1]
    seen = [m for m in second if m["role"] == "system" and NOTE_HEADER in m["content"]]
    # not synced, the new turn's analysis (started first) is already in; synced, it waits for the answer
    newest = notes[0] if synced else notes[1]
    assert seen == [{"role": "system", "content": f"{NOTE_HEADER}\n{newest}"}]
    assert s.events("ai_inner_dialog_note")[0]["synced"] is synced
    await done(s)


async def test_without_inner_dialog_no_second_model_runs() -> None:
    llm = ModelsLlm({"main": ["First answer."]})
    s = rebuilt(Scenario(ai(wait_for_user=True), phrases={CALLER_HZ: "hello"}), llm=llm, llm_settings=settings_for)
    await s.start()
    await s.play(tone(CALLER_HZ, 800), ticks=80)
    assert {model for model, _, _ in llm.requests} == {"main"}
    await done(s)


# -- cache_mode ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cache", [True, False])
async def test_cache_mode_answers_a_repeated_request_from_the_cache(cache: bool) -> None:
    llm = ScriptedLlm(["Welcome to the shop.", "Welcome to the shop."])
    store: dict[str, Any] = {}  # the process's cache, shared by the two calls
    spoken = []
    for _ in range(2):
        s = rebuilt(Scenario(ai(cache_mode=cache)), llm=llm, response_cache=store)
        await s.start()
        await s.play(ticks=10)
        spoken.append(s.tts.spoken)
        cached = s.events("ai_response_cached")
        await done(s)
    assert spoken == [["Welcome to the shop."], ["Welcome to the shop."]]
    assert len(llm.requests) == (1 if cache else 2)  # the second call's opening never reached the model
    assert len(cached) == (1 if cache else 0)
