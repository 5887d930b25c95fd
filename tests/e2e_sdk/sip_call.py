"""One SIP call from baresip through a real server process to an unmodified SDK example agent.

`SdkSipCall` puts the pieces of `test_sdk_examples_sip.py` together: the example agent in its
own process (`SdkAgent`), the scripted LLM (`ScriptedLlmServer`, its own loop in a thread, so
the blocking baresip waits never starve it), the server (`ServerProcess`) routed to the agent
by `test_sdk_sip_call.server_config` (plus what a test adds: a recordings folder, an outbound
proxy), and baresip as the caller whose microphone is a WAV of espeak-ng utterances separated
by silence (`speech_track`). The server's call id is the caller's SIP Call-ID; it is read from
the server's `call_started` event.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tests.e2e_sdk.agent import EXAMPLES, SdkAgent
from tests.e2e_sdk.test_sdk_sip_call import server_config
from tests.interop.conftest import BaresipFactory
from tests.interop.test_sip_baresip import wait_for_event
from tests.support.baresip import Baresip
from tests.support.llm_server import RecordedRequest, ScriptedLlmServer, Turn
from tests.support.server import ServerProcess
from tests.support.speech import read_wav, synthesize_espeak, to_mono, write_wav

T = TypeVar("T")
RATE = 8000  # PCMU: the caller's microphone is written at the codec's rate


def speech_track(tmp: Path, parts: Sequence[str | float], name: str = "caller.wav") -> Path:
    """A mono 8 kHz WAV: each string spoken by espeak-ng, each number that many seconds of silence."""
    pieces = []
    for index, part in enumerate(parts):
        if isinstance(part, str):
            wav = synthesize_espeak(part, tmp / f"utterance-{index}.wav", RATE)
            pieces.append(to_mono(read_wav(wav)[0]))
        else:
            pieces.append(np.zeros(int(part * RATE), dtype=np.float32))
    return write_wav(tmp / name, np.concatenate(pieces), RATE)


def rms_dbfs(samples: np.ndarray) -> float:
    level = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return float(20 * np.log10(max(level, 1e-9)))


def loud_seconds(samples: np.ndarray, rate: int, floor_dbfs: float = -45.0) -> float:
    """How many seconds of 20 ms frames are louder than `floor_dbfs` (speech, not line noise)."""
    frame = rate // 50
    frames = samples[: samples.size - samples.size % frame].reshape(-1, frame)
    return sum(rms_dbfs(f) > floor_dbfs for f in frames) * 0.02


def wait_until(what: str, probe: Callable[[], T | None], timeout: float, explain: Callable[[], str]) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{explain()}")
        time.sleep(0.1)


class SdkSipCall:
    def __init__(self, agent: SdkAgent, llm: ScriptedLlmServer, server: ServerProcess, caller: Baresip) -> None:
        self.agent = agent
        self.llm = llm
        self.server = server
        self.caller = caller
        self.call_id = ""

    def dial(self, user: str = "agent") -> str:
        before = len(self.server.lines)
        self.caller.call(f"sip:{user}@127.0.0.1:{self.server.sip_port}")
        self.caller.wait_for("established", timeout=30)
        self.call_id = wait_for_event(self.server, "call_started", since=before, timeout=15)
        return self.call_id

    # -- what happened --------------------------------------------------------------------
    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.server.records(self.call_id) if r.get("event") == name]

    def log_lines(self, needle: str) -> list[str]:
        return [str(r.get("msg", "")) for r in self.server.records() if needle in str(r.get("msg", ""))]

    def explain(self) -> str:
        return (
            "server:\n"
            + "\n".join(self.server.lines[-40:])
            + "\nagent:\n"
            + "\n".join(self.agent.lines[-20:])
            + f"\nLLM requests: {len(self.llm.requests)}"
        )

    def wait_event(self, name: str, timeout: float = 40.0, count: int = 1) -> list[dict[str, Any]]:
        return wait_until(
            f"{count} {name} event(s)",
            lambda: found if len(found := self.events(name)) >= count else None,
            timeout,
            self.explain,
        )

    def wait_requests(self, count: int, timeout: float = 40.0) -> list[RecordedRequest]:
        return wait_until(
            f"{count} LLM requests kept",  # a preemptive guess the next request replaced is not one
            lambda: kept if len(kept := self.llm.kept_requests) >= count else None,
            timeout,
            self.explain,
        )

    def wait_agent_line(self, needle: str, timeout: float = 30.0, count: int = 1) -> list[str]:
        return wait_until(
            f"{count} agent line(s) with {needle!r}",
            lambda: found if len(found := [x for x in list(self.agent.lines) if needle in x]) >= count else None,
            timeout,
            self.explain,
        )

    def wait_quiet(self, quiet_s: float = 1.5, timeout: float = 40.0) -> None:
        """Until the agent has started speaking after now, stopped, and been silent for `quiet_s`."""
        since = time.time()

        def quiet() -> bool:
            audio = [
                r
                for r in self.server.records(self.call_id)
                if r.get("event") in ("audio_started", "audio_stopped") and r["ts"] >= since
            ]
            started = any(r["event"] == "audio_started" for r in audio)
            return started and audio[-1]["event"] == "audio_stopped" and time.time() - audio[-1]["ts"] > quiet_s

        wait_until("the agent to speak and finish", quiet, timeout, self.explain)

    def hangup(self) -> None:
        if self.caller.established and not self.caller.closed:
            self.caller.hangup()
        self.caller.wait_for("closed", timeout=10)
        self.server.wait_idle(20)


_PROBE = """
import json, runpy, sys
from signalwire import AgentBase
path, tool, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
found = runpy.run_path(path, run_name="sdk_probe").values()
agent = next(v for v in found if isinstance(v, type) and issubclass(v, AgentBase) and v.__module__ == "sdk_probe")()
reply = agent.on_function_call(tool, args, {"call_id": "sdk-probe", "global_data": {}})
print("REPLY " + json.dumps(reply if isinstance(reply, dict) else reply.to_dict()))
"""


def sdk_tool_reply(example: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """What the example's tool answers when the SDK itself calls it (`on_function_call`, in a
    process of its own, no HTTP, no server): tells an SDK failure from a server one."""
    path = EXAMPLES / example
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), tool, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=path.parent,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("REPLY ")]
    assert lines, out.stdout[-2000:] + out.stderr[-2000:]
    return dict(json.loads(lines[-1].removeprefix("REPLY ")))


def heard_by(peer: Baresip) -> Path:
    """The WAV of what `peer` received in its last call (complete once that call closed)."""
    path = peer.recording_path
    assert path is not None and path.exists(), peer.tail()
    return path


def tool_messages(request: RecordedRequest) -> dict[str, str]:
    """tool_call_id -> content of the tool results a request carries."""
    return {str(m.get("tool_call_id")): str(m.get("content")) for m in request.messages if m.get("role") == "tool"}


def tool_call_ids(request: RecordedRequest) -> set[str]:
    """Ids of the assistant tool calls a request carries."""
    return {str(c.get("id")) for m in request.messages for c in (m.get("tool_calls") or [])}


class NumberUa(Baresip):
    """A baresip UA whose address-of-record user is a phone number ("+15551237777"): it answers
    what the server dials for `connect` to that number through `[sip] outbound_proxy` (baresip
    answers 404 to a Request-URI user that is not its account's)."""

    def __init__(self, name: str, number: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.number = number

    @property
    def aor(self) -> str:
        return f"sip:{self.number}@127.0.0.1"


def number_ua(factory: BaresipFactory, name: str, number: str, **kwargs: Any) -> NumberUa:
    """A started `NumberUa`, auto-answering, stopped with the factory's other UAs."""
    peer = NumberUa(name, number, workdir=factory.base / f"baresip-{len(factory.instances)}-{name}", **kwargs)
    factory.instances.append(peer)
    peer.start()
    return peer


@contextlib.contextmanager
def baresip_peers(tmp: Path) -> Iterator[BaresipFactory]:
    """`tests/interop`'s factory of baresip UAs (stopped at the end), for a fixture outside it."""
    factory = BaresipFactory(tmp)
    try:
        yield factory
    finally:
        factory.stop_all()


@contextlib.contextmanager
def sdk_sip_call(
    tmp: Path,
    baresips: BaresipFactory,
    agent: SdkAgent,
    script: list[Turn],
    mic: Path,
    *,
    rtp_base: int,
    extra_config: str = "",
    mic_tail_s: float = 60.0,
) -> Iterator[SdkSipCall]:
    """The agent and the LLM started, the server routed to both, a caller dialled in and answered.

    The caller hangs up by itself `mic_tail_s` after its microphone WAV has been played."""
    with agent, ScriptedLlmServer(script).running() as llm:
        config = server_config(tmp, agent, llm.base_url)
        config.write_text(config.read_text() + extra_config)
        server = ServerProcess(config=config, rtp_base=rtp_base)
        try:
            server.start()
            caller = baresips("caller", codec="PCMU", mic=mic, mic_lead_s=0.0, mic_tail_s=mic_tail_s)
            call = SdkSipCall(agent, llm, server, caller)
            call.dial()
            yield call
        finally:
            server.stop()
            (tmp / "server.log").write_text("\n".join(server.lines))  # for a failure's post-mortem
            (tmp / "agent.log").write_text("\n".join(agent.lines))
