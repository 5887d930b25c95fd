"""Request signing checked by the SDK's own verifier: webhooks, hooks, post-prompt, SWML fetch.

The local agent runs the SDK's framework-free check (`webhook_middleware.validate`, what its
FastAPI dependency calls for POST /, /swaig and /post_prompt) on the URL it was POSTed to and
the raw body, and answers 403 as the SDK does when it fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mediaserver.kernel.fetch import FetchError, call_body, fetch_swml, sample_call
from mediaserver.pipeline.llm import ToolCallRequested
from mediaserver.settings import load_settings
from tests.scenario.ai_fakes import ScriptedLlm
from tests.scenario.swaig_harness import SwaigCall
from tests.unit.swaig.datamap_gen import free_port

middleware = pytest.importorskip("signalwire.core.security.webhook_middleware")

DOC = {"version": "1.0.0", "sections": {"main": [{"hangup": {}}]}}


class SigningAgent:
    """Checks every POST like an SDK agent with `signing_key`; records (path, accepted, body)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.seen: list[tuple[str, bool, Any]] = []
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://agent:secret@127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = (await request.read()).decode("utf-8")
        rejected = middleware.validate(request.method, str(request.url), request.headers, raw, signing_key=self.key)
        self.seen.append((request.path, rejected is None, await request.json()))
        if rejected is not None:
            return web.Response(status=403)
        if request.path == "/start":  # a routing callback: the SDK answers 307, the body is POSTed again
            raise web.HTTPTemporaryRedirect("/agent/?tenant=a+b")
        if request.path == "/agent/":
            return web.json_response(DOC)
        return web.json_response({"response": "signed and sealed"})

    @asynccontextmanager
    async def running(self) -> AsyncIterator[SigningAgent]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        self.port = free_port()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await runner.cleanup()


def _ai(agent: SigningAgent) -> dict[str, Any]:
    return {
        "prompt": {"text": "t"},
        "post_prompt": {"text": "Summarize."},
        "post_prompt_url": agent.url("/post_prompt/?__token=abc%3D%3D"),
        "SWAIG": {
            "functions": [
                {"function": "f", "description": "d", "web_hook_url": agent.url("/swaig/?__token=a/b+c=")},
                {"function": "hangup_hook", "description": "Internal", "web_hook_url": agent.url("/swaig/")},
            ]
        },
    }


async def _run(agent: SigningAgent, key: str) -> SwaigCall:
    s = SwaigCall(_ai(agent), llm=ScriptedLlm([ToolCallRequested("c1", "f", "{}"), "ok", "summary"]), signing_key=key)
    await s.start()
    await s.until(lambda: any(m.get("role") == "tool" for m in s.session.history))
    await s.close()
    return s


@pytest.mark.parametrize("agent_key, ours, accepted", [("sek", "sek", True), ("sek", "wrong", False)])
async def test_webhooks_hooks_and_post_prompt_are_signed_as_the_sdk_verifies(
    agent_key: str, ours: str, accepted: bool
) -> None:
    async with SigningAgent(agent_key).running() as agent:
        s = await _run(agent, ours)
    assert [(path, ok) for path, ok, _ in agent.seen] == [
        ("/swaig/", accepted),  # the function
        ("/swaig/", accepted),  # hangup_hook
        ("/post_prompt/", accepted),
    ]
    tool = next(m for m in s.session.history if m.get("role") == "tool")
    assert ("signed and sealed" in tool["content"]) is accepted  # a 403 becomes a spoken recovery


async def test_unsigned_requests_are_refused_by_an_agent_with_a_key() -> None:
    async with SigningAgent("sek").running() as agent:
        await _run(agent, "")
    assert [ok for _, ok, _ in agent.seen] == [False, False, False]


async def test_swml_fetch_is_signed_redirect_included() -> None:
    async with SigningAgent("sek").running() as agent, aiohttp.ClientSession() as http:
        body = call_body(sample_call("call-1"))
        document = await fetch_swml(http, agent.url("/start?x=1"), body, 5.0, signing_key="sek")
        assert [(path, ok) for path, ok, _ in agent.seen] == [("/start", True), ("/agent/", True)]
        assert agent.seen[1][2]["call"]["call_id"] == "call-1"  # the same body POSTed again
        assert document.sections["main"]
        with pytest.raises(FetchError, match="403"):
            await fetch_swml(http, agent.url("/start"), body, 5.0)


def test_the_signing_key_is_a_setting_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNALWIRE_SIGNING_KEY", raising=False)
    assert load_settings(environ={}).swaig.key == ""
    config = tmp_path / "server.toml"
    config.write_text('[swaig]\nsigning_key = "from-file"\n')
    assert load_settings(config, environ={}).swaig.key == "from-file"
    monkeypatch.setenv("SIGNALWIRE_SIGNING_KEY", "from-env")
    assert load_settings(config, environ={}).swaig.key == "from-env"


def test_the_app_hands_the_key_to_the_ai_verb_and_the_sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mediaserver.app import MediaServer
    from mediaserver.kernel.agent import AgentRegistry
    from mediaserver.kernel.inline import ScriptRegistry
    from tests.unit.sidecar.fakes import make_call

    monkeypatch.delenv("SIGNALWIRE_SIGNING_KEY", raising=False)
    config = tmp_path / "server.toml"
    config.write_text('[swaig]\nsigning_key = "app-key"\n')
    server = MediaServer(load_settings(config, environ={}), tts=object())  # type: ignore[arg-type]
    try:
        factory = server._ai_runner(None, AgentRegistry(), ScriptRegistry()).tool_factory  # type: ignore[arg-type]
        assert factory is not None
        assert factory(make_call(), None, {"prompt": {"text": "t"}}).signing_key == "app-key"  # type: ignore[attr-defined]
        assert server._sidecar_manager(None, ScriptRegistry()).services.signing_key == "app-key"  # type: ignore[arg-type]
    finally:
        server.blocking.shutdown()
