"""[api] settings: the control API's bearer token; a bad value names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.settings import ConfigError, load_settings


def test_default_is_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MS_API_TOKEN", raising=False)
    assert load_settings(None, environ={}).api.bearer == ""


def test_token_from_file_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[api]\ntoken = "from-file"\n')
    monkeypatch.delenv("MS_API_TOKEN", raising=False)
    assert load_settings(path, environ={}).api.bearer == "from-file"
    monkeypatch.setenv("MS_API_TOKEN", "from-env")
    assert load_settings(path, environ={}).api.bearer == "from-env"


def test_bad_token_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[api]\ntoken = 5\n")
    with pytest.raises(ConfigError, match=r"api.token: expected a string, got 5"):
        load_settings(path, environ={})
    path.write_text('[api]\ntokn = "x"\n')
    with pytest.raises(ConfigError, match=r"api.tokn"):
        load_settings(path, environ={})
