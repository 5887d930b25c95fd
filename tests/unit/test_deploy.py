"""The deployment files stay consistent with the code (CI has no Docker engine to run them)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mediaserver.settings import ENV_KEYS, load_settings
from tests.support.kamailio import load_render

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_file_is_well_formed() -> None:
    doc = compose()
    services = doc["services"]
    assert {"mediaserver", "pbx"} <= set(services)
    assert services["mediaserver2"]["profiles"] == ["scale"]
    assert services["ollama"]["profiles"] == ["ollama"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
        for key in service.get("environment", {}):
            assert key in ENV_KEYS or key == "MS_CONFIG", f"{name}: unknown setting variable {key}"
    assert set(doc.get("volumes", {})) >= {"ollama"}


def test_compose_instances_do_not_share_ports() -> None:
    services = compose()["services"]
    first, second = services["mediaserver"]["environment"], services["mediaserver2"]["environment"]
    for key in ("MS_SIP_PORT", "MS_HTTP_PORT", "MS_RTP_PORT_MIN"):
        assert first[key] != second[key]
    listed = (REPO / "deploy/kamailio/compose/dispatcher.list").read_text()
    for env in (first, second):
        assert f":{env['MS_SIP_PORT']} " in listed


def test_dockerfile_installs_with_the_readme_command() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    readme = (REPO / "README.md").read_text()
    install = "python3 -m venv .venv && .venv/bin/pip install"
    assert install in readme
    assert re.search(r"RUN python3 -m venv \.venv && \.venv/bin/pip install .*-e \.", dockerfile)
    assert "USER mediaserver" in dockerfile and "HEALTHCHECK" in dockerfile
    assert (REPO / "deploy/healthcheck.py").is_file()


def test_deploy_config_loads() -> None:
    settings = load_settings(REPO / "deploy/config/mediaserver.toml", environ={})
    assert settings.routes.default.is_file()


def test_committed_kamailio_config_matches_the_template(tmp_path: Path) -> None:
    render = load_render()
    cfg = render.render(
        tmp_path,
        "udp:0.0.0.0:5060",
        "pbx.local",
        ["sip:127.0.0.1:5080", "sip:127.0.0.1:5082"],
        list_path="/etc/kamailio/dispatcher.list",
    )
    committed = REPO / "deploy/kamailio/compose"
    assert cfg.read_text() == (committed / "kamailio.cfg").read_text(), "re-run deploy/kamailio/render.py"
    assert (tmp_path / "dispatcher.list").read_text() == (committed / "dispatcher.list").read_text()


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="Debian kamailio not installed")
def test_kamailio_accepts_the_rendered_config(tmp_path: Path) -> None:
    render = load_render()
    cfg = render.render(tmp_path, "udp:127.0.0.1:5999", "127.0.0.1", ["sip:127.0.0.1:5080"])
    result = subprocess.run(["kamailio", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
