"""The ai_sidecar verb through the SWML seam: builder -> AiSidecar effect -> executor handler -> runner."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mediaserver.kernel.executor import HANDLERS
from mediaserver.kernel.services import NoSidecarRunner
from mediaserver.kernel.verbs.sidecar import ai_sidecar
from mediaserver.swml.document import load_document
from mediaserver.swml.effects import AiSidecar
from mediaserver.swml.interpreter import Interpreter
from tests.unit.sidecar.fakes import make_call

DOC = """
sections:
  main:
    - ai_sidecar:
        prompt: "Coach."
        lang: en-US
        params: {idle_timeout_ms: 300}
    - hangup: {}
"""


def test_the_verb_builds_an_ai_sidecar_effect_with_the_body_as_written() -> None:
    effect = Interpreter(load_document(DOC, source="t.yaml")).start()
    assert isinstance(effect, AiSidecar)
    assert effect.params == {"prompt": "Coach.", "lang": "en-US", "params": {"idle_timeout_ms": 300}}
    assert effect.path.startswith("sections.main[0]")
    assert HANDLERS[AiSidecar] is ai_sidecar


async def test_the_handler_calls_the_runner_and_logs_a_refusal() -> None:
    seen: list[tuple[Any, Any]] = []

    async def runner(call: Any, params: Any, variables: Any) -> str:
        seen.append((params, variables))
        return "-ERR: lang is required"

    call = make_call()
    ex = SimpleNamespace(sidecar_runner=runner, interp=SimpleNamespace(variables={"x": 1}))
    assert await ai_sidecar(ex, call, AiSidecar(path="p", params={"prompt": "x"})) is None
    assert seen == [({"prompt": "x"}, {"x": 1})]
    refused = [e for e in call.events.events if e["event"] == "ai_sidecar_refused"]
    assert refused[0]["reply"] == "-ERR: lang is required"
    bare = SimpleNamespace(sidecar_runner=NoSidecarRunner(), interp=SimpleNamespace(variables={}))
    await ai_sidecar(bare, call, AiSidecar(path="p", params={}))
    assert call.events.events[-1]["event"] == "verb_unsupported"
