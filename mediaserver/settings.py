"""Typed settings: the embedded defaults, overlaid by a user file and MS_* environment variables.

Theory of operation: `config/default.toml` (shipped in the `msconfig` package) holds every key.
A user file passed with --config sets only the keys it changes; environment variables and CLI
flags win over both. Every value is checked here, once, against the `SCHEMA` field table
(`mediaserver.fields`), so that a bad config stops the server at start with a message naming
every bad key (`rtp.port_min: expected an integer, got 'abc'`); the checks that join two keys or
look at files follow it.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediaserver.fields import Field, FieldErrors, Kind, Table, validate
from mediaserver.kernel.url_policy import entry_problem
from mediaserver.pipeline.engines import engine_names
from mscodecs import SUPPORTED
from msconfig import CONFIG_DIR

DEFAULT_CONFIG = CONFIG_DIR / "default.toml"
KNOWN_CODECS = tuple(SUPPORTED)  # the one codec table (mscodecs.registry) decides


class ConfigError(ValueError):
    """A setting is missing, of the wrong type or out of range; the message names the key."""


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
ENV_KEYS = {
    "MS_SIP_PORT": "sip.port",
    "MS_SIP_HOST": "sip.host",
    "MS_SIP_ADVERTISED_HOST": "sip.advertised_host",
    "MS_HTTP_PORT": "http.port",
    "MS_HTTP_HOST": "http.host",
    "MS_RTP_PORT_MIN": "rtp.port_min",
    "MS_RTP_PORT_MAX": "rtp.port_max",
    "MS_LOG_LEVEL": "logging.level",
    "MS_CALL_LOG_DIR": "logging.call_log_dir",
    "MS_WEBRTC_ENABLED": "webrtc.enabled",
    "MS_LLM_BASE_URL": "llm.base_url",
    "MS_LLM_MODEL": "llm.model",
    "MS_OTLP_ENDPOINT": "telemetry.otlp_endpoint",
    "MS_AI_CAPACITY": "admission.ai_capacity",
    "MS_MAX_CALLS": "admission.max_calls",
}


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Defaults <- config file <- environment <- explicit overrides (dotted keys)."""
    raw = _read_toml(DEFAULT_CONFIG)
    base_dirs = {"default": CONFIG_DIR}
    source = str(DEFAULT_CONFIG)
    if config_path:
        path = Path(config_path)
        _merge(raw, _read_toml(path))
        base_dirs["user"] = path.parent.resolve()
        source = str(path)
    env = os.environ if environ is None else environ
    for var, key in ENV_KEYS.items():
        if var in env:
            _set_dotted(raw, key, env[var])
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(raw, key, value)
    return _build(raw, base_dirs, source)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    section, _, name = key.partition(".")
    raw.setdefault(section, {})[name] = value


# ---- the schema: every key of config/default.toml, its type and its range --------------------


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


def _build(raw: dict[str, Any], base_dirs: Mapping[str, Path], source: str) -> Settings:
    try:
        v = validate(SCHEMA, raw)
    except FieldErrors as exc:
        raise ConfigError(str(exc)) from None
    sip, rtp, webrtc, llm, asr = v["sip"], v["rtp"], v["webrtc"], v["llm"], v["asr"]
    if rtp["port_max"] - rtp["port_min"] < 2:
        raise ConfigError(f"rtp.port_max: range {rtp['port_min']}..{rtp['port_max']} holds no pair of ports")
    return Settings(
        sip=_sip(sip, base_dirs),
        http=HttpSettings(**v["http"]),
        rtp=RtpSettings(rtp["port_min"], rtp["port_max"], rtp["jitter_depth_frames"], tuple(rtp["codecs"])),
        tts=TtsSettings(
            **{**v["tts"], "voices": {str(k): _local(p, base_dirs) for k, p in v["tts"]["voices"].items()}}
        ),
        routes=Routes(
            default=_document_path(v["routes"]["default"], "routes.default", base_dirs),
            users={u: _document_path(p, f"routes.users.{u}", base_dirs) for u, p in v["routes"]["users"].items()},
        ),
        logging=LoggingSettings(level=v["logging"]["level"].upper(), call_log_dir=v["logging"]["call_log_dir"]),
        source=source,
        webrtc=_webrtc(webrtc),
        ai=AiSettings(
            enabled=llm["enabled"],
            base_url=llm["base_url"],
            api_key_env=llm["api_key_env"],
            model=llm["model"],
            timeout_s=float(llm["timeout_s"]),
            first_token_timeout_s=float(llm["first_token_timeout_s"]),
            asr_model=asr["model"],
            asr_window_s=float(asr["window_s"]),
            asr_threads=asr["threads"],
            far_end_delay_ms=llm["far_end_delay_ms"],
            asr_engine=asr["engine"],
            llm_engine=llm["engine"],
            end_of_turn_engine=v["end_of_turn"]["engine"],
        ),
        swml=_swml(v["swml"], base_dirs),
        api=ApiSettings(**v["api"]),
        swaig=SwaigSettings(**v["swaig"]),
        telemetry=TelemetrySettings(**v["telemetry"]),
        admission=_admission(v["admission"], v["routes"]["users"], base_dirs),
        performance=PerformanceSettings(**v["performance"]),
    )


