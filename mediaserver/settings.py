"""Typed settings: the embedded defaults, overlaid by a user file and MS_* environment variables.

Theory of operation: `config/default.toml` (shipped in the `msconfig` package) holds every key.
A user file passed with --config sets only the keys it changes; environment variables and CLI
flags win over both. Every value is checked here, once, so that a bad config stops the server
at start with a message naming the key (`rtp.port_min: expected an integer, got 'abc'`).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msconfig import CONFIG_DIR

DEFAULT_CONFIG = CONFIG_DIR / "default.toml"
KNOWN_CODECS = ("PCMU", "PCMA", "G722", "opus")


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
    """The `ai` verb's engines: an OpenAI-compatible LLM endpoint and the ASR model."""

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
        user = _read_toml(path)
        _check_known_keys(user, raw, "")
        _merge(raw, user)
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


def _check_known_keys(user: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str) -> None:
    for key, value in user.items():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            raise ConfigError(f"{dotted}: unknown setting")
        if isinstance(value, Mapping) and isinstance(defaults[key], Mapping) and dotted not in _FREE_TABLES:
            _check_known_keys(value, defaults[key], dotted + ".")


# Tables whose keys are names the user chooses (users, trunks), not settings.
_FREE_TABLES = ("routes.users", "sip.users", "sip.trunks", "swml.envs")


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    section, _, name = key.partition(".")
    raw.setdefault(section, {})[name] = value


def _int(raw: Mapping[str, Any], section: str, key: str, lo: int, hi: int) -> int:
    value = raw.get(section, {}).get(key)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{section}.{key}: expected an integer, got {value!r}") from None
    if isinstance(value, bool) or not lo <= number <= hi:
        raise ConfigError(f"{section}.{key}: {value!r} is outside {lo}..{hi}")
    return number


def _str(raw: Mapping[str, Any], section: str, key: str) -> str:
    value = raw.get(section, {}).get(key)
    if not isinstance(value, str):
        raise ConfigError(f"{section}.{key}: expected a string, got {value!r}")
    return value


def _document_path(value: Any, key: str, base_dirs: Mapping[str, Path]) -> Path | str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected a path to a SWML document, got {value!r}")
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


def _webrtc(raw: Mapping[str, Any]) -> WebRtcSettings:
    section = raw.get("webrtc", {})
    enabled = section.get("enabled")
    if isinstance(enabled, str) and enabled.lower() in ("1", "0", "true", "false", "yes", "no"):
        enabled = enabled.lower() in ("1", "true", "yes")  # from MS_WEBRTC_ENABLED
    if not isinstance(enabled, bool):
        raise ConfigError(f"webrtc.enabled: expected true or false, got {enabled!r}")
    hosts = section.get("host_addresses")
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        raise ConfigError(f"webrtc.host_addresses: expected a list of IP addresses, got {hosts!r}")
    policy = section.get("ice_transport_policy")
    if policy not in ("all", "relay"):
        raise ConfigError(f"webrtc.ice_transport_policy: {policy!r} is not one of 'all', 'relay'")
    servers = section.get("ice_servers")
    if not isinstance(servers, list):
        raise ConfigError(f"webrtc.ice_servers: expected a list of tables, got {servers!r}")
    parsed: list[IceServer] = []
    for i, server in enumerate(servers):
        key = f"webrtc.ice_servers[{i}]"
        if not isinstance(server, Mapping):
            raise ConfigError(f"{key}: expected a table with urls (and username, credential for TURN)")
        unknown = set(server) - {"urls", "username", "credential"}
        if unknown:
            raise ConfigError(f"{key}: unknown setting {sorted(unknown)[0]!r}")
        urls = server.get("urls")
        urls = [urls] if isinstance(urls, str) else urls
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise ConfigError(f"{key}.urls: expected a URL or a list of URLs, got {server.get('urls')!r}")
        for url in urls:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ConfigError(f"{key}.urls: {url!r} is not a stun:, turn: or turns: URL")
        username, credential = server.get("username", ""), server.get("credential", "")
        if not isinstance(username, str) or not isinstance(credential, str):
            raise ConfigError(f"{key}: username and credential must be strings")
        if any(u.startswith("turn") for u in urls) and not (username and credential):
            raise ConfigError(f"{key}: a TURN server needs a username and a credential")
        parsed.append(IceServer(tuple(urls), username, credential))
    if policy == "relay" and not any(u.startswith("turn") for s in parsed for u in s.urls):
        raise ConfigError("webrtc.ice_transport_policy: 'relay' needs a TURN server in webrtc.ice_servers")
    return WebRtcSettings(enabled, tuple(hosts), tuple(parsed), policy)


