"""`[rtp] timeout_s` and `hold_timeout_s` (issue 17): defaults, the environment, the range, and
the values app.py hands the SIP front end."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.app import sip_options
from mediaserver.kernel.media_timeout import MediaTimeouts
from mediaserver.settings import ConfigError, load_settings


def test_the_default_is_a_minute_and_off_on_hold() -> None:
    settings = load_settings(environ={})
    assert (settings.rtp.timeout_s, settings.rtp.hold_timeout_s) == (60.0, 0.0)
    assert sip_options(settings).media_timeouts == MediaTimeouts(60.0, 0.0)


def test_file_and_environment_set_them_and_zero_turns_them_off(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[rtp]\ntimeout_s = 0\nhold_timeout_s = 1800\n")
    settings = load_settings(path, environ={})
    assert sip_options(settings).media_timeouts == MediaTimeouts(0.0, 1800.0)
    assert load_settings(path, environ={"MS_RTP_TIMEOUT_S": "2.5"}).rtp.timeout_s == 2.5


def test_a_negative_timeout_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[rtp]\ntimeout_s = -1\n")
    with pytest.raises(ConfigError, match=r"rtp.timeout_s"):
        load_settings(path, environ={})
