"""The `ai` verb's language and operations params, each on a real session (manual clock, or real HTTP).

languages / languages_enabled (a fake recognizer that reports the language it heard, fake
voices behind a real `VoiceTable`), enable_accounting (post-prompt body, call event, control
API), conversation_id / save_conversation / summary_mode (a real `ConversationStore` in a
temporary folder), debug_webhook_url / debug_webhook_level (a local aiohttp agent), debug /
verbose_logs (`ai_debug` call events), audible_debug / audible_latency (what the agent says).
Each test compares the key set against the key unset.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mediaserver.agents.ai.accounting import estimate_tokens
from mediaserver.agents.ai.conversations import SAVE_SUMMARY_PROMPT, ConversationStore
from mediaserver.agents.ai.languages import VoiceTable
from mediaserver.agents.ai.session import AiSession
from mediaserver.agents.ai.tools import StaticTool, StaticToolRunner
from mediaserver.kernel.agent import AgentRegistry
from mediaserver.kernel.eventbus import EventBus
from mediaserver.pipeline.asr import Recognition
from mediaserver.pipeline.llm import ToolCallRequested
from mediaserver.pipeline.tts import TtsChunk
from mediaserver.signaling.control import control_routes
from tests.scenario.ai_fakes import Scenario, ScriptedLlm, ToneAsr, tone
from tests.scenario.swaig_harness import SwaigCall
from tests.unit.swaig.agent_server import FakeAgent

CALLER_HZ, FRENCH_HZ = 700, 900
FRENCH_VOICE_HZ, BUNDLED_HZ = 1200, 300  # WordTts, the bundled voice of these calls, speaks 300 Hz


def ai(**params: Any) -> dict[str, Any]:
    return {"prompt": {"text": "You are a test."}, "params": params}


def rebuilt(s: Scenario, **engines: Any) -> Scenario:
    """The session built again with other engines (before start)."""
    for name, value in engines.items():
        setattr(s.engines, name, value)
    s.session = AiSession(s.call, s.config, s.engines, s.session.tools)
    return s


def logged(s: Scenario, name: str) -> list[dict[str, Any]]:
    """The call's events of that name, those after the last tick included."""
    return [e for e in s.call.events.events if e["event"] == name]


def peaks(frames: list[np.ndarray], rate: int = 8000) -> set[int]:
    """The dominant tone of each voiced 20 ms frame, to the nearest 100 Hz."""
    found = set()
    for pcm in frames:
        if np.abs(pcm.astype(np.int32)).max() > 500:
            spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
            found.add(int(round(np.argmax(spectrum) * rate / len(pcm) / 100.0)) * 100)
    return found


# -- languages, languages_enabled ----------------------------------------------------------------


class LanguageAsr(ToneAsr):
    """A multilingual recognizer stand-in: each tone is a phrase in a language it reports."""

    def __init__(self, phrases: dict[int, tuple[str, str]]) -> None:
        super().__init__({hz: text for hz, (text, _) in phrases.items()})
        self.languages = {text: code for text, code in phrases.values()}
        self.asked: list[str | None] = []

    def transcribe_language(
        self, pcm: np.ndarray, *, language: str | None, hotwords: str | None = None
    ) -> tuple[Recognition, str]:
        self.asked.append(language)
        result = self.transcribe(pcm, hotwords=hotwords)
        return result, self.languages.get(result.text, "")


class ToneVoice:
    """A TtsEngine whose every word is 200 ms of one tone."""

    sample_rate = 8000

    def __init__(self, hz: int) -> None:
        self.hz = hz
        self.spoken: list[str] = []

    @property
    def voice_id(self) -> str:
        return f"tone{self.hz}"

    def synthesize(self, text: str) -> Iterator[TtsChunk]:
        self.spoken.append(text)
        yield TtsChunk(tone(self.hz, 200 * len(text.split()), amplitude=6000), 8000, text)


