"""Typed settings: the embedded defaults, overlaid by a user file and MS_* environment variables.

Theory of operation: `config/default.toml` (shipped in the `msconfig` package) holds every key.
A user file passed with --config sets only the keys it changes; environment variables and CLI
flags win over both. Every value is checked here, once, so that a bad config stops the server
at start with a message naming the key (`rtp.port_min: expected an integer, got 'abc'`).
"""

from __future__ import annotations

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
class SipSettings:
    host: str
    port: int
    advertised_host: str
    user_agent: str

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
    default: Path
    users: Mapping[str, Path] = field(default_factory=dict)

    def document_for(self, user: str) -> Path:
        return self.users.get(user, self.default)


@dataclass(frozen=True)
class LoggingSettings:
    level: str
    call_log_dir: str


@dataclass(frozen=True)
class Settings:
    sip: SipSettings
    http: HttpSettings
    rtp: RtpSettings
    tts: TtsSettings
    routes: Routes
    logging: LoggingSettings
    source: str


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
        if isinstance(value, Mapping) and isinstance(defaults[key], Mapping) and dotted != "routes.users":
            _check_known_keys(value, defaults[key], dotted + ".")


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


def _document_path(value: Any, key: str, base_dirs: Mapping[str, Path]) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected a path to a SWML document, got {value!r}")
    path = Path(value)
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = [base / path for base in reversed(list(base_dirs.values()))]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{key}: SWML document {value!r} not found (looked in {[str(c) for c in candidates]})")


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
        ),
        http=HttpSettings(host=_str(raw, "http", "host"), port=_int(raw, "http", "port", 0, 65535)),
        rtp=rtp,
        tts=TtsSettings(engine=engine, model=_str(raw, "tts", "model"), threads=_int(raw, "tts", "threads", 1, 16)),
        routes=routes,
        logging=LoggingSettings(level=level, call_log_dir=_str(raw, "logging", "call_log_dir")),
        source=source,
    )
