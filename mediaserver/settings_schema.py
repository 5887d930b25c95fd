"""The settings schema: every config key, its type, range and check (mediaserver/fields.py validates
a TOML document against it and names the key of every bad value). settings.py builds `Settings`
from a document that passed; this module only says what a good document looks like."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediaserver.fields import Field, Kind, Table
from mediaserver.kernel.url_policy import entry_problem
from mediaserver.pipeline.engines import engine_names
from mscodecs import SUPPORTED

KNOWN_CODECS = tuple(SUPPORTED)  # the one codec table (mscodecs.registry) decides


@dataclass(frozen=True)
class SipSecuritySettings:
    realm: str = "mediaserver"
    challenge: int = 401
    nonce_lifetime_s: int = 300
    rate_limit_per_s: int = 20
    rate_limit_burst: int = 40
    trunks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> IPs/networks
    users: Mapping[str, str] = field(default_factory=dict)  # username -> password


@dataclass(frozen=True)
class SipTlsSettings:
    port: int = 0
    cert: str = ""
    key: str = ""


@dataclass(frozen=True)
class SipRegisterSettings:
    registrar: str = ""
    user: str = ""
    password: str = ""
    expires: int = 300


@dataclass(frozen=True)
class SipSettings:
    host: str
    port: int
    advertised_host: str
    user_agent: str
    unknown_user: str = "default"
    route_header: str = ""
    max_body_bytes: int = 32768
    outbound_proxy: str = ""  # host[:port] that calls to phone numbers are sent to
    media_encryption: str = "off"  # SDES-SRTP: off, optional, required
    security: SipSecuritySettings = field(default_factory=SipSecuritySettings)
    tls: SipTlsSettings = field(default_factory=SipTlsSettings)
    register: SipRegisterSettings = field(default_factory=SipRegisterSettings)

    @property
    def contact_host(self) -> str:
        if self.advertised_host:
            return self.advertised_host
        return "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host


@dataclass(frozen=True)
class HttpSettings:
    host: str
    port: int


@dataclass(frozen=True)
class RtpSettings:
    port_min: int
    port_max: int
    jitter_depth_frames: int
    codecs: tuple[str, ...]
    timeout_s: float = 60.0  # no RTP/RTCP from the peer this long ends the call (0: never)
    hold_timeout_s: float = 0.0  # the same while the peer holds the call (0: never)
    jitter_max_depth_frames: int = 10  # late packets raise the depth up to this


@dataclass(frozen=True)
class TtsSettings:
    engine: str
    model: str
    threads: int
    # [tts.voices]: voice name (as ai.languages[].voice names it) -> Piper .onnx file (agents/ai/languages.py)
    voices: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Routes:
    default: Path | str  # a file, or an http(s) URL (str) whose SWML is fetched per call
    users: Mapping[str, Path | str] = field(default_factory=dict)

    def document_for(self, user: str) -> Path | str:
        return self.users.get(user, self.default)


@dataclass(frozen=True)
class SwmlSettings:
    """[swml]: fetching documents from URLs, the apology on failure, recordings, expressions."""

    fetch_timeout_s: float = 10.0
    apology: str = "We are sorry, this call cannot be completed right now. Goodbye."
    recordings_dir: Path = Path("recordings")
    expression_timeout_ms: int = 100
    envs: Mapping[str, str] = field(default_factory=dict)  # SWML `envs.*` (and the fetch body's envs)
    # ai params.conversation_id + save_conversation: one JSON file per conversation (agents/ai/conversations.py)
    conversations_dir: Path = Path("conversations")
    # The hosts SWML fetches and `request` URLs may reach (kernel/url_policy.py); empty = every host
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoggingSettings:
    level: str
    call_log_dir: str


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str = ""
    credential: str = ""


@dataclass(frozen=True)
class WebRtcSettings:
    enabled: bool
    host_addresses: tuple[str, ...]  # empty = every non-loopback interface
    ice_servers: tuple[IceServer, ...]  # empty = no STUN/TURN contact at all
    ice_transport_policy: str  # "all" or "relay"


@dataclass(frozen=True)
class AiSettings:
    """The `ai` verb's engines: an OpenAI-compatible LLM endpoint and the ASR model; each engine
    by its name in `mediaserver.pipeline.engines.ENGINES` ("none": no end-of-turn detector)."""

    enabled: bool = True
    base_url: str = "http://127.0.0.1:11434/v1"
    api_key_env: str = "OPENAI_API_KEY"
    model: str = "gpt-4o-mini"
    timeout_s: float = 20.0
    first_token_timeout_s: float = 8.0
    asr_model: str = ""
    asr_window_s: float = 10.0
    asr_threads: int = 1
    asr_workers: int = 1  # transcriptions at once (agents/ai/asr_slots.py)
    far_end_delay_ms: int = 40
    asr_engine: str = "whisper"
    llm_engine: str = "openai"
    end_of_turn_engine: str = "smart_turn"

    @property
    def api_key(self) -> str:
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""


@dataclass(frozen=True)
class ApiSettings:
    """[api]: the live call control API (/api/...); empty token = the API answers 403 to everyone."""

    token: str = ""
    token_env: str = "MS_API_TOKEN"

    @property
    def bearer(self) -> str:
        return (os.environ.get(self.token_env, "") if self.token_env else "") or self.token


@dataclass(frozen=True)
class SwaigSettings:
    """[swaig]: how the server talks to SDK agents (SWAIG webhooks, post-prompt, SWML fetches).

    An SDK agent built with a signing key refuses unsigned POSTs (403); with the same key here
    every webhook, hook, post-prompt and SWML fetch is signed as the SDK checks it.
    """

    signing_key: str = ""
    signing_key_env: str = "SIGNALWIRE_SIGNING_KEY"

    @property
    def key(self) -> str:
        """The key in use: the environment variable when set, else `signing_key` ("" = no signing)."""
        return (os.environ.get(self.signing_key_env, "") if self.signing_key_env else "") or self.signing_key


@dataclass(frozen=True)
class PerformanceSettings:
    """[performance]: how inference shares the 2 cores with the media clock (issue 16)."""

    inference_nice: int = 19  # inference threads run this much below the event loop (0 = same priority)
    inference_sched_idle: bool = True  # inference threads on SCHED_IDLE: a waking loop thread preempts them at once
    loop_realtime_priority: int = 10  # 1-99: the event-loop thread on SCHED_FIFO (CAP_SYS_NICE or rtprio); 0 = normal
    gil_switch_ms: float = 1.0  # the GIL switch interval: how long the loop may wait on a worker's Python
    inference_process: bool = False  # ASR, TTS and end-of-turn models in worker processes (engine_process.py)
    partial_asr_per_s: float = 2.5  # partial ASR passes a second, all calls together (0 = no cap)
    tts_cache_mb: float = 16.0  # synthesized short phrases kept (fillers, greetings); 0 = no cache
    tts_cache_max_chars: int = 200  # longer texts are never cached


@dataclass(frozen=True)
class TelemetrySettings:
    """[telemetry]: OpenTelemetry traces per AI turn (mediaserver/telemetry.py); "" = none."""

    otlp_endpoint: str = ""  # an OTLP HTTP collector: http://host:4318 (or its full /v1/traces URL)


@dataclass(frozen=True)
class AdmissionSettings:
    """[admission]: how many AI conversations and calls this process takes on (kernel/admission.py)."""

    ai_capacity: int = 12  # issue 16's goal for the 2-core box, until the capacity benchmark measures it; 0 = no limit
    max_calls: int = 300  # the media plane's target per core (one process = one core); 0 = no limit
    retry_after_s: int = 30  # the Retry-After of a 503 over capacity
    overflow: Path | str | None = None  # SWML for an ai verb over capacity (file or URL); None = hang up


@dataclass(frozen=True)
class Settings:
    sip: SipSettings
    http: HttpSettings
    rtp: RtpSettings
    tts: TtsSettings
    routes: Routes
    logging: LoggingSettings
    source: str
    webrtc: WebRtcSettings = field(default_factory=lambda: WebRtcSettings(True, (), (), "all"))
    ai: AiSettings = field(default_factory=lambda: AiSettings())
    swml: SwmlSettings = field(default_factory=SwmlSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    swaig: SwaigSettings = field(default_factory=SwaigSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)
    performance: PerformanceSettings = field(default_factory=PerformanceSettings)


# Environment variables that override one key each (the CLI flags map onto the same keys).


def _section(**fields: Field) -> Table:
    return Table(fields, noun="setting", loose=True, choice_text="{value!r} is not one of {choices}")


def _req(kind: Kind, **rules: Any) -> Field:
    """A key that config/default.toml always sets."""
    return Field(kind, required=True, **rules)


def _one_of_networks(addresses: list[str]) -> str | None:
    for address in addresses:
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            return f"{address!r} is not an IP address or network"
    return None


def _starts(prefixes: tuple[str, ...], what: str) -> Callable[[str], str | None]:
    def rule(value: str) -> str | None:
        return None if not value or value.startswith(prefixes) else f"{value!r} is not {what}"

    return rule


def _http_url(value: str) -> str | None:
    ok = value.startswith(("http://", "https://"))
    return None if ok else f"expected an http:// or https:// URL, got {value!r}"


def _allowed_hosts(entries: list[str]) -> str | None:
    return next((problem for entry in entries if (problem := entry_problem(entry)) is not None), None)


def _ice_urls(urls: list[str]) -> str | None:
    bad = [url for url in urls if not url.startswith(("stun:", "turn:", "turns:"))]
    return f"{bad[0]!r} is not a stun:, turn: or turns: URL" if bad else None


def _known_codecs(codecs: list[Any]) -> str | None:
    bad = [name for name in codecs if name not in KNOWN_CODECS]
    return f"unknown codec {bad[0]!r} (known: {', '.join(KNOWN_CODECS)})" if bad else None


def _engine(kind: str, *extra: str) -> Field:
    """`<kind>.engine`: a name in the engine registry (`pipeline/engines`), or one of `extra`."""
    known = (*engine_names(kind), *extra)

    def rule(name: str) -> str | None:
        return None if name in known else f"unknown {kind} engine {name!r} (known: {', '.join(known)})"

    return _req("str", check=rule)


def _positive(value: float) -> str | None:
    return None if value > 0 else f"expected a number of seconds in (0, 120], got {value!r}"


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_PORT = _req("int", lo=0, hi=65535)
_DOCUMENT = Field("str", nonempty=True, expected="a path to a SWML document", required=True)
_ICE_SERVER = Table(
    {
        "urls": _req(
            "list", lone=True, nonempty=True, items=Field("str"), expected="a URL or a list of URLs", check=_ice_urls
        ),
        "username": Field("str", default=""),
        "credential": Field("str", default=""),
    },
    unknown_text="unknown setting {key!r}",
    unknown_at_table=True,
)

SCHEMA = _section(
    sip=_req(
        "table",
        table=_section(
            host=_req("str"),
            port=_PORT,
            advertised_host=_req("str"),
            user_agent=_req("str"),
            unknown_user=_req("str", choices=("default", "reject")),
            route_header=_req("str"),
            max_body_bytes=_req("int", lo=1024, hi=1 << 20),
            outbound_proxy=Field("str", default=""),
            media_encryption=Field("str", default="off", choices=("off", "optional", "required")),
            security=_req(
                "table",
                table=_section(
                    realm=_req("str"),
                    challenge=_req("int", choices=(401, 407)),
                    nonce_lifetime_s=_req("int", lo=10, hi=86400),
                    rate_limit_per_s=_req("int", lo=0, hi=100000),
                    rate_limit_burst=_req("int", lo=1, hi=100000),
                ),
            ),
            trunks=Field(
                "map",
                default={},
                items=Field(
                    "list", items=Field("str"), expected="a list of IP addresses or networks", check=_one_of_networks
                ),
            ),
            users=Field("map", default={}, items=Field("str", nonempty=True, expected="a non-empty password string")),
            tls=_req("table", table=_section(port=_PORT, cert=_req("str"), key=_req("str"))),
            register=_req(
                "table",
                table=_section(
                    registrar=_req("str", check=_starts(("sip:", "sips:"), "a sip: URI")),
                    user=_req("str"),
                    password=_req("str"),
                    expires=_req("int", lo=30, hi=86400),
                ),
            ),
        ),
    ),
    http=_req("table", table=_section(host=_req("str"), port=_PORT)),
    rtp=_req(
        "table",
        table=_section(
            port_min=_req("int", lo=1024, hi=65534),
            port_max=_req("int", lo=1025, hi=65535),
            jitter_depth_frames=_req("int", lo=1, hi=25),
            codecs=_req("list", nonempty=True, expected="a non-empty list", check=_known_codecs),
            timeout_s=Field("num", default=RtpSettings.timeout_s, lo=0.0, hi=86400.0),
            hold_timeout_s=Field("num", default=RtpSettings.hold_timeout_s, lo=0.0, hi=86400.0),
            jitter_max_depth_frames=Field("int", default=RtpSettings.jitter_max_depth_frames, lo=1, hi=25),
        ),
    ),
    tts=_req(
        "table",
        table=_section(
            engine=_engine("tts"),
            model=_req("str"),
            threads=_req("int", lo=1, hi=16),
            voices=Field("map", default={}, items=Field("str", nonempty=True), expected="a table of name = voice file"),
        ),
    ),
    routes=_req("table", table=_section(default=_DOCUMENT, users=Field("map", default={}, items=_DOCUMENT))),
    webrtc=_req(
        "table",
        table=_section(
            enabled=_req("bool"),
            host_addresses=_req("list", items=Field("str", nonempty=True), expected="a list of IP addresses"),
            ice_transport_policy=_req("str", choices=("all", "relay")),
            ice_servers=_req("list", items=Field("table", table=_ICE_SERVER)),
        ),
    ),
    llm=_req(
        "table",
        table=_section(
            engine=_engine("llm"),
            enabled=_req("bool"),
            base_url=_req("str", check=_http_url),
            api_key_env=_req("str"),
            model=_req("str"),
            timeout_s=_req("num", lo=0.1, hi=600.0),
            first_token_timeout_s=_req("num", lo=0.1, hi=600.0),
            far_end_delay_ms=_req("int", lo=0, hi=1000),
        ),
    ),
    asr=_req(
        "table",
        table=_section(
            engine=_engine("asr"),
            model=_req("str"),
            window_s=_req("num", lo=1.0, hi=30.0),
            threads=_req("int", lo=1, hi=16),
            workers=_req("int", lo=1, hi=16),
        ),
    ),
    end_of_turn=_req("table", table=_section(engine=_engine("end_of_turn", "none"))),
    swml=Field(
        "table",
        default={},
        table=_section(
            fetch_timeout_s=Field(
                "num", default=10.0, hi=120, expected="a number of seconds in (0, 120]", check=_positive
            ),
            apology=Field("str", default=SwmlSettings.apology),
            recordings_dir=Field("str", default="recordings", nonempty=True, expected="a folder path"),
            conversations_dir=Field("str", default="conversations", nonempty=True, expected="a folder path"),
            expression_timeout_ms=Field("int", default=100, lo=1, hi=10_000),
            allowed_hosts=Field(
                "list",
                default=[],
                items=Field("str"),
                expected="a list of host names, *.domains, IP addresses or networks",
                check=_allowed_hosts,
            ),
            envs=Field(
                "map",
                default={},
                items=Field("any", check=lambda v: None if isinstance(v, str | int | float | bool) else "not a scalar"),
                expected="a table of name = value",
            ),
        ),
    ),
    api=_req("table", table=_section(token=_req("str"), token_env=_req("str"))),
    swaig=Field(
        "table",
        default={},
        table=_section(
            signing_key=Field("str", default=""),
            signing_key_env=Field("str", default=SwaigSettings.signing_key_env),
        ),
    ),
    telemetry=Field(
        "table",
        default={},
        table=_section(otlp_endpoint=Field("str", default="", check=lambda v: _http_url(v) if v else None)),
    ),
    performance=Field(
        "table",
        default={},
        table=_section(
            inference_nice=Field("int", default=PerformanceSettings.inference_nice, lo=0, hi=19),
            inference_sched_idle=Field("bool", default=PerformanceSettings.inference_sched_idle),
            loop_realtime_priority=Field("int", default=PerformanceSettings.loop_realtime_priority, lo=0, hi=99),
            gil_switch_ms=Field("num", default=PerformanceSettings.gil_switch_ms, lo=0.1, hi=100.0),
            inference_process=Field("bool", default=PerformanceSettings.inference_process),
            partial_asr_per_s=Field("num", default=PerformanceSettings.partial_asr_per_s, lo=0.0, hi=100.0),
            tts_cache_mb=Field("num", default=PerformanceSettings.tts_cache_mb, lo=0.0, hi=4096.0),
            tts_cache_max_chars=Field("int", default=PerformanceSettings.tts_cache_max_chars, lo=1, hi=10_000),
        ),
    ),
    admission=Field(
        "table",
        default={},
        table=_section(
            ai_capacity=Field("int", default=AdmissionSettings.ai_capacity, lo=0, hi=100_000),
            max_calls=Field("int", default=AdmissionSettings.max_calls, lo=0, hi=1_000_000),
            retry_after_s=Field("int", default=AdmissionSettings.retry_after_s, lo=1, hi=86400),
            overflow=Field("str", default=""),
        ),
    ),
    logging=_req(
        "table",
        table=_section(
            level=_req(
                "str",
                check=lambda v: None if v.upper() in _LEVELS else f"{v.upper()!r} is not one of {', '.join(_LEVELS)}",
            ),
            call_log_dir=_req("str"),
        ),
    ),
)