LANGUAGES = [
    {"name": "English", "code": "en-US", "voice": "gcloud.en-US-Neural2-F"},  # not in [tts.voices]: bundled
    {"name": "French", "code": "fr-FR", "voice": "gcloud.fr-FR-Neural2-B:arcana"},
]


def language_call(enabled: bool) -> tuple[Scenario, LanguageAsr, ToneVoice]:
    doc = {**ai(languages_enabled=enabled), "languages": LANGUAGES}
    llm = ScriptedLlm(["Hello there.", "Bonjour madame.", "Hello again."])
    s = Scenario(doc, llm=llm)
    asr = LanguageAsr({CALLER_HZ: ("hello", "en"), FRENCH_HZ: ("bonjour", "fr")})
    french = ToneVoice(FRENCH_VOICE_HZ)
    opened: list[str] = []

    def open_file(path: str) -> ToneVoice:
        opened.append(path)
        return french

    table = VoiceTable(
        {"gcloud.fr-FR-Neural2-B": "voices/fr.onnx"}, open_file, fallback=_NoVoice(), default=ToneVoice(BUNDLED_HZ)
    )
    return rebuilt(s, asr=asr, voices=table), asr, french


class _NoVoice:
    def open(self, name: str) -> None:
        return None


async def test_languages_switch_recognizer_voice_and_llm_when_the_caller_switches() -> None:
    s, asr, french = language_call(enabled=True)
    await s.start()
    await s.play(ticks=30)
    assert not s.events("ai_voice_changed")  # English's voice is not in the table: the bundled one speaks
    await s.play(tone(FRENCH_HZ, 800), ticks=60)
    assert set(asr.asked) == {None}  # languages_enabled: the recognizer detects the language
    changed = s.events("ai_language_changed")
    assert [(e["name"], e["code"], e["voice"]) for e in changed] == [
        ("French", "fr-FR", "gcloud.fr-FR-Neural2-B:arcana")
    ]
    request = s.llm.requests[1]
    note = "The caller is now speaking French. Answer in French from now on."
    assert [m["content"] for m in request[-2:]] == [note, "bonjour"]  # the note comes before the turn
    assert french.spoken == ["Bonjour madame."] and peaks(s.agent[-40:]) == {FRENCH_VOICE_HZ}
    await s.play(tone(CALLER_HZ, 800), ticks=60)  # back to English: back to the bundled voice
    assert [e["name"] for e in s.events("ai_language_changed")] == ["French", "English"]
    assert [e["voice"] for e in s.events("ai_voice_changed")] == ["gcloud.fr-FR-Neural2-B:arcana", "default"]
    assert french.spoken == ["Bonjour madame."] and peaks(s.agent[-40:]) == {BUNDLED_HZ}
    await s.finish()


async def test_without_languages_enabled_the_first_language_is_heard_and_nothing_switches() -> None:
    s, asr, french = language_call(enabled=False)
    await s.start()
    await s.play(ticks=30)
    await s.play(tone(FRENCH_HZ, 800), ticks=60)
    assert set(asr.asked) == {"en"}  # the first language's code, as Whisper names it
    assert not s.events("ai_language_changed") and not french.spoken
    assert all("now speaking" not in str(m.get("content")) for m in s.llm.requests[-1])
    await s.finish()


async def test_the_first_language_voice_speaks_from_the_start_when_the_table_has_it() -> None:
    s, _, french = language_call(enabled=False)
    s.config.languages.reverse()  # French first
    s = rebuilt(s)
    await s.start()
    await s.play(ticks=40)
    assert [e["voice"] for e in s.events("ai_voice_changed")] == ["gcloud.fr-FR-Neural2-B:arcana"]
    assert french.spoken == ["Hello there."] and peaks(s.agent) == {FRENCH_VOICE_HZ}
    await s.finish()


# -- enable_accounting ---------------------------------------------------------------------------


