"""Seams between the kernel and the engines and front ends that plug into it, and the
`KernelServices` the kernel is built with.

The SWML executor calls an `AiRunner` for the `ai` verb, a `SidecarRunner` for `ai_sidecar`
and a `Dialer` for `connect` and `sip_refer`; the app wires concrete implementations in. They
are Protocols so that scenario tests can pass fakes and so that the AI loop and the SIP stack
can grow independently of the executor.

Theory of operation: the kernel gets every service once, at construction, in one frozen
`KernelServices` (DESIGN §8): nothing is assigned onto the kernel afterwards and nothing probes
for a service with `getattr` or `is None`. A service the server does not have is a refusing
default that says so on the call: `NoAiRunner` logs `verb_unsupported` and answers
`ai_result = failed`; `NoSidecarRunner` answers `SIDECAR_UNAVAILABLE` (the verb logs
`verb_unsupported`); `NoDialer` logs `verb_unsupported` and answers "not answered" / status 0;
`NoSwmlRunner` (an agent built without the kernel's `scripts`) logs `verb_unsupported` and
refuses SWAIG SWML actions.

One service is genuinely created later: the SIP front end's dialer needs the kernel (its legs
are kernel calls, ticked by the kernel's ticker), and the kernel needs a dialer for its
executors. The cycle is broken by `DialerPort`, a `Dialer` the kernel holds from construction
that forwards to the dialer bound into it, exactly once, by the front end (`Kernel.dialer =`
is that one setter); until then, or on a server without SIP, it refuses like `NoDialer`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mediaserver.clock import Clock, MonotonicClock
from mediaserver.events import VerbUnsupported
from mediaserver.kernel.agent import AgentRegistry
from mediaserver.kernel.eventbus import EventBus
from mediaserver.kernel.inline import InlineResult, ScriptRegistry
from mediaserver.kernel.speech import PromptRecognizer, SpeechSynthesizer, UnavailableRecognizer
from mediaserver.kernel.url_policy import UrlPolicy
from mediaserver.swml.effects import Ai, AiFinished

if TYPE_CHECKING:
    import aiohttp

    from mediaserver.kernel.call import Call

FETCH_TIMEOUT_S = 10.0
DEFAULT_APOLOGY = "We are sorry, this call cannot be completed right now. Goodbye."
SIDECAR_UNAVAILABLE = "-ERR: no sidecar engine configured"


@dataclass
class SwmlOptions:
    """The [swml] settings the executor needs (the app builds it from config)."""

    fetch_timeout_s: float = FETCH_TIMEOUT_S
    apology: str = DEFAULT_APOLOGY
    recordings_dir: Path = field(default_factory=lambda: Path("recordings"))
    envs: dict[str, Any] = field(default_factory=dict)
    expression_timeout_ms: int = 100
    signing_key: str = ""  # [swaig] signing_key: SWML fetches are signed as SDK agents check (kernel/fetch.py)
    # [swml] allowed_hosts: the hosts SWML fetches and `request` may reach; the default allows all
    url_policy: UrlPolicy = field(default_factory=UrlPolicy)

    @classmethod
    def from_settings(cls, swml: Any) -> SwmlOptions:
        """From `settings.SwmlSettings` (duck-typed: the kernel does not import settings' types)."""
        return cls(
            fetch_timeout_s=swml.fetch_timeout_s,
            apology=swml.apology,
            recordings_dir=Path(swml.recordings_dir),
            expression_timeout_ms=swml.expression_timeout_ms,
            envs=dict(swml.envs),
            url_policy=UrlPolicy.from_entries(getattr(swml, "allowed_hosts", ())),
        )


class AiRunner(Protocol):
    async def __call__(self, call: Call, effect: Ai, variables: Mapping[str, Any]) -> AiFinished:
        """Run the voice agent on the call until it ends (hangup, stop action, transfer…)."""
        ...


class SidecarRunner(Protocol):
    async def __call__(self, call: Call, params: Any, variables: Mapping[str, Any]) -> str:
        """Attach an `ai_sidecar` to the call and return at once: "+OK started" or "-ERR: …"."""
        ...


@dataclass
class DialResult:
    answered: bool
    status: int  # final SIP status (200 when answered, 486 busy, 408 timeout, 487 cancelled…)
    reason: str
    leg: Call | None = None  # the answered outbound leg, a Call of its own
    variables: dict[str, Any] = field(default_factory=dict)


class Dialer(Protocol):
    async def dial(
        self,
        origin: Call,
        to: str,
        *,
        from_: str | None = None,
        timeout_s: float = 60.0,
        headers: Mapping[str, str] | None = None,
        codecs: list[str] | None = None,
    ) -> DialResult:
        """Place an outbound leg for `origin` (SWML connect); the leg is not bridged yet."""
        ...

    async def bridge(self, a: Call, b: Call) -> str:
        """Relay media both ways (transcoding if needed) until one side hangs up; returns its call_id."""
        ...

    async def refer(self, call: Call, to_uri: str) -> int:
        """Blind transfer by SIP REFER; returns the final status reported by NOTIFY (or the REFER's)."""
        ...


class SwmlRunner(Protocol):
    """SWML an agent hands the call's script (SWAIG `SWML`/`transfer`; kernel/inline.py)."""

    def transfer(self, call: Call, document: Mapping[str, Any], *, source: str = "ai") -> str:
        """Continue the call's script in `document` once the agent's effect returns; "" or why not."""
        ...

    async def run_inline(self, call: Call, document: Mapping[str, Any], *, source: str = "ai") -> InlineResult:
        """Run `document` on the live call now, then come back to the agent."""
        ...


# ---- refusing defaults ----------------------------------------------------------------------


class NoAiRunner:
    """The `ai` verb on a server without an AI engine: logged on the call, `ai_result = failed`."""

    async def __call__(self, call: Call, effect: Ai, variables: Mapping[str, Any]) -> AiFinished:
        call.events.emit(VerbUnsupported(verb=effect.verb, path=effect.path, reason="no AI engine configured"))
        return AiFinished(result="failed")


class NoSidecarRunner:
    """`ai_sidecar` on a server without the sidecar: answers `SIDECAR_UNAVAILABLE`."""

    async def __call__(self, call: Call, params: Any, variables: Mapping[str, Any]) -> str:
        return SIDECAR_UNAVAILABLE


class NoDialer:
    """No outbound SIP: `connect` and `sip_refer` are logged as unsupported and fail."""

    async def dial(
        self,
        origin: Call,
        to: str,
        *,
        from_: str | None = None,
        timeout_s: float = 60.0,
        headers: Mapping[str, str] | None = None,
        codecs: list[str] | None = None,
    ) -> DialResult:
        origin.events.emit(VerbUnsupported(verb="connect", to=to, reason="no dialer (outbound SIP) configured"))
        return DialResult(answered=False, status=0, reason="unsupported")

    async def bridge(self, a: Call, b: Call) -> str:
        raise RuntimeError("no dialer configured: there is no leg to bridge")  # dial never answers

    async def refer(self, call: Call, to_uri: str) -> int:
        call.events.emit(VerbUnsupported(verb="sip_refer", to=to_uri, reason="no dialer (SIP REFER) configured"))
        return 0


class NoSwmlRunner:
    """An agent built without the kernel's scripts (embedders, tests): SWML actions are refused."""

    def transfer(self, call: Call, document: Mapping[str, Any], *, source: str = "ai") -> str:
        call.events.emit(VerbUnsupported(verb="transfer", reason="no SWML runner wired to this agent"))
        return "no SWML runner"

    async def run_inline(self, call: Call, document: Mapping[str, Any], *, source: str = "ai") -> InlineResult:
        call.events.emit(VerbUnsupported(verb="SWML", reason="no SWML runner wired to this agent"))
        return InlineResult(ran=False, error="no SWML runner")


class DialerPort:
    """The kernel's `Dialer`: forwards to the one dialer bound into it (see the module doc).

    `observe` wraps the bound dialer once, at `bind` (the app passes the sidecar's
    `ObservedDialer`, which reports bridges); unbound, the port refuses like `NoDialer`.
    """

    def __init__(self, dialer: Dialer | None = None, *, observe: Callable[[Dialer], Dialer] | None = None) -> None:
        self._observe = observe
        self._dialer: Dialer = NoDialer()
        self.bound = False
        if dialer is not None:
            self.bind(dialer)

    def bind(self, dialer: Dialer) -> None:
        if self.bound:
            raise RuntimeError("a dialer is already bound to this kernel")
        self._dialer = self._observe(dialer) if self._observe is not None else dialer
        self.bound = True

    async def dial(
        self,
        origin: Call,
        to: str,
        *,
        from_: str | None = None,
        timeout_s: float = 60.0,
        headers: Mapping[str, str] | None = None,
        codecs: list[str] | None = None,
    ) -> DialResult:
        return await self._dialer.dial(origin, to, from_=from_, timeout_s=timeout_s, headers=headers, codecs=codecs)

    async def bridge(self, a: Call, b: Call) -> str:
        return await self._dialer.bridge(a, b)

    async def refer(self, call: Call, to_uri: str) -> int:
        return await self._dialer.refer(call, to_uri)


# ---- what the kernel is built with ----------------------------------------------------------


@dataclass(frozen=True)
class KernelServices:
    """Everything the kernel and its executors use, given once at construction.

    `synthesizer` and `blocking` are required (every call may speak); the rest default to
    refusing or empty services, so `KernelServices(synthesizer, blocking)` is a working kernel
    without HTTP, AI, sidecar or outbound SIP. `http` stays optional: an aiohttp session belongs
    to a running loop and to whoever closes it (the app); None = the `request` verb and SWML
    fetches fail with "no HTTP client configured" (a refusing stand-in would have to mimic
    aiohttp's whole request API for that one sentence). `prompt_recognizer` defaults to
    `UnavailableRecognizer`: speech prompts end `no_input` with a log line (kernel/verbs/prompt.py).
    """

    synthesizer: SpeechSynthesizer
    blocking: Executor
    http: aiohttp.ClientSession | None = None
    swml: SwmlOptions = field(default_factory=SwmlOptions)
    ai_runner: AiRunner = field(default_factory=NoAiRunner)
    sidecar_runner: SidecarRunner = field(default_factory=NoSidecarRunner)
    prompt_recognizer: PromptRecognizer = field(default_factory=UnavailableRecognizer)
    dialer: DialerPort = field(default_factory=DialerPort)
    events: EventBus = field(default_factory=EventBus)
    agents: AgentRegistry = field(default_factory=AgentRegistry)
    # The running call scripts, for agents' SWML actions (kernel/inline.py); the app hands the
    # same registry to the AI runner and the sidecar.
    scripts: ScriptRegistry = field(default_factory=ScriptRegistry)
    clock: Clock = field(default_factory=MonotonicClock)
    call_log_dir: str = ""
    cname: str = "mediaserver"
