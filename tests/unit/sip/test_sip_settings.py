"""The [sip] settings added for security, TLS, registration and routing: values and errors that
name the key (the settings module's contract)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.settings import ConfigError, load_settings


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_settings(path, environ={})


def test_defaults_keep_the_old_behaviour(tmp_path: Path) -> None:
    sip = load_settings(environ={}).sip
    assert sip.unknown_user == "default" and sip.route_header == ""
    assert sip.security.trunks == {} and sip.security.users == {}  # open: every caller admitted
    assert sip.security.rate_limit_per_s > 0 and sip.tls.port == 0 and sip.register.registrar == ""


def test_users_trunks_and_register(tmp_path: Path) -> None:
    sip = load(
        tmp_path,
        """
[sip]
unknown_user = "reject"
[sip.users]
alice = "wonderland"
[sip.trunks]
carrier = ["203.0.113.0/24", "2001:db8::1"]
[sip.security]
challenge = 407
[sip.register]
registrar = "sip:pbx.example.com:5060"
user = "agent"
password = "x"
""",
    ).sip
    assert sip.unknown_user == "reject"
    assert sip.security.users == {"alice": "wonderland"} and sip.security.challenge == 407
    assert sip.security.trunks == {"carrier": ("203.0.113.0/24", "2001:db8::1")}
    assert sip.register.user == "agent" and sip.register.expires == 300


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[sip]\nunknown_user = "drop"\n', "sip.unknown_user"),
        ('[sip.trunks]\nc = ["10.0.0.300"]\n', "sip.trunks.c: '10.0.0.300'"),
        ('[sip.trunks]\nc = "10.0.0.1"\n', "sip.trunks.c: expected a list"),
        ('[sip.users]\nbob = ""\n', "sip.users.bob"),
        ("[sip.security]\nchallenge = 403\n", "sip.security.challenge"),
        ('[sip.security]\nrate_limit_per_s = "many"\n', "sip.security.rate_limit_per_s"),
        ("[sip.tls]\nport = 5061\n", "sip.tls.cert"),
        ('[sip.register]\nregistrar = "pbx.example.com"\nuser = "a"\n', "sip.register.registrar"),
        ('[sip.register]\nregistrar = "sip:pbx.example.com"\n', "sip.register.user"),
        ("[sip.security]\nrealm_name = 1\n", "sip.security.realm_name: unknown setting"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load(tmp_path, text)
