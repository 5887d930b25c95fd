from pathlib import Path

import pytest

from mediaserver.settings import ConfigError, load_settings


def test_defaults_load_with_the_bundled_greeting() -> None:
    settings = load_settings(environ={})
    assert settings.sip.port == 5060
    assert settings.http.port == 8080
    assert settings.routes.document_for("anyone").name == "greeting.yaml"
    assert settings.routes.document_for("anyone").is_file()
    assert settings.sip.contact_host == "127.0.0.1"


def test_environment_and_overrides_win_over_files(tmp_path: Path) -> None:
    cfg = tmp_path / "my.toml"
    cfg.write_text("[sip]\nport = 5070\n[http]\nport = 9000\n")
    settings = load_settings(cfg, overrides={"http.port": 9100}, environ={"MS_SIP_PORT": "5080"})
    assert settings.sip.port == 5080
    assert settings.http.port == 9100


def test_user_routes_resolve_relative_to_the_user_file(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "sales.yaml").write_text("sections: {main: [hangup]}\n")
    cfg = tmp_path / "my.toml"
    cfg.write_text('[routes.users]\nsales = "flows/sales.yaml"\n')
    settings = load_settings(cfg, environ={})
    assert settings.routes.document_for("sales") == tmp_path / "flows" / "sales.yaml"
    assert settings.routes.document_for("other").name == "greeting.yaml"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[sip]\nport = 'abc'\n", "sip.port: expected an integer"),
        ("[sip]\nport = 70000\n", "sip.port: 70000 is outside"),
        ("[sip]\nprot = 5060\n", "sip.prot: unknown setting"),
        ("[rtp]\ncodecs = ['PCMU', 'G729']\n", "rtp.codecs: unknown codec 'G729'"),
        ("[routes]\ndefault = 'nowhere.yaml'\n", "routes.default: SWML document 'nowhere.yaml' not found"),
        ("[logging]\nlevel = 'LOUD'\n", "logging.level"),
        ("[sip\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert key in str(info.value)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_every_bad_key_is_named_at_once(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[sip]\nport = 'abc'\n[rtp]\njitter_depth_frames = 99\n[webrtc]\nice_servers = [{ urls = 5 }]\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    message = str(info.value)
    assert "sip.port: expected an integer, got 'abc'" in message
    assert "rtp.jitter_depth_frames: 99 is outside 1..25" in message
    assert "webrtc.ice_servers[0].urls: expected a URL or a list of URLs, got 5" in message


def test_environment_strings_are_coerced_and_checked() -> None:
    assert load_settings(environ={"MS_RTP_PORT_MIN": "20100", "MS_WEBRTC_ENABLED": "no"}).rtp.port_min == 20100
    with pytest.raises(ConfigError, match=r"http.port: 70000 is outside 0..65535"):
        load_settings(environ={"MS_HTTP_PORT": "70000"})


def test_engines_default_to_todays_and_are_chosen_by_name(tmp_path: Path) -> None:
    settings = load_settings(environ={})
    assert (settings.ai.asr_engine, settings.tts.engine, settings.ai.llm_engine) == ("whisper", "piper", "openai")
    assert settings.ai.end_of_turn_engine == "smart_turn"
    cfg = tmp_path / "my.toml"
    cfg.write_text('[end_of_turn]\nengine = "none"\n')
    assert load_settings(cfg, environ={}).ai.end_of_turn_engine == "none"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[asr]\nengine = 'vosk'\n", "asr.engine: unknown asr engine 'vosk' (known: whisper)"),
        ("[tts]\nengine = 'coqui'\n", "tts.engine: unknown tts engine 'coqui' (known: piper)"),
        ("[llm]\nengine = 'claude'\n", "llm.engine: unknown llm engine 'claude' (known: openai)"),
        (
            "[end_of_turn]\nengine = 'vad'\n",
            "end_of_turn.engine: unknown end_of_turn engine 'vad' (known: smart_turn, none)",
        ),
    ],
)
def test_an_unknown_engine_names_the_key_and_the_known_engines(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert message in str(info.value)
