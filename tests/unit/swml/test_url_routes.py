"""A route may be a URL: settings keep it, the kernel turns it into a fetch (transfer) at call start."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mediaserver.kernel.registry import Kernel
from mediaserver.kernel.services import KernelServices
from mediaserver.settings import ConfigError, load_settings


def test_url_route_becomes_a_transfer_to_the_url(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[routes.users]\nagent = "http://u:p@127.0.0.1:3000/agent?x=1"\n'
        '[swml]\nfetch_timeout_s = 3\napology = "Oops."\nrecordings_dir = "rec"\n'
        '[swml.envs]\nregion = "eu"\n'
    )
    settings = load_settings(config, environ={})
    assert settings.routes.document_for("agent") == "http://u:p@127.0.0.1:3000/agent?x=1"
    assert (settings.swml.fetch_timeout_s, settings.swml.apology) == (3.0, "Oops.")
    assert settings.swml.recordings_dir == tmp_path.resolve() / "rec"
    assert settings.swml.envs == {"region": "eu"}
    services = KernelServices(None, ThreadPoolExecutor(1))  # type: ignore[arg-type]
    kernel = Kernel(None, services, settings.routes.document_for)  # type: ignore[arg-type]
    document = kernel.load_route("agent")
    (verb,) = document.sections["main"]
    assert (verb.name, verb.params) == ("transfer", {"dest": "http://u:p@127.0.0.1:3000/agent?x=1"})
    assert document.source == "http://127.0.0.1:3000/agent?x=1"  # no password in logs


def test_bad_swml_settings_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[swml]\nfetch_timeout_s = -1\n")
    with pytest.raises(ConfigError, match=r"swml.fetch_timeout_s"):
        load_settings(config, environ={})
