"""Verb handlers run on a `VerbContext` alone: no executor, the kernel's refusing services."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mediaserver.kernel.executor import SwmlExecutor
from mediaserver.kernel.services import DialerPort, KernelServices, NoSidecarRunner, SwmlOptions
from mediaserver.kernel.speech import LazyRecognizer, UnavailableRecognizer
from mediaserver.kernel.verbs import dial
from mediaserver.kernel.verbs.context import VerbContext
from mediaserver.pipeline.asr import Recognition
from mediaserver.swml.document import document_from_data
from mediaserver.swml.effects import Connect, SipRefer
from mediaserver.swml.interpreter import Interpreter
from tests.unit.sidecar.fakes import make_call


async def _no_play(*_: Any) -> bool:
    return True


def _context() -> VerbContext:
    return VerbContext(
        interp=Interpreter(document_from_data({"sections": {"main": []}})),
        play=_no_play,
        blocking=ThreadPoolExecutor(1),
        http=None,
        dialer=DialerPort(),  # nothing bound: refuses like NoDialer
        recognizer=UnavailableRecognizer(),
        sidecar_runner=NoSidecarRunner(),
        options=SwmlOptions(),
    )


async def test_connect_and_refer_without_outbound_sip_fail_through_the_refusing_dialer() -> None:
    call = make_call()
    ctx = _context()
    connected = await dial.connect(ctx, call, Connect(path="p", params={"to": "sip:a@b"}))
    referred = await dial.sip_refer(ctx, call, SipRefer(path="q", to_uri="sip:c@d"))
    assert connected.variables["connect_result"] == "failed"
    assert connected.variables["connect_failed_reason"] == "unsupported"
    assert referred.variables == {"sip_refer_result": "failed", "sip_refer_response_code": 0}
    unsupported = [e["verb"] for e in call.events.events if e["event"] == "verb_unsupported"]
    assert unsupported == ["connect", "sip_refer"]


async def test_the_executor_gives_handlers_its_services_and_live_scopes() -> None:
    interp = Interpreter(document_from_data({"sections": {"main": []}}))
    services = KernelServices(None, ThreadPoolExecutor(1))  # type: ignore[arg-type]
    ex = SwmlExecutor(interp, services)
    ctx = ex.verbs
    assert ctx.interp is interp and ctx.dialer is services.dialer and ctx.options is services.swml
    assert isinstance(ctx.recognizer, UnavailableRecognizer) and ctx.recognizer.unavailable
    assert ctx.play == ex.play and ctx.background == {}


async def test_a_lazy_recognizer_loads_its_engine_on_first_use() -> None:
    class Engine:
        sample_rate = 16000

        def transcribe(self, pcm: Any, *, prompt: str | None = None, hotwords: str | None = None) -> Recognition:
            return Recognition(text="yes", confidence=1.0)

    loads: list[int] = []

    async def provider() -> Engine:
        loads.append(1)
        return Engine()

    lazy = LazyRecognizer(provider)
    assert lazy.unavailable == "" and loads == []
    assert (await lazy.load()).transcribe(None).text == "yes" and loads == [1]