def _float(raw: Mapping[str, Any], section: str, key: str, lo: float, hi: float) -> float:
    value = raw.get(section, {}).get(key)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{section}.{key}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not lo <= number <= hi:
        raise ConfigError(f"{section}.{key}: {value!r} is outside {lo}..{hi}")
    return number


def _ai(raw: Mapping[str, Any]) -> AiSettings:
    enabled = raw.get("llm", {}).get("enabled")
    if isinstance(enabled, str) and enabled.lower() in ("1", "0", "true", "false", "yes", "no"):
        enabled = enabled.lower() in ("1", "true", "yes")
    if not isinstance(enabled, bool):
        raise ConfigError(f"llm.enabled: expected true or false, got {enabled!r}")
    base_url = _str(raw, "llm", "base_url")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"llm.base_url: expected an http:// or https:// URL, got {base_url!r}")
    return AiSettings(
        enabled=enabled,
        base_url=base_url,
        api_key_env=_str(raw, "llm", "api_key_env"),
        model=_str(raw, "llm", "model"),
        timeout_s=_float(raw, "llm", "timeout_s", 0.1, 600.0),
        first_token_timeout_s=_float(raw, "llm", "first_token_timeout_s", 0.1, 600.0),
        asr_model=_str(raw, "asr", "model"),
        asr_window_s=_float(raw, "asr", "window_s", 1.0, 30.0),
        asr_threads=_int(raw, "asr", "threads", 1, 16),
        far_end_delay_ms=_int(raw, "llm", "far_end_delay_ms", 0, 1000),
    )


def _sip_extras(raw: dict[str, Any], base_dirs: Mapping[str, Path]) -> dict[str, Any]:
    """The [sip] keys beyond the first four, and its subtables; errors name the key."""
    sip = raw.get("sip", {})
    unknown_user = _str(raw, "sip", "unknown_user")
    if unknown_user not in ("default", "reject"):
        raise ConfigError(f"sip.unknown_user: {unknown_user!r} is not one of default, reject")
    sec = {"sec": sip.get("security", {}), "tls": sip.get("tls", {}), "reg": sip.get("register", {})}
    view = {"sip.security": sec["sec"], "sip.tls": sec["tls"], "sip.register": sec["reg"]}
    challenge = _int(view, "sip.security", "challenge", 401, 407)
    if challenge not in (401, 407):
        raise ConfigError(f"sip.security.challenge: {challenge} is not 401 or 407")
    trunks: dict[str, tuple[str, ...]] = {}
    for name, addresses in (sip.get("trunks") or {}).items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise ConfigError(f"sip.trunks.{name}: expected a list of IP addresses or networks")
        for address in addresses:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ConfigError(f"sip.trunks.{name}: {address!r} is not an IP address or network") from None
        trunks[name] = tuple(addresses)
    users = sip.get("users") or {}
    for name, password in users.items():
        if not isinstance(password, str) or not password:
            raise ConfigError(f"sip.users.{name}: expected a non-empty password string")
    tls = SipTlsSettings(
        port=_int(view, "sip.tls", "port", 0, 65535),
        cert=_config_path(_str(view, "sip.tls", "cert"), base_dirs),
        key=_config_path(_str(view, "sip.tls", "key"), base_dirs),
    )
    if tls.port and not (tls.cert and Path(tls.cert).is_file()):
        raise ConfigError(f"sip.tls.cert: certificate file {tls.cert!r} not found")
    if tls.port and tls.key and not Path(tls.key).is_file():
        raise ConfigError(f"sip.tls.key: key file {tls.key!r} not found")
    register = SipRegisterSettings(
        registrar=_str(view, "sip.register", "registrar"),
        user=_str(view, "sip.register", "user"),
        password=_str(view, "sip.register", "password"),
        expires=_int(view, "sip.register", "expires", 30, 86400),
    )
    if register.registrar and not register.registrar.startswith(("sip:", "sips:")):
        raise ConfigError(f"sip.register.registrar: {register.registrar!r} is not a sip: URI")
    if register.registrar and not register.user:
        raise ConfigError("sip.register.user: needed when sip.register.registrar is set")
    return {
        "unknown_user": unknown_user,
        "route_header": _str(raw, "sip", "route_header"),
        "max_body_bytes": _int(raw, "sip", "max_body_bytes", 1024, 1 << 20),
        "security": SipSecuritySettings(
            realm=_str(view, "sip.security", "realm"),
            challenge=challenge,
            nonce_lifetime_s=_int(view, "sip.security", "nonce_lifetime_s", 10, 86400),
            rate_limit_per_s=_int(view, "sip.security", "rate_limit_per_s", 0, 100000),
            rate_limit_burst=_int(view, "sip.security", "rate_limit_burst", 1, 100000),
            trunks=trunks,
            users=dict(users),
        ),
        "tls": tls,
        "register": register,
    }