def _post_prompt_ai(agent: FakeAgent, **params: Any) -> dict[str, Any]:
    return {
        "prompt": {"text": "You are a clock."},
        "post_prompt": {"text": "Summarize."},
        "post_prompt_url": agent.url("/post_prompt?__token=pp"),
        "params": params,
    }


async def _accounted_call(enabled: bool) -> tuple[SwaigCall, dict[str, Any]]:
    async with FakeAgent().running() as agent:
        script = ["Hello there, how can I help?", "It is noon.", '{"ok": true}']
        s = SwaigCall(
            _post_prompt_ai(agent, enable_accounting=enabled), llm=ScriptedLlm(script), phrases={700: "what time is it"}
        )
        await s.start()
        await s.play(ticks=40)
        await s.play(tone(700, 800))
        await s.until(lambda: any(m.get("content") == "It is noon." for m in s.session.history))
        await s.play(ticks=30)
        await s.close()
    post = next(seen.json for seen in agent.seen if seen.path == "/post_prompt")
    return s, post


async def test_enable_accounting_reports_tokens_asr_seconds_and_tts_chars() -> None:
    s, post = await _accounted_call(enabled=True)
    # output: each streamed token ("It ", "is "…) estimated as the accounting does, summary included
    said = ["Hello there, how can I help?", "It is noon.", '{"ok": true}']
    assert post["total_output_tokens"] == sum(estimate_tokens(w + " ") for text in said for w in text.split(" "))
    asked = sum(max(1, estimate_tokens(m["content"])) for request in s.llm.requests for m in request)
    assert post["total_input_tokens"] == asked > 0
    assert s.tts.spoken == ["Hello there,", "how can I help?", "It is noon."]  # the first clause cut at its comma
    assert post["total_tts_chars"] == sum(len(text) for text in s.tts.spoken) == len(said[0]) - 1 + len(said[1])
    assert post["total_asr_seconds"] >= 0.8 and post["total_asr_minutes"] == round(post["total_asr_seconds"] / 60, 4)
    assert post["total_minutes"] > 0 and post["total_llm_requests"] == 3
    (event,) = logged(s, "ai_accounting")  # on the call's log, before the post-prompt summary ran
    assert event["totals"]["total_tts_chars"] == post["total_tts_chars"]
    assert event["totals"]["total_llm_requests"] == 2


async def test_without_enable_accounting_no_totals_are_reported() -> None:
    s, post = await _accounted_call(enabled=False)
    assert not [key for key in post if key.startswith("total_")]
    assert not logged(s, "ai_accounting")


async def test_get_call_shows_the_accounting_totals() -> None:
    s = Scenario(ai(enable_accounting=True), llm=ScriptedLlm(["Hello there."]))
    await s.start()
    await s.play(ticks=40)
    await s.finish()
    kernel = SimpleNamespace(calls={s.call.call_id: s.call}, agents=AgentRegistry())
    app = web.Application()
    control_routes(kernel, None, EventBus(), "tok")(app)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/calls/ai1", headers={"Authorization": "Bearer tok"})
        body = await response.json()
    assert body["accounting"]["total_tts_chars"] == len("Hello there.")
    assert body["accounting"]["total_output_tokens"] == estimate_tokens("Hello ") + estimate_tokens("there. ")


# -- conversation_id, save_conversation, summary_mode ---------------------------------------------


async def _conversation(store: ConversationStore, script: list[Any], **params: Any) -> Scenario:
    s = rebuilt(Scenario(ai(**params), llm=ScriptedLlm(script), phrases={700: "my name is ada"}), conversations=store)
    await s.start()
    await s.play(ticks=30)
    await s.play(tone(700, 800), ticks=60)
    await s.finish()
    return s


