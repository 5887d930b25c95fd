"""The SWML executor on a real Call with a fake TTS and a fast virtual tick: prompt with DTMF,
request and fetch against a local HTTP server, record_call to WAV, unsupported verbs, and the
apology + hangup when a document fails at run time."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import wave
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from mediaserver.errors import HangupCause
from mediaserver.kernel.call import Call
from mediaserver.kernel.executor import SwmlExecutor, SwmlOptions
from mediaserver.kernel.fetch import swml_call
from mediaserver.kernel.media import MediaParams, MediaStream
from mediaserver.kernel.services import DialerPort, KernelServices, NoAiRunner
from mediaserver.kernel.speech import LazyRecognizer, SpeechSynthesizer, UnavailableRecognizer
from mediaserver.kernel.taps import DigitSource
from mediaserver.kernel.verbs.registry import kernel_builders
from mediaserver.logs import CallEventLog
from mediaserver.pipeline.tts import TtsChunk
from mediaserver.rtp.packet import RtpPacket
from mediaserver.swml.document import document_from_data
from mediaserver.swml.interpreter import Interpreter
from tests.support.fakes import FakeSignal

FRAME_NS = 20_000_000


class FakeTts:
    """Speaks 100 ms of a tone per text and remembers what it was asked to say."""

    sample_rate = 16000
    voice_id = "fake-tone"

    def __init__(self) -> None:
        self.spoken: list[str] = []

    def synthesize(self, text: str) -> Iterator[TtsChunk]:
        self.spoken.append(text)
        t = np.arange(1600) / 16000
        yield TtsChunk((3000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16), 16000, text)


class Harness:
    def __init__(self, tmp: Path) -> None:
        self.tts = FakeTts()
        self.signal = FakeSignal()
        self.sent: list[bytes] = []
        media = MediaStream(MediaParams("PCMU", 0, 8000, 101), "t", rng=random.Random(1))
        self.call = Call(
            "call-123",
            from_uri="sip:+15550001@x",
            to_uri="sip:ivr@y",
            media=media,
            signal=self.signal,
            send_media=self.sent.append,
            event_log=CallEventLog("call-123"),
        )
        self.pool = ThreadPoolExecutor(1)
        self.options = SwmlOptions(fetch_timeout_s=2.0, apology="Sorry, goodbye.", recordings_dir=tmp)
        self.inbound_seq = 0
        self.recognizer: Any = None
        self.ai_runner: Any = None
        self.dialer: Any = None

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.call.events.events if e["event"] == name]

    def send_inbound(self, level: int | np.ndarray) -> None:
        if isinstance(level, np.ndarray):
            pcm = level.astype(np.int16)
        else:
            pcm = np.full(160, level, dtype=np.int16) if level else np.zeros(160, dtype=np.int16)
        payload = self.call.media.codec.encode(pcm)  # type: ignore[attr-defined]
        pkt = RtpPacket(0, self.inbound_seq, 160 * self.inbound_seq, 99, payload)
        self.inbound_seq += 1
        self.call.receive_media(pkt.serialize(), 0)

    async def run(self, sections: dict[str, Any], http: Any = None, on_tick: Any = None, ticks: int = 3000) -> None:
        document = document_from_data({"sections": sections})
        interp = Interpreter(document, call=swml_call(self.call), builders=kernel_builders())
        services = KernelServices(
            SpeechSynthesizer(self.tts, self.pool),
            self.pool,
            http=http,
            swml=self.options,
            prompt_recognizer=LazyRecognizer(self.recognizer) if self.recognizer else UnavailableRecognizer(),
            ai_runner=self.ai_runner or NoAiRunner(),
            dialer=DialerPort(self.dialer),
        )
        executor = SwmlExecutor(interp, services)

        async def tick() -> None:
            now = 0
            for n in range(ticks):
                if self.call.ended.is_set():
                    return
                if on_tick is not None:
                    on_tick(n)
                now += FRAME_NS
                self.call.on_tick(now, 0.0)
                if self.signal.actions[-1:] == ["hangup"]:
                    self.call.signaling_ended("BYE answered")
                await asyncio.sleep(0.001)
            self.call.hangup(reason="test ran out of ticks")
            self.call.signaling_ended("test")

        ticker = asyncio.ensure_future(tick())
        await asyncio.wait_for(self.call.run(executor.run), 30)
        ticker.cancel()
        self.pool.shutdown(wait=False)


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


async def test_prompt_collects_digits_until_terminator_and_switch_branches(harness: Harness) -> None:
    sections = {
        "main": [
            {"prompt": {"play": "say:Enter your code", "max_digits": 4, "terminators": "#", "digit_timeout": 2}},
            {
                "switch": {
                    "variable": "prompt_value",
                    "case": {"42": [{"play": {"url": "say:right ${prompt_digit_terminator}"}}]},
                    "default": [{"play": {"url": "say:wrong ${prompt_value}"}}],
                }
            },
            "hangup",
        ]
    }
    presses = {10: "4", 14: "2", 18: "#"}

    def press(n: int) -> None:
        if n in presses:
            harness.call.media.deliver_dtmf(presses[n], DigitSource.RFC4733)

    await harness.run(sections, on_tick=press)
    assert harness.tts.spoken == ["Enter your code", "right #"]
    assert harness.events("prompt_done")[0]["result"] == "match_digits"


async def test_prompt_without_input_reports_no_input(harness: Harness) -> None:
    sections = {
        "main": [
            {"prompt": {"play": "say:Press a key", "initial_timeout": 0.2, "speech_timeout": 1}},
            {"play": {"url": "say:${prompt_result}"}},
        ]
    }
    await harness.run(sections)
    assert harness.tts.spoken == ["Press a key", "no_input"]
    assert harness.events("prompt_speech_unavailable")  # the speech seam is logged, not silent


@pytest.fixture
async def web_server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def agent(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(
            {
                "path": request.path,
                "query": request.query_string,
                "auth": request.headers.get("Authorization"),
                "body": body,
            }
        )
        if request.path == "/redirect":
            raise web.HTTPTemporaryRedirect("/agent?tenant=x")
        if request.path == "/broken":
            return web.Response(status=500, text="boom")
        if request.path == "/garbage":
            return web.Response(text="<html>not swml</html>", content_type="text/html")
        if request.path == "/badswml":
            return web.json_response({"sections": {"main": [{"play": {"urls": ["say:a", 7]}}]}})
        if request.path == "/slow":
            await asyncio.sleep(5)
        return web.json_response(
            {
                "version": "1.0.0",
                "sections": {
                    "main": [
                        {"play": {"url": "say:Hello ${call.from_number} from the agent, ${params.k}"}},
                        {"return": "fine"},
                    ]
                },
            }
        )

    async def api(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "body": await request.text()})
        return web.json_response({"ok": True, "name": "Ann"}, headers={"X-Thing": "1"})

    app = web.Application()
    app.router.add_post("/agent", agent)
    app.router.add_post("/redirect", agent)
    app.router.add_post("/broken", agent)
    for path in ("/garbage", "/badswml", "/slow"):
        app.router.add_post(path, agent)
    app.router.add_route("*", "/api", api)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_execute_url_posts_call_body_with_basic_auth_follows_307_keeps_call_id(
    harness: Harness, web_server: tuple[str, list[dict[str, Any]]]
) -> None:
    import aiohttp

    base, seen = web_server
    url = base.replace("http://", "http://user:s3cret@") + "/redirect?tenant=x"
    async with aiohttp.ClientSession() as http:
        await harness.run(
            {
                "main": [
                    {"set": {"who": "me"}},
                    {"execute": {"dest": url, "params": {"k": "v1"}}},
                    {"play": {"url": "say:returned ${return_value}"}},
                ]
            },
            http=http,
        )
    assert harness.tts.spoken == ["Hello +15550001 from the agent, v1", "returned fine"]
    first, second = seen
    assert (first["path"], second["path"], second["query"]) == ("/redirect", "/agent", "tenant=x")
    assert first["auth"] == "Basic " + base64.b64encode(b"user:s3cret").decode()
    assert second["body"]["call"]["call_id"] == "call-123" == first["body"]["call"]["call_id"]
    assert second["body"]["vars"] == {"who": "me"} and second["body"]["params"] == {"k": "v1"}


async def test_request_sets_result_variables(harness: Harness, web_server: tuple[str, list[dict[str, Any]]]) -> None:
    import aiohttp

    base, seen = web_server
    async with aiohttp.ClientSession() as http:
        await harness.run(
            {
                "main": [
                    {
                        "request": {
                            "url": f"{base}/api",
                            "method": "POST",
                            "body": {"q": "${call.from_number}"},
                            "save_variables": True,
                        }
                    },
                    {
                        "play": {
                            "url": "say:${request_result} ${request_response_code} ${request_response.name} "
                            "${request_response_headers['x-thing']}"
                        }
                    },
                    {"request": {"url": "http://127.0.0.1:1/nothing", "method": "GET", "timeout": 1}},
                    {"play": {"url": "say:${request_result}"}},
                ]
            },
            http=http,
        )
    assert harness.tts.spoken == ["success 200 Ann 1", "failed"]
    assert json.loads(seen[0]["body"]) == {"q": "+15550001"}


async def test_failed_fetch_apologizes_and_hangs_up(
    harness: Harness, web_server: tuple[str, list[dict[str, Any]]]
) -> None:
    import aiohttp

    base, _ = web_server
    async with aiohttp.ClientSession() as http:
        await harness.run(
            {"main": [{"transfer": {"dest": f"{base}/broken"}}, {"play": {"url": "say:never"}}]}, http=http
        )
    assert harness.tts.spoken == ["Sorry, goodbye."]
    assert harness.call.cause is HangupCause.SWML_ERROR
    error = harness.events("swml_error")[0]
    assert error["path"] == "sections.main[0].transfer.dest" and "HTTP 500" in error["error"]


async def test_bad_expression_at_run_time_apologizes(harness: Harness) -> None:
    await harness.run({"main": ["answer", {"cond": [{"when": "nope(", "then": []}]}]})
    assert harness.tts.spoken == ["Sorry, goodbye."]
    assert harness.events("swml_error")[0]["path"] == "sections.main[1].cond[0].when"


async def test_unsupported_verb_logs_and_sets_result(harness: Harness) -> None:
    await harness.run(
        {
            "main": [
                {"send_sms": {"to_number": "+1", "from_number": "+2", "body": "hi"}},
                {"play": {"url": "say:sms ${send_sms_result}"}},
            ]
        }
    )
    assert harness.tts.spoken == ["sms unsupported"]
    assert harness.events("verb_unsupported")[0]["verb"] == "send_sms"


async def test_record_call_writes_both_directions(harness: Harness) -> None:
    def talk(n: int) -> None:
        harness.send_inbound(8000 if n % 2 else 0)

    await harness.run(
        {
            "main": [
                "answer",
                {"record_call": {"control_id": "r1", "stereo": True}},
                {"play": {"url": "say:this is recorded"}},
                {"sleep": 200},
                {"stop_record_call": {"control_id": "r1"}},
                {"play": {"url": "say:${record_call_url}"}},
            ]
        },
        on_tick=talk,
    )
    url = harness.tts.spoken[-1]
    assert url.startswith("file://")
    with wave.open(url.removeprefix("file://"), "rb") as wav:
        assert wav.getnchannels() == 2
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    caller, ours = frames[:, 0], frames[:, 1]
    assert np.abs(caller).max() > 4000  # the caller's square-ish signal
    assert np.abs(ours).max() > 1000  # our tone went out and was recorded
    assert len(frames) >= 8000 * 0.1


async def test_user_event_denoise_and_no_dialer(harness: Harness) -> None:
    await harness.run(
        {
            "main": [
                {"user_event": {"event": {"kind": "hello"}}},
                "denoise",
                {"connect": {"to": "sip:bob@example.com"}},
                {"sip_refer": {"to_uri": "sip:bob@example.com"}},
                {"play": {"url": "say:${connect_result} ${sip_refer_result}"}},
            ]
        }
    )
    assert harness.call.info["user_events"] == [{"kind": "hello"}]
    assert harness.tts.spoken == ["failed failed"]
    assert [e["verb"] for e in harness.events("verb_unsupported")] == ["connect", "sip_refer"]


async def test_send_digits_goes_out_as_rfc4733_events(harness: Harness) -> None:
    from mscodecs.dtmf import DtmfReceiver, TelephoneEvent

    await harness.run(
        {"main": ["answer", {"send_digits": {"digits": "12w#"}}, {"play": {"url": "say:${send_digits_result}"}}]}
    )
    assert harness.tts.spoken == ["success"]
    packets = [RtpPacket.parse(d) for d in harness.sent if len(d) > 1 and (d[1] & 0x7F) == 101]
    receiver = DtmfReceiver()
    heard = [d for p in packets if (d := receiver.receive(TelephoneEvent.parse(p.payload), p.timestamp)) is not None]
    assert heard == ["1", "2", "#"]
    assert [p.marker for p in packets].count(True) == 3  # one marked start per key press
    audio = [RtpPacket.parse(d) for d in harness.sent if len(d) > 1 and (d[1] & 0x7F) == 0]
    seqs = sorted(p.sequence for p in [*packets, *audio])
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one sequence space, no holes


class FakeRecognizer:
    sample_rate = 16000

    def __init__(self) -> None:
        self.heard: list[int] = []

    def transcribe(self, pcm: np.ndarray, *, prompt: str | None = None, hotwords: str | None = None) -> Any:
        from mediaserver.pipeline.asr import Recognition

        self.heard.append(len(pcm))
        return Recognition(text=f"sales please ({hotwords})", confidence=0.87)


async def test_speech_prompt_goes_through_the_recognizer(harness: Harness) -> None:
    recognizer = FakeRecognizer()

    def speak(n: int) -> None:  # 0.4 s of loud audio after the prompt, then quiet
        harness.send_inbound(9000 if 20 <= n < 40 else 0)

    async def provider() -> FakeRecognizer:  # as the app wires it: engines load on first use
        return recognizer

    harness.recognizer = lambda: provider()
    await harness.run(
        {
            "main": [
                {
                    "prompt": {
                        "play": "say:Say a department",
                        "max_digits": 0,
                        "speech_end_timeout": 0.3,
                        "speech_hints": ["sales"],
                    }
                },
                {"play": {"url": "say:${prompt_result}: ${prompt_value} ${prompt_speech_confidence}"}},
            ]
        },
        on_tick=speak,
    )
    assert harness.tts.spoken == ["Say a department", "match_speech: sales please (sales) 0.87"]
    (samples,) = recognizer.heard
    assert 16000 * 0.3 <= samples <= 16000 * 1.0  # the utterance at 16 kHz, endpointed


def speech_8k(text: str, tmp: Path) -> np.ndarray:
    from tests.support.speech import read_wav, synthesize_espeak

    samples, _ = read_wav(synthesize_espeak(text, tmp / "say.wav", sample_rate=8000))
    return (np.clip(np.asarray(samples).reshape(-1), -1, 1) * 32767).astype(np.int16)


def feeder(harness: Harness, pcm: np.ndarray, start_tick: int) -> Any:
    def feed(n: int) -> None:
        i = (n - start_tick) * 160
        chunk = pcm[i : i + 160] if 0 <= i < len(pcm) else np.zeros(0, dtype=np.int16)
        harness.send_inbound(np.pad(chunk, (0, 160 - len(chunk))))

    return feed


@pytest.mark.slow
async def test_record_writes_what_the_caller_said(harness: Harness, tmp_path: Path) -> None:
    from tests.support.speech import transcribe, words

    pcm = speech_8k("Please call me back about the blue invoice.", tmp_path)
    await harness.run(
        {
            "main": [
                {"record": {"beep": True, "end_silence_timeout": 1, "initial_timeout": 3}},
                {"play": {"url": "say:${record_result} ${record_url}"}},
            ]
        },
        on_tick=feeder(harness, pcm, 20),
    )
    result, url = harness.tts.spoken[0].split(" ", 1)
    assert result == "success" and url.startswith("file://")
    heard = transcribe(url.removeprefix("file://"))
    # Whisper may split a word of the espeak voice ("in voice"): the words are looked for in the
    # transcript with its spaces removed, in order.
    joined = "".join(words(heard))
    assert re.search("please.*call.*blue.*invoice", joined), heard
    (done,) = harness.events("record_done")
    assert done["reason"] == "silence"
    # The event (what browsers see) names the file, not its server path; record_url is the var.
    assert done["file"] == url.rsplit("/", 1)[1]


async def test_record_without_speech_is_no_input(harness: Harness) -> None:
    await harness.run(
        {"main": [{"record": {"initial_timeout": 0.5}}, {"play": {"url": "say:${record_result}"}}]},
        on_tick=lambda n: harness.send_inbound(0),
    )
    assert harness.tts.spoken == ["no_input"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello?", "human"),
        (
            "Hi, you have reached the voicemail of Jordan Smith. I cannot take your call right now, "
            "please leave a message after the tone.",
            "machine",
        ),
    ],
)
async def test_detect_machine_by_greeting_cadence(harness: Harness, tmp_path: Path, text: str, expected: str) -> None:
    pcm = speech_8k(text, tmp_path)
    await harness.run(
        {
            "main": [
                "answer",
                {"detect_machine": {"machine_voice_threshold": 2.5, "end_silence_timeout": 1}},
                {"play": {"url": "say:${detect_result}"}},
            ]
        },
        on_tick=feeder(harness, pcm, 10),
    )
    assert harness.tts.spoken == [expected]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/garbage", "invalid SWML"),
        ("/badswml", "sections.main[0].play.urls[1]: expected a string"),
        ("/slow", "no answer within 0.5 s"),
    ],
)
async def test_bad_agent_replies_apologize(
    harness: Harness, web_server: tuple[str, list[dict[str, Any]]], path: str, reason: str
) -> None:
    import aiohttp

    base, _ = web_server
    harness.options.fetch_timeout_s = 0.5
    async with aiohttp.ClientSession() as http:
        await harness.run({"main": [{"execute": {"dest": base + path}}, {"play": {"url": "say:never"}}]}, http=http)
    assert harness.tts.spoken == ["Sorry, goodbye."]
    assert reason in harness.events("swml_error")[0]["error"]


ALL_VERBS: dict[str, Any] = {
    "answer": {},
    "ai": {"prompt": {"text": "hi"}},
    "ai_sidecar": {"prompt": "watch", "lang": "en-US"},
    "amazon_bedrock": {"prompt": {"text": "hi"}},
    "cond": [{"when": "true", "then": []}],
    "connect": {"to": "sip:bob@example.com"},
    "denoise": {},
    "detect_machine": {"initial_timeout": 0.2, "timeout": 1},
    "enter_queue": {"queue_name": "q", "transfer_after_bridge": "x"},
    "execute": {"dest": "sub"},
    "goto": {"label": "here", "when": "false"},
    "hangup": None,
    "join_conference": {"name": "c"},
    "join_room": {"name": "r"},
    "label": "here",
    "live_transcribe": {"action": "stop"},
    "live_translate": {"action": "stop"},
    "pay": {"payment_connector_url": "https://e.com/pay"},
    "play": {"url": "silence:0.1"},
    "prompt": {"play": "silence:0.1", "initial_timeout": 0.1},
    "receive_fax": {},
    "record": {"initial_timeout": 0.2},
    "record_call": {"control_id": "x"},
    "request": {"url": "http://127.0.0.1:1/", "method": "GET", "timeout": 0.5},
    "return": None,
    "send_digits": {"digits": "1"},
    "send_fax": {"document": "https://e.com/f.pdf"},
    "send_sms": {"to_number": "+1", "from_number": "+2", "body": "b"},
    "set": {"a": 1},
    "sip_refer": {"to_uri": "sip:x@y"},
    "sleep": 10,
    "stop_denoise": {},
    "stop_record_call": {"control_id": "x"},
    "stop_tap": {},
    "switch": {"variable": "a", "case": {}},
    "tap": {"uri": "rtp://127.0.0.1:9"},
    "transfer": {"dest": "sub"},
    "unset": "a",
    "user_event": {"event": {"k": 1}},
}


def test_the_table_covers_the_39_schema_verbs() -> None:
    from mediaserver.swml.document import VERBS

    assert set(ALL_VERBS) == VERBS and len(VERBS) == 39


@pytest.mark.parametrize("verb", sorted(set(ALL_VERBS) - {"hangup", "return", "transfer"}))
async def test_every_verb_runs_or_fails_cleanly_and_the_call_goes_on(harness: Harness, verb: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        await harness.run(
            {
                "main": [
                    "answer",
                    {"label": "here"} if verb != "label" else "answer",
                    {verb: ALL_VERBS[verb]},
                    {"play": {"url": "say:still here"}},
                ],
                "sub": [{"set": {"b": 2}}],
            },
            http=http,
            on_tick=lambda n: harness.send_inbound(0),
        )
    assert harness.tts.spoken[-1:] == ["still here"], harness.call.events.events[-5:]
    assert not harness.events("script_failed") and not harness.events("swml_error")


async def test_tap_streams_the_callers_audio_as_rtp_until_stop_tap(harness: Harness) -> None:
    """`tap` (a kernel verb declared in one module, kernel/verbs/tap.py) through the executor."""
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    sections = {
        "main": [
            "answer",
            {"tap": {"uri": f"rtp://127.0.0.1:{port}", "control_id": "t1", "codec": "PCMA", "rtp_ptime": 40}},
            {"play": {"url": "say:${tap_result} ${tap_control_id} ${tap_codec} ${tap_ptime} ${tap_rate}"}},
            {"sleep": 200},
            {"stop_tap": {"control_id": "t1"}},
            {"stop_tap": {}},
            {"tap": {"uri": "wss://example.com/tap"}},
            {"play": {"url": "say:${stop_tap_result} ${tap_result}"}},
            "hangup",
        ]
    }
    try:
        await harness.run(sections, on_tick=lambda n: harness.send_inbound(3000))
        packets = []
        while True:
            try:
                packets.append(RtpPacket.parse(listener.recv(2048)))
            except BlockingIOError:
                break
    finally:
        listener.close()
    assert harness.tts.spoken == ["success t1 PCMA 40 8000", "failed failed"]
    assert packets and {p.payload_type for p in packets} == {8} and len({p.ssrc for p in packets}) == 1
    assert [p.sequence for p in packets] == list(range(len(packets)))
    assert [p.timestamp for p in packets] == [320 * n for n in range(len(packets))]
    assert {len(p.payload) for p in packets} == {320} and packets[0].marker
    from mscodecs.registry import make_codec

    heard = np.concatenate([make_codec("PCMA").decode(p.payload) for p in packets[2:]])
    assert np.abs(heard).max() > 2000  # the caller's level-3000 frames went out
    stopped = harness.events("tap_stopped")
    assert len(stopped) == 1 and stopped[0]["control_id"] == "t1" and stopped[0]["packets"] == len(packets)
    assert [e.get("error", "")[:10] for e in harness.events("tap_failed")] == ["no running", "WebSocket "]