def _config_path(value: str, base_dirs: Mapping[str, Path]) -> str:
    if not value or Path(value).is_absolute():
        return value
    return str(list(base_dirs.values())[-1] / value)


def _build(raw: dict[str, Any], base_dirs: Mapping[str, Path], source: str) -> Settings:
    codecs = raw.get("rtp", {}).get("codecs")
    if not isinstance(codecs, list) or not codecs:
        raise ConfigError(f"rtp.codecs: expected a non-empty list, got {codecs!r}")
    for name in codecs:
        if name not in KNOWN_CODECS:
            raise ConfigError(f"rtp.codecs: unknown codec {name!r} (known: {', '.join(KNOWN_CODECS)})")
    rtp = RtpSettings(
        port_min=_int(raw, "rtp", "port_min", 1024, 65534),
        port_max=_int(raw, "rtp", "port_max", 1025, 65535),
        jitter_depth_frames=_int(raw, "rtp", "jitter_depth_frames", 1, 25),
        codecs=tuple(codecs),
    )
    if rtp.port_max - rtp.port_min < 2:
        raise ConfigError(f"rtp.port_max: range {rtp.port_min}..{rtp.port_max} holds no pair of ports")
    users = raw.get("routes", {}).get("users", {})
    if not isinstance(users, Mapping):
        raise ConfigError("routes.users: expected a table of user = document")
    routes = Routes(
        default=_document_path(raw.get("routes", {}).get("default"), "routes.default", base_dirs),
        users={u: _document_path(p, f"routes.users.{u}", base_dirs) for u, p in users.items()},
    )
    level = _str(raw, "logging", "level").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"logging.level: {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    engine = _str(raw, "tts", "engine")
    if engine != "piper":
        raise ConfigError(f"tts.engine: {engine!r} is not supported (supported: piper)")
    return Settings(
        sip=SipSettings(
            host=_str(raw, "sip", "host"),
            port=_int(raw, "sip", "port", 0, 65535),
            advertised_host=_str(raw, "sip", "advertised_host"),
            user_agent=_str(raw, "sip", "user_agent"),
            **_sip_extras(raw, base_dirs),
        ),
        http=HttpSettings(host=_str(raw, "http", "host"), port=_int(raw, "http", "port", 0, 65535)),
        rtp=rtp,
        tts=TtsSettings(engine=engine, model=_str(raw, "tts", "model"), threads=_int(raw, "tts", "threads", 1, 16)),
        routes=routes,
        logging=LoggingSettings(level=level, call_log_dir=_str(raw, "logging", "call_log_dir")),
        source=source,
        webrtc=_webrtc(raw),
        ai=_ai(raw),
        swml=_swml(raw, base_dirs),
        api=ApiSettings(token=_str(raw, "api", "token"), token_env=_str(raw, "api", "token_env")),
    )


def _swml(raw: Mapping[str, Any], base_dirs: Mapping[str, Path]) -> SwmlSettings:
    section = raw.get("swml", {})
    timeout = section.get("fetch_timeout_s", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 120:
        raise ConfigError(f"swml.fetch_timeout_s: expected a number of seconds in (0, 120], got {timeout!r}")
    apology = section.get("apology", SwmlSettings.apology)
    if not isinstance(apology, str):
        raise ConfigError(f"swml.apology: expected a string, got {apology!r}")
    folder = section.get("recordings_dir", "recordings")
    if not isinstance(folder, str) or not folder:
        raise ConfigError(f"swml.recordings_dir: expected a folder path, got {folder!r}")
    recordings = Path(folder)
    if not recordings.is_absolute():
        recordings = list(base_dirs.values())[-1] / recordings if "user" in base_dirs else Path.cwd() / recordings
    envs = section.get("envs", {})
    if not isinstance(envs, Mapping) or not all(isinstance(v, str | int | float | bool) for v in envs.values()):
        raise ConfigError(f"swml.envs: expected a table of name = value, got {envs!r}")
    return SwmlSettings(
        envs={str(k): str(v) for k, v in envs.items()},
        fetch_timeout_s=float(timeout),
        apology=apology,
        recordings_dir=recordings,
        expression_timeout_ms=_int(raw, "swml", "expression_timeout_ms", 1, 10_000)
        if "expression_timeout_ms" in section
        else 100,
    )