async def test_save_conversation_keeps_it_and_the_next_call_with_the_id_resumes_it(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "conversations")
    first = await _conversation(
        store,
        ["Hello.", "Nice to meet you Ada.", "Ada introduced herself."],
        save_conversation=True,
        conversation_id="cust/42",
    )
    assert first.llm.requests[-1][0]["content"] == SAVE_SUMMARY_PROMPT  # no post_prompt: summarized anyway
    (saved_file,) = (tmp_path / "conversations").iterdir()  # one file, its name safe for the folder
    saved = json.loads(saved_file.read_text())
    assert saved["conversation_id"] == "cust/42" and saved["summary"] == "Ada introduced herself."
    turns = [("assistant", "Hello."), ("user", "my name is ada"), ("assistant", "Nice to meet you Ada.")]
    assert [(m["role"], m["content"]) for m in saved["messages"]] == turns

    again = await _conversation(store, ["Welcome back Ada."], conversation_id="cust/42")
    assert [(m["role"], m["content"]) for m in again.llm.requests[0][1:]] == turns  # resumed, then the opening
    assert again.tts.spoken[0] == "Welcome back Ada."

    summary = await _conversation(store, ["Welcome back."], conversation_id="cust/42", summary_mode="string")
    assert summary.llm.requests[0][1:] == [
        {"role": "system", "content": "Summary of the earlier conversation with this caller: Ada introduced herself."}
    ]

    other = await _conversation(store, ["Hello stranger."], conversation_id="someone-else")
    assert len(other.llm.requests[0]) == 1  # the system prompt only


async def test_without_save_conversation_nothing_is_kept(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "conversations")
    s = await _conversation(store, ["Hello.", "Hi Ada."], conversation_id="cust-1")
    assert not (tmp_path / "conversations").exists() and len(s.llm.requests) == 2  # no summary pass either


async def test_save_conversation_posts_the_summary_without_a_post_prompt() -> None:
    async with FakeAgent().running() as agent:
        doc = _post_prompt_ai(agent, save_conversation=True, conversation_id="c-7")
        del doc["post_prompt"]
        s = SwaigCall(doc, llm=ScriptedLlm(["Hello.", "A short call."]))
        await s.start()
        await s.play(ticks=30)
        await s.close()
    post = next(seen.json for seen in agent.seen if seen.path == "/post_prompt")
    assert post["conversation_id"] == "c-7" and post["post_prompt_data"]["raw"] == "A short call."


# -- debug_webhook_url, debug_webhook_level -------------------------------------------------------


async def _debugged(level: int | None, *, path: str = "/debug") -> tuple[SwaigCall, list[dict[str, Any]]]:
    async with FakeAgent().running() as agent:
        agent.replies["/broken"] = [500]
        params: dict[str, Any] = {"debug_webhook_url": agent.url(path, "u:p"), "conversation_id": "conv-1"}
        if level is not None:
            params["debug_webhook_level"] = level
        s = SwaigCall(ai(**params), llm=ScriptedLlm(["Hello there."]), phrases={700: "stop"})
        await s.start()
        await s.play(ticks=40)
        await s.close()
    seen = [seen for seen in agent.seen if seen.path == path]
    assert all(hit.headers["Authorization"] == "Basic dTpw" for hit in seen)  # u:p, as the SDK requires
    return s, [hit.json for hit in seen]


async def test_debug_webhook_posts_the_platform_events_at_the_level_asked() -> None:
    s, default = await _debugged(None)  # a URL alone is level 1
    labels = [body["label"] for body in default]
    assert labels[0] == "session_start" and labels[-1] == "session_end"
    assert not {"conversation_add", "llm_request", "llm_response"} & set(labels)
    start, end = default[0], default[-1]
    assert (start["call_id"], start["ai_session_id"], start["app_name"], start["conversation_id"]) == (
        "ai1",
        "ai1",
        "swml app",
        "conv-1",
    )
    assert end["reason"] == "success" and end["duration_ms"] >= 0 and "total_output_tokens" in end
    assert isinstance(start["epoch_time"], int)

    _, verbose = await _debugged(2)
    labels = [body["label"] for body in verbose]
    assert {"session_start", "llm_request", "llm_response", "conversation_add", "session_end"} <= set(labels)
    added = next(body for body in verbose if body["label"] == "conversation_add")
    assert (added["role"], added["content"]) == ("assistant", "Hello there.")

    _, off = await _debugged(0)
    assert off == []


