"""End to end: call_flow_and_actions_demo.py's `start_recording` tool records the call.

The unmodified SDK example runs as its own process; its whole SWML (ring, answer, welcome, `ai`,
hangup) is fetched for our call id and run by the real SWML executor on a ticked call; the `ai`
verb's tools go to the agent over HTTP through `SwaigToolRunner` (as the app wires it), and a
scripted LLM calls `start_recording`. The agent answers with FunctionResult.record_call(): a
`SWML` action with transfer false, which must start a stereo WAV recording on the live call
while the conversation goes on, so the file holds the caller and the agent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.agents.ai.runner import SessionRunner
from mediaserver.pipeline.llm import ToolCallRequested
from mediaserver.swaig.gateway import make_tool_runner
from mediaserver.swaig.prompt import render_prompt
from tests.e2e_sdk.agent import SdkAgent
from tests.scenario.ai_fakes import ScriptedLlm, tone
from tests.scenario.test_ai_swml_actions import ASK_HZ, CALLER_HZ, AiHarness, user_turns
from tests.scenario.test_media_taps import read_stereo, tone_share

pytest.importorskip("signalwire")


async def test_start_recording_leaves_a_wav_with_both_directions(tmp_path: Path) -> None:
    llm = ScriptedLlm(
        ["Hello", ToolCallRequested("c1", "start_recording", "{}"), "Recording has started", "It is noon"]
    )
    h = AiHarness(tmp_path, llm, [], {CALLER_HZ: "please record the call", ASK_HZ: "what time is it"})
    h.ai_runner = SessionRunner(
        h.engines, tool_factory=make_tool_runner, render_prompt=render_prompt, scripts=h.scripts
    )
    with SdkAgent("call_flow_and_actions_demo.py", "/call-flow-demo") as agent:
        swml = agent.fetch_swml(h.call.call_id)
        await h.run(
            swml["sections"],
            on_tick=h.speaker({60: tone(CALLER_HZ, 1000), 260: tone(ASK_HZ, 1000)}),
            ticks=420,
        )
        assert any("start_recording" in line for line in agent.lines)
    (started,) = [e for e in h.call.events.events if e["event"] == "record_call_started"]
    assert started["control_id"] == "demo-recording"
    assert user_turns(llm) == ["please record the call", "what time is it"]  # the same conversation went on
    (stopped,) = [e for e in h.call.events.events if e["event"] == "record_call_stopped"]
    caller_side, our_side, rate = read_stereo(str(h.options.recordings_dir / stopped["file"]))
    assert tone_share(caller_side, rate, ASK_HZ) > 0.3  # the caller's question after the action
    assert tone_share(our_side, rate, 300) > 0.3  # the agent's answer (WordTts speaks 300 Hz)
