"""Typed settings: the embedded defaults, overlaid by a user file and MS_* environment variables.

Theory of operation: `config/default.toml` (shipped in the `msconfig` package) holds every key.
A user file passed with --config sets only the keys it changes; environment variables and CLI
flags win over both. Every value is checked here, once, against the `SCHEMA` field table
(`mediaserver.fields`), so that a bad config stops the server at start with a message naming
every bad key (`rtp.port_min: expected an integer, got 'abc'`); the checks that join two keys or
look at files follow it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mediaserver.fields import FieldErrors, validate
from mediaserver.settings_schema import (  # the sections are defined there, beside their schema
    KNOWN_CODECS,
    SCHEMA,
    AdmissionSettings,
    AiSettings,
    ApiSettings,
    HttpSettings,
    IceServer,
    LoggingSettings,
    PerformanceSettings,
    Routes,
    RtpSettings,
    Settings,
    SipRegisterSettings,
    SipSecuritySettings,
    SipSettings,
    SipTlsSettings,
    SwaigSettings,
    SwmlSettings,
    TelemetrySettings,
    TtsSettings,
    WebRtcSettings,
)
from msconfig import CONFIG_DIR

DEFAULT_CONFIG = CONFIG_DIR / "default.toml"

__all__ = [
    "DEFAULT_CONFIG",
    "ENV_KEYS",
    "ConfigError",
    "load_settings",
    "AdmissionSettings",
    "AiSettings",
    "ApiSettings",
    "HttpSettings",
    "IceServer",
    "KNOWN_CODECS",
    "LoggingSettings",
    "PerformanceSettings",
    "Routes",
    "RtpSettings",
    "SCHEMA",
    "Settings",
    "SipRegisterSettings",
    "SipSecuritySettings",
    "SipSettings",
    "SipTlsSettings",
    "SwaigSettings",
    "SwmlSettings",
    "TelemetrySettings",
    "TtsSettings",
    "WebRtcSettings",
]


class ConfigError(ValueError):
    """A setting is missing, of the wrong type or out of range; the message names the key."""


ENV_KEYS = {
    "MS_SIP_PORT": "sip.port",
    "MS_SIP_HOST": "sip.host",
    "MS_SIP_ADVERTISED_HOST": "sip.advertised_host",
    "MS_HTTP_PORT": "http.port",
    "MS_HTTP_HOST": "http.host",
    "MS_RTP_PORT_MIN": "rtp.port_min",
    "MS_RTP_PORT_MAX": "rtp.port_max",
    "MS_RTP_TIMEOUT_S": "rtp.timeout_s",
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
        rtp=RtpSettings(
            rtp["port_min"],
            rtp["port_max"],
            rtp["jitter_depth_frames"],
            tuple(rtp["codecs"]),
            timeout_s=float(rtp["timeout_s"]),
            hold_timeout_s=float(rtp["hold_timeout_s"]),
            jitter_max_depth_frames=int(rtp["jitter_max_depth_frames"]),
        ),
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
            asr_workers=asr["workers"],
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