async def test_a_failing_debug_webhook_is_a_log_line_and_the_call_goes_on(caplog: Any) -> None:
    s, posted = await _debugged(1, path="/broken")
    assert posted and all(body["label"] for body in posted)  # it was tried
    assert logged(s, "ai_finished")[0]["result"] == "success" and s.tts.spoken == ["Hello there."]
    assert "debug webhook" in caplog.text and "HTTP 500" in caplog.text
    assert s.session.debug.failed == len(posted) and s.session.debug.posted == 0


# -- debug, verbose_logs --------------------------------------------------------------------------


async def _logged(**params: Any) -> list[dict[str, Any]]:
    s = Scenario(ai(**params), llm=ScriptedLlm(["Hello there."]))
    await s.start()
    await s.play(ticks=40)
    await s.finish()
    return logged(s, "ai_debug")


async def test_debug_and_verbose_logs_put_the_debug_events_in_the_call_log() -> None:
    debug = await _logged(debug=True)
    labels = [e["label"] for e in debug]
    assert labels[0] == "session_start" and "llm_request" in labels and labels[-1] == "session_end"
    added = next(e for e in debug if e["label"] == "conversation_add")["data"]
    assert added == {"role": "assistant", "chars": len("Hello there.")}  # sizes only
    request = next(e for e in debug if e["label"] == "llm_request")["data"]
    assert "request" not in request and request["messages"] == 1

    verbose = await _logged(verbose_logs=True)
    added = next(e for e in verbose if e["label"] == "conversation_add")["data"]
    assert added["content"] == "Hello there."
    request = next(e for e in verbose if e["label"] == "llm_request")["data"]
    assert request["request"][0] == {"role": "system", "content": "You are a test."}

    assert await _logged() == [] and await _logged(debug=0) == []


# -- audible_debug, audible_latency ---------------------------------------------------------------


def _tool_call(**params: Any) -> Scenario:
    tools = StaticToolRunner([StaticTool("lookup", "Look it up", lambda args, control: "found it")])
    llm = ScriptedLlm(["Hello.", ToolCallRequested("c1", "lookup", "{}"), "Here it is."])
    return Scenario(ai(**params), llm=llm, tools=tools, phrases={700: "look it up"})


async def test_audible_debug_says_the_function_being_called() -> None:
    for audible in (True, False):
        s = _tool_call(audible_debug=audible)
        await s.start()
        await s.play(ticks=20)
        await s.play(tone(700, 800), ticks=80)
        assert ("Calling function lookup." in s.tts.spoken) is audible
        assert s.tts.spoken[-1] == "Here it is." or s.tts.spoken[-2] == "Here it is."
        assert all("Calling function" not in str(m.get("content")) for m in s.session.history)
        await s.finish()


async def test_audible_latency_says_the_latency_of_each_answer() -> None:
    for audible in (True, False):
        s = Scenario(ai(audible_latency=audible), llm=ScriptedLlm(["Hello.", "It is noon."]), phrases={700: "time"})
        await s.start()
        await s.play(ticks=20)
        await s.play(tone(700, 800), ticks=80)
        endpoint, frame = s.events("turn_endpoint")[0], s.events("turn_first_agent_frame")[-1]
        ms = (frame["caller_sample"] - endpoint["speech_end"]) * 1000 // 16000
        readouts = [text for text in s.tts.spoken if text.startswith("Latency")]
        assert readouts == ([f"Latency {ms} milliseconds."] if audible else [])
        assert all("Latency" not in str(m.get("content")) for m in s.session.history)
        await s.finish()
