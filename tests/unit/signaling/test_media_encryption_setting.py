"""`[sip] media_encryption`: off by default, checked against its three values, and carried by
app.py into the SIP front end's and the dialer's options."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.app import sip_options
from mediaserver.settings import ConfigError, load_settings


def test_off_by_default() -> None:
    options = sip_options(load_settings(environ={}))
    assert options.media_encryption == "off" and options.dialer().media_encryption == "off"


@pytest.mark.parametrize("mode", ["optional", "required"])
def test_carried_to_front_end_and_dialer(tmp_path: Path, mode: str) -> None:
    config = tmp_path / "srtp.toml"
    config.write_text(f'[sip]\nmedia_encryption = "{mode}"\n')
    options = sip_options(load_settings(config, environ={}))
    assert options.media_encryption == mode and options.dialer().media_encryption == mode


def test_unknown_value_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[sip]\nmedia_encryption = "sdes"\n')
    with pytest.raises(ConfigError, match="media_encryption"):
        load_settings(config, environ={})
