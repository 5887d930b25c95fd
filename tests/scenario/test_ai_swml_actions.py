"""SWAIG `SWML` and `transfer` actions executed for real: the SDK's FunctionResult helpers, applied
by the SWAIG action table to the real `AiSession`, run by the `ai` verb of the real SWML executor
on a call ticked every 20 ms (tests/scenario/test_swml_executor.py's harness).

transfer true: the AI ends (post-prompt summary first) and the script continues in the new
document; transfer false: the document runs on the live call and the same conversation resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web
from signalwire.core.function_result import FunctionResult

from mediaserver.agents.ai.runner import SessionRunner
from mediaserver.agents.ai.session import AiEngines
from mediaserver.agents.ai.tools import StaticTool, StaticToolRunner, ToolOutcome
from mediaserver.agents.sidecar import SidecarManager, SidecarServices
from mediaserver.agents.sidecar.control import SidecarControl
from mediaserver.kernel.eventbus import EventBus
from mediaserver.kernel.executor import SwmlExecutor
from mediaserver.kernel.fetch import swml_call
from mediaserver.kernel.inline import ScriptRegistry
from mediaserver.kernel.services import DialerPort, KernelServices
from mediaserver.kernel.speech import SpeechSynthesizer
from mediaserver.kernel.verbs.registry import kernel_builders
from mediaserver.pipeline.llm import ToolCallRequested
from mediaserver.swaig.actions import apply_actions
from mediaserver.swaig.seam import AiControl
from mediaserver.swml.document import document_from_data
from mediaserver.swml.interpreter import Interpreter
from tests.scenario.ai_fakes import InlineExecutor, ScriptedLlm, ToneAsr, ToneVad, WordTts, tone
from tests.scenario.test_media_taps import CALLEE_HZ, CALLER_HZ, LoopDialer, read_stereo, tone_share
from tests.scenario.test_swml_executor import FRAME_NS, Harness

ASK_HZ = 900  # a second caller phrase


def sdk_tool(name: str, make: Callable[[], FunctionResult], params: dict[str, Any] | None = None) -> StaticTool:
    """A tool whose reply is exactly what the SDK helper emits, applied by the SWAIG action table."""

    def run(args: dict[str, Any], control: AiControl) -> ToolOutcome:
        reply = make().to_dict()
        apply_actions(reply.get("action"), control, params or {})
        return ToolOutcome(response=str(reply["response"]), actions=reply.get("action", []))

    return StaticTool(name, name, run)


class AiHarness(Harness):
    """The executor's harness with the `ai` verb on fake engines and the kernel's script registry."""

    def __init__(self, tmp: Path, llm: ScriptedLlm, tools: list[StaticTool], phrases: dict[int, str]) -> None:
        super().__init__(tmp)
        self.scripts = ScriptRegistry()
        self.llm = llm
        self.engines = AiEngines(
            vad=ToneVad,
            asr=ToneAsr(phrases),
            llm=llm,
            tts=WordTts(),
            blocking=InlineExecutor(),
            far_end_delay_ms=0,
        )
        self.tools = StaticToolRunner(tools)
        self.ai_runner = SessionRunner(self.engines, tool_factory=lambda *_: self.tools, scripts=self.scripts)
        self.interp: Interpreter | None = None

    async def run(self, sections: dict[str, Any], http: Any = None, on_tick: Any = None, ticks: int = 3000) -> None:
        document = document_from_data({"sections": sections})
        self.interp = Interpreter(document, call=swml_call(self.call), builders=kernel_builders())
        services = KernelServices(
            SpeechSynthesizer(self.tts, self.pool),
            self.pool,
            http=http,
            swml=self.options,
            ai_runner=self.ai_runner,
            dialer=DialerPort(self.dialer),
            scripts=self.scripts,
        )
        executor = SwmlExecutor(self.interp, services)

        async def tick() -> None:
            for n in range(ticks):
                if self.call.ended.is_set():
                    return
                if on_tick is not None:
                    on_tick(n)
                self.call.on_tick((n + 1) * FRAME_NS, 0.0)
                if self.signal.actions[-1:] == ["hangup"]:
                    self.call.signaling_ended("BYE answered")
                await asyncio.sleep(0.001)
            self.call.hangup(reason="test ran out of ticks")
            self.call.signaling_ended("test")

        ticker = asyncio.ensure_future(tick())
        await asyncio.wait_for(self.call.run(executor.run), 60)
        ticker.cancel()
        self.pool.shutdown(wait=False)

    def names(self) -> list[str]:
        return [e["event"] for e in self.call.events.events]

    def speaker(self, phrases: dict[int, np.ndarray]) -> Callable[[int], None]:
        """The caller says each `phrases[tick]` starting at that tick."""

        def on_tick(n: int) -> None:
            for start, pcm in phrases.items():
                i = (n - start) * 160
                if 0 <= i < len(pcm):
                    self.send_inbound(pcm[i : i + 160])
                    return
            self.send_inbound(0)

        return on_tick


def user_turns(llm: ScriptedLlm) -> list[str]:
    return [m["content"] for m in llm.requests[-1] if m["role"] == "user"]


async def test_start_recording_records_both_directions_and_the_conversation_goes_on(tmp_path: Path) -> None:
    # call_flow_and_actions_demo.py's start_recording: a record_call SWML action, transfer false.
    tool = sdk_tool(
        "start_recording",
        lambda: FunctionResult("Recording has started.").record_call(
            control_id="demo-recording", stereo=True, format="wav"
        ),
    )
    llm = ScriptedLlm(
        ["Hello how can I help", ToolCallRequested("c1", "start_recording", "{}"), "Recording now", "It is noon"]
    )
    h = AiHarness(tmp_path, llm, [tool], {CALLER_HZ: "please record this call", ASK_HZ: "what time is it"})
    ask_at = 260
    await h.run(
        {"main": ["answer", {"ai": {"prompt": {"text": "Be brief."}}}, "hangup"]},
        on_tick=h.speaker({60: tone(CALLER_HZ, 1000), ask_at: tone(ASK_HZ, 1000)}),
        ticks=420,
    )
    (started,) = [e for e in h.call.events.events if e["event"] == "record_call_started"]
    assert started["control_id"] == "demo-recording"
    (inline,) = [e for e in h.call.events.events if e["event"] == "swml_inline_finished"]
    assert inline["ran"] is True and inline["source"] == "ai"
    # The same conversation went on after the document: the second question was heard and answered.
    assert user_turns(llm) == ["please record this call", "what time is it"]
    assert "It is noon" in h.engines.tts.spoken  # type: ignore[attr-defined]
    (stopped,) = [e for e in h.call.events.events if e["event"] == "record_call_stopped"]
    caller_side, our_side, rate = read_stereo(str(h.options.recordings_dir / stopped["file"]))
    # Both directions: the caller's second question, and the agent's voice (WordTts speaks 300 Hz).
    assert tone_share(caller_side, rate, ASK_HZ) > 0.3
    assert tone_share(our_side, rate, 300) > 0.3
    assert np.abs(our_side.astype(np.int32)).max() > 1000


async def test_connect_final_ends_the_ai_after_its_summary_and_the_script_continues_there(tmp_path: Path) -> None:
    tool = sdk_tool("transfer", lambda: FunctionResult("Transferring you now.").connect("+15551000001", final=True))
    llm = ScriptedLlm(["Hello", ToolCallRequested("c1", "transfer", "{}"), "Bye now", "A short summary"])
    h = AiHarness(tmp_path, llm, [tool], {CALLER_HZ: "sales please"})
    dialer = h.dialer = LoopDialer()

    def on_tick(n: int) -> None:
        h.speaker({60: tone(CALLER_HZ, 1000)})(n)
        leg = dialer.leg
        if (
            leg is not None
            and not leg.is_over
            and n % 10 == 0
            and any(e["event"] == "bridged" for e in h.call.events.events)
        ):
            leg.remote_hung_up("callee done")
            leg.signaling_ended("BYE")

    await h.run(
        {
            "main": [
                "answer",
                {"ai": {"prompt": {"text": "t"}, "post_prompt": {"text": "Summarize"}}},
                {"play": {"url": "say:after the ai"}},
            ]
        },
        on_tick=on_tick,
        ticks=400,
    )
    names = h.names()
    assert names.index("ai_summary") < names.index("connect_dialed")  # the summary is still delivered
    (dialed,) = [e for e in h.call.events.events if e["event"] == "connect_dialed"]
    assert dialed["to"] == "+15551000001" and dialed["status"] == 200
    assert "after the ai" not in h.tts.spoken  # the old script does not resume after the `ai` verb
    assert h.interp is not None and h.interp.variables["connect_result"] == "connected"
    assert h.interp.variables["ai_result"] == "success"


async def test_connect_not_final_bridges_then_returns_to_the_same_conversation(tmp_path: Path) -> None:
    tool = sdk_tool("consult", lambda: FunctionResult("Connecting.").connect("sip:expert@example.com", final=False))
    llm = ScriptedLlm(["Hello", ToolCallRequested("c1", "consult", "{}"), "One moment", "Welcome back it is noon"])
    h = AiHarness(tmp_path, llm, [tool], {CALLER_HZ: "get me the expert", ASK_HZ: "what time is it"})
    dialer = h.dialer = LoopDialer()
    callee = tone(CALLEE_HZ, 20_000)
    seq = [0]
    bridged_at: list[int] = []
    back_at = 400  # the caller asks again once the callee has hung up
    talk_to_expert = tone(ASK_HZ, 1000)  # said during the bridge: for the expert, not the AI

    speaker = h.speaker({60: tone(CALLER_HZ, 1000), back_at: tone(ASK_HZ, 1000)})

    def on_tick(n: int) -> None:
        leg = dialer.leg
        if leg is not None and not bridged_at:
            bridged_at.append(n)
        k = n - bridged_at[0] if bridged_at else -1
        if 20 <= k < 70:  # the caller talks to the expert
            h.send_inbound(talk_to_expert[(k - 20) * 160 : (k - 19) * 160])
        else:
            speaker(n)
        if leg is None or leg.is_over:
            return
        media = leg.media
        pcm = callee[k * 160 : (k + 1) * 160]
        leg.receive_media(_rtp(media, pcm, seq), 0)
        leg.on_tick((n + 1) * FRAME_NS, 0.0)
        if k == 120:
            leg.remote_hung_up("expert done")
            leg.signaling_ended("BYE")

    await h.run(
        {"main": ["answer", {"ai": {"prompt": {"text": "t"}}}, "hangup"]},
        on_tick=on_tick,
        ticks=560,
    )
    names = h.names()
    assert "bridged" in names and "unbridged" in names
    assert h.interp is not None and h.interp.variables["connect_result"] == "connected"
    # The AI did not hear the caller talking to the expert; afterwards, the same conversation.
    assert user_turns(llm) == ["get me the expert", "what time is it"]
    assert "Welcome back it is noon" in h.engines.tts.spoken  # type: ignore[attr-defined]
    assert names.count("ai_started") == 1 and names.index("unbridged") < names.index("ai_finished")


def _rtp(media: Any, pcm: np.ndarray, seq: list[int]) -> bytes:
    from mediaserver.rtp.packet import RtpPacket

    frame = np.zeros(160, dtype=np.int16)
    frame[: len(pcm)] = pcm
    packet = RtpPacket(0, seq[0], 160 * seq[0], 77, media.codec.encode(frame))
    seq[0] += 1
    return packet.serialize()


async def test_helpers_for_verbs_this_server_lacks_answer_unsupported_and_log(tmp_path: Path) -> None:
    def unsupported() -> FunctionResult:
        return (
            FunctionResult("Done.")
            .send_sms(to_number="+15550001111", from_number="+15559999999", body="hi")
            .pay(payment_connector_url="https://pay.example.com/connector")
            .join_room("standup")
            .join_conference("weekly")
        )

    tools = [
        sdk_tool("everything", unsupported),
        sdk_tool("bye", lambda: FunctionResult("Bye.").add_action("stop", True)),
    ]
    llm = ScriptedLlm(
        [
            "Hello",
            ToolCallRequested("c1", "everything", "{}"),
            "All done",
            "Payment noted",  # the reply to pay()'s ai_response, once the documents have run
            ToolCallRequested("c2", "bye", "{}"),
            "Bye",
        ]
    )
    h = AiHarness(tmp_path, llm, tools, {CALLER_HZ: "do everything", ASK_HZ: "goodbye"})
    await h.run(
        {
            "main": [
                "answer",
                {"ai": {"prompt": {"text": "t"}}},
                {"play": {"url": "say:${send_sms_result} ${pay_result} ${join_room_result} ${join_conference_result}"}},
                "hangup",
            ]
        },
        on_tick=h.speaker({60: tone(CALLER_HZ, 1000), 260: tone(ASK_HZ, 1000)}),
        ticks=500,
    )
    logged = [e["verb"] for e in h.call.events.events if e["event"] == "verb_unsupported"]
    assert logged == ["send_sms", "pay", "join_room", "join_conference"]
    assert h.tts.spoken == ["unsupported unsupported unsupported unsupported"]
    # pay() sets ai_response for the agent: it reached the model as a system message.
    (asked,) = [r for r in llm.requests if r[-1]["role"] == "system" and "payment status" in r[-1]["content"]]
    assert "Payment noted" in h.engines.tts.spoken  # type: ignore[attr-defined]


async def test_transfer_action_to_a_number(tmp_path: Path) -> None:
    tool = sdk_tool("handoff", lambda: FunctionResult("Handing off.").add_action("transfer", "+15552000002"))
    llm = ScriptedLlm(["Hello", ToolCallRequested("c1", "handoff", "{}"), "Bye"])
    h = AiHarness(tmp_path, llm, [tool], {CALLER_HZ: "a human please"})
    h.dialer = LoopDialer()
    await h.run(
        {"main": ["answer", {"ai": {"prompt": {"text": "t"}}}, {"play": {"url": "say:not here"}}]},
        on_tick=h.speaker({60: tone(CALLER_HZ, 1000)}),
        ticks=300,
    )
    (dialed,) = [e for e in h.call.events.events if e["event"] == "connect_dialed"]
    assert dialed["to"] == "+15552000002"
    assert h.tts.spoken == []  # the old script did not resume after the `ai` verb


async def test_transfer_action_with_summarize_hands_the_summary_to_the_destination(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    async def agent(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response({"sections": {"main": [{"play": {"url": "say:sales here"}}, "hangup"]}})

    app = web.Application()
    app.router.add_post("/sales", agent)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    dest = f"http://127.0.0.1:{port}/sales"
    tool = sdk_tool(
        "handoff", lambda: FunctionResult("Handing off.").add_action("transfer", {"dest": dest, "summarize": True})
    )
    llm = ScriptedLlm(["Hello", ToolCallRequested("c1", "handoff", "{}"), "Bye", "Caller Ann wants sales."])
    h = AiHarness(tmp_path, llm, [tool], {CALLER_HZ: "a human please"})
    try:
        async with aiohttp.ClientSession() as http:
            await h.run(
                {"main": ["answer", {"ai": {"prompt": {"text": "t"}}}, {"play": {"url": "say:not here"}}]},
                http=http,
                on_tick=h.speaker({60: tone(CALLER_HZ, 1000)}),
                ticks=300,
            )
    finally:
        await runner.cleanup()
    (body,) = seen
    assert body["params"] == {"transfer_summary": "Caller Ann wants sales."}
    assert body["vars"]["transfer_summary"] == "Caller Ann wants sales."
    assert h.tts.spoken == ["sales here"]
    assert "a human please" in llm.requests[-1][-1]["content"]  # the summary saw the conversation


async def test_a_bad_document_is_logged_and_the_conversation_goes_on(tmp_path: Path) -> None:
    bad = {"version": "1.0.0", "sections": {"main": [{"no_such_verb": {}}]}}
    tool = sdk_tool("broken", lambda: FunctionResult("Trying.").execute_swml(json.dumps(bad), transfer=True))
    llm = ScriptedLlm(["Hello", ToolCallRequested("c1", "broken", "{}"), "That failed", "It is noon"])
    h = AiHarness(tmp_path, llm, [tool], {CALLER_HZ: "break it", ASK_HZ: "what time is it"})
    await h.run(
        {"main": ["answer", {"ai": {"prompt": {"text": "t"}}}, "hangup"]},
        on_tick=h.speaker({60: tone(CALLER_HZ, 1000), 260: tone(ASK_HZ, 1000)}),
        ticks=420,
    )
    assert "swml_error" in h.names()
    failures = [e for e in h.call.events.events if e["event"] == "ai_failure" and e["kind"] == "swml"]
    assert failures and "transfer refused" in failures[0]["error"]
    assert user_turns(llm) == ["break it", "what time is it"]  # the AI did not end


async def test_sidecar_swml_actions_run_on_the_calls_script(tmp_path: Path) -> None:
    # An ai_sidecar's actions go through the same path: record_call runs beside the script (here a
    # long sleep), and a transfer cancels the sleep and continues the call in the new document.
    h = AiHarness(tmp_path, ScriptedLlm([]), [], {})

    async def no_llm() -> Any:
        raise RuntimeError("not used")

    manager = SidecarManager(SidecarServices(llm=no_llm, blocking=InlineExecutor(), run_swml=h.scripts), EventBus())
    stops: list[str] = []
    control = SidecarControl(True, hangup=lambda reason: None, stop=stops.append, run_swml=manager.swml_for(h.call))
    moved = {"version": "1.0.0", "sections": {"main": [{"play": {"url": "say:transferred"}}, "hangup"]}}
    caller = tone(CALLER_HZ, 8000)

    def on_tick(n: int) -> None:
        h.send_inbound(caller[n * 160 : (n + 1) * 160])
        if n == 20:
            record = FunctionResult("Recording.").record_call(control_id="sidecar-rec", stereo=True)
            apply_actions(record.to_dict()["action"], control, {})
        if n == 120:
            apply_actions(FunctionResult("Moving.").execute_swml(moved, transfer=True).to_dict()["action"], control, {})

    await h.run(
        {"main": ["answer", {"sleep": {"duration": 600_000}}, {"play": {"url": "say:never"}}]},
        on_tick=on_tick,
        ticks=400,
    )
    (started,) = [e for e in h.call.events.events if e["event"] == "record_call_started"]
    assert started["control_id"] == "sidecar-rec"
    assert stops == ["transferred"]
    assert h.tts.spoken == ["transferred"]
    assert [e["source"] for e in h.call.events.events if e["event"] == "swml_transfer_requested"] == ["sidecar"]
    (stopped,) = [e for e in h.call.events.events if e["event"] == "record_call_stopped"]
    caller_side, _, rate = read_stereo(str(h.options.recordings_dir / stopped["file"]))
    assert tone_share(caller_side, rate, CALLER_HZ) > 0.5


async def test_tap_sip_refer_user_event_and_a_temporary_swml_transfer_run_inline(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]

    def many() -> FunctionResult:
        return (
            FunctionResult("Working on it.")
            .tap(f"rtp://127.0.0.1:{port}", control_id="tap-1")
            .sip_refer("sip:desk@example.com")
            .swml_user_event({"type": "consulting"})
            .swml_transfer("+15553000003", "Tell the caller welcome back", final=False)
        )

    stop = sdk_tool("bye", lambda: FunctionResult("Bye.").add_action("stop", True))
    llm = ScriptedLlm(
        [
            "Hello",
            ToolCallRequested("c1", "many", "{}"),
            "One moment",
            "Welcome back",  # the reply to swml_transfer()'s ai_response after the bridge
            ToolCallRequested("c2", "bye", "{}"),
            "Bye",
        ]
    )
    h = AiHarness(tmp_path, llm, [sdk_tool("many", many), stop], {CALLER_HZ: "do it", ASK_HZ: "goodbye"})
    dialer = h.dialer = LoopDialer()
    bridged: list[int] = []
    speaker = h.speaker({60: tone(CALLER_HZ, 1000), 400: tone(ASK_HZ, 1000)})

    def on_tick(n: int) -> None:
        speaker(n)
        leg = dialer.leg
        if leg is not None and not leg.is_over:
            bridged.append(n)
            if len(bridged) == 60:
                leg.remote_hung_up("expert done")
                leg.signaling_ended("BYE")

    await h.run(
        {
            "main": [
                "answer",
                {"ai": {"prompt": {"text": "t"}}},
                {"play": {"url": "say:${tap_result} ${sip_refer_result} ${sip_refer_response_code}"}},
                "hangup",
            ]
        },
        on_tick=on_tick,
        ticks=600,
    )
    packets = 0
    with contextlib.suppress(BlockingIOError):
        while listener.recv(2048):
            packets += 1
    listener.close()
    assert packets > 10  # the tap streamed the call while the conversation went on
    assert h.tts.spoken == ["success failed 501"]  # LoopDialer answers REFER with 501
    assert h.call.info["user_events"] == [{"type": "consulting"}]
    (dialed,) = [e for e in h.call.events.events if e["event"] == "connect_dialed"]
    assert dialed["to"] == "+15553000003"
    assert "Welcome back" in h.engines.tts.spoken  # type: ignore[attr-defined]
    (asked,) = [r for r in llm.requests if r[-1] == {"role": "system", "content": "Tell the caller welcome back"}]
    assert user_turns(llm) == ["do it", "goodbye"]


async def test_a_call_without_a_script_refuses_with_a_log_line(tmp_path: Path) -> None:
    h = AiHarness(tmp_path, ScriptedLlm([]), [], {})
    result = await h.scripts.run_inline(h.call, {"sections": {"main": [{"play": {"url": "say:x"}}]}})
    assert not result.ran and result.error == "no SWML script runs this call"
    assert h.scripts.transfer(h.call, {"sections": {"main": ["hangup"]}}) == "no SWML script runs this call"
    assert [e["verb"] for e in h.call.events.events if e["event"] == "verb_unsupported"] == ["SWML", "transfer"]


async def test_sidecar_transfer_takes_the_caller_out_of_a_bridge(tmp_path: Path) -> None:
    h = AiHarness(tmp_path, ScriptedLlm([]), [], {})
    dialer = h.dialer = LoopDialer()

    async def no_llm() -> Any:
        raise RuntimeError("not used")

    manager = SidecarManager(SidecarServices(llm=no_llm, blocking=InlineExecutor(), run_swml=h.scripts), EventBus())
    stops: list[str] = []
    control = SidecarControl(True, hangup=lambda reason: None, stop=stops.append, run_swml=manager.swml_for(h.call))
    moved = {"version": "1.0.0", "sections": {"main": [{"play": {"url": "say:transferred"}}, "hangup"]}}

    def on_tick(n: int) -> None:
        h.send_inbound(0)
        if n == 80:
            assert dialer.leg is not None and not dialer.leg.is_over  # bridged
            apply_actions(FunctionResult("Moving.").execute_swml(moved, transfer=True).to_dict()["action"], control, {})

    await h.run(
        {"main": ["answer", {"connect": {"to": "sip:agent@example.com"}}, {"play": {"url": "say:after connect"}}]},
        on_tick=on_tick,
        ticks=300,
    )
    assert dialer.leg is not None and dialer.leg.is_over  # the outbound leg did not outlive its bridge
    assert stops == ["transferred"]
    assert h.tts.spoken == ["transferred"]