def _admission(
    section: Mapping[str, Any], users: Mapping[str, str], base_dirs: Mapping[str, Path]
) -> AdmissionSettings:
    """[admission]; `overflow` names a route of [routes.users], a SWML file or an http(s) URL."""
    overflow = section["overflow"]
    document = _document_path(users.get(overflow, overflow), "admission.overflow", base_dirs) if overflow else None
    return AdmissionSettings(
        ai_capacity=section["ai_capacity"],
        max_calls=section["max_calls"],
        retry_after_s=section["retry_after_s"],
        overflow=document,
    )


def _sip(sip: Mapping[str, Any], base_dirs: Mapping[str, Path]) -> SipSettings:
    """[sip] after the schema: the checks that join two keys or look at files."""
    tls = SipTlsSettings(
        port=sip["tls"]["port"],
        cert=_config_path(sip["tls"]["cert"], base_dirs),
        key=_config_path(sip["tls"]["key"], base_dirs),
    )
    if tls.port and not (tls.cert and Path(tls.cert).is_file()):
        raise ConfigError(f"sip.tls.cert: certificate file {tls.cert!r} not found")
    if tls.port and tls.key and not Path(tls.key).is_file():
        raise ConfigError(f"sip.tls.key: key file {tls.key!r} not found")
    register = SipRegisterSettings(**sip["register"])
    if register.registrar and not register.user:
        raise ConfigError("sip.register.user: needed when sip.register.registrar is set")
    return SipSettings(
        host=sip["host"],
        port=sip["port"],
        advertised_host=sip["advertised_host"],
        user_agent=sip["user_agent"],
        unknown_user=sip["unknown_user"],
        route_header=sip["route_header"],
        max_body_bytes=sip["max_body_bytes"],
        outbound_proxy=sip["outbound_proxy"],
        media_encryption=sip["media_encryption"],
        security=SipSecuritySettings(
            **sip["security"],
            trunks={name: tuple(addresses) for name, addresses in sip["trunks"].items()},
            users=dict(sip["users"]),
        ),
        tls=tls,
        register=register,
    )


def _webrtc(section: Mapping[str, Any]) -> WebRtcSettings:
    servers = []
    for i, server in enumerate(section["ice_servers"]):
        if any(u.startswith("turn") for u in server["urls"]) and not (server["username"] and server["credential"]):
            raise ConfigError(f"webrtc.ice_servers[{i}]: a TURN server needs a username and a credential")
        servers.append(IceServer(tuple(server["urls"]), server["username"], server["credential"]))
    policy = section["ice_transport_policy"]
    if policy == "relay" and not any(u.startswith("turn") for s in servers for u in s.urls):
        raise ConfigError("webrtc.ice_transport_policy: 'relay' needs a TURN server in webrtc.ice_servers")
    return WebRtcSettings(section["enabled"], tuple(section["host_addresses"]), tuple(servers), policy)


def _local(value: str, base_dirs: Mapping[str, Path]) -> Path:
    """A path of the config: relative = to the config file that names it (or the working folder)."""
    path = Path(value)
    if not path.is_absolute():
        path = list(base_dirs.values())[-1] / path if "user" in base_dirs else Path.cwd() / path
    return path


def _swml(section: Mapping[str, Any], base_dirs: Mapping[str, Path]) -> SwmlSettings:
    recordings = Path(section["recordings_dir"])
    if not recordings.is_absolute():
        recordings = list(base_dirs.values())[-1] / recordings if "user" in base_dirs else Path.cwd() / recordings
    return SwmlSettings(
        envs={str(k): str(v) for k, v in section["envs"].items()},
        fetch_timeout_s=float(section["fetch_timeout_s"]),
        apology=section["apology"],
        recordings_dir=recordings,
        conversations_dir=_local(section["conversations_dir"], base_dirs),
        expression_timeout_ms=section["expression_timeout_ms"],
        allowed_hosts=tuple(entry.strip() for entry in section["allowed_hosts"]),
    )


def _document_path(value: str, key: str, base_dirs: Mapping[str, Path]) -> Path | str:
    if value.lower().startswith(("http://", "https://")):
        return value  # fetched per call (kernel/fetch.py); checked when a call arrives
    path = Path(value)
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = [base / path for base in reversed(list(base_dirs.values()))]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{key}: SWML document {value!r} not found (looked in {[str(c) for c in candidates]})")


def _config_path(value: str, base_dirs: Mapping[str, Path]) -> str:
    if not value or Path(value).is_absolute():
        return value
    return str(list(base_dirs.values())[-1] / value)
