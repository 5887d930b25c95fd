"""The deployment files stay consistent with the code (CI has no Docker engine to run them)."""

from __future__ import annotations

import json
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


# ---- --profile observability: Prometheus + Grafana on the server's /metrics ---------------------


def observability() -> dict:
    services = compose()["services"]
    return {name: s for name, s in services.items() if "observability" in s.get("profiles", [])}


def mounts(service: dict) -> dict[str, Path]:
    """Container path -> repo path of each `./` bind mount."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            out[target] = REPO / source
    return out


def test_observability_profile_runs_prometheus_and_grafana_only_on_request() -> None:
    services = observability()
    assert set(services) == {"prometheus", "grafana"}
    for name, service in services.items():
        assert service["profiles"] == ["observability"], name
        assert service["network_mode"] == "host", name  # the servers' /metrics are host ports
        assert ":" in service["image"] and not service["image"].endswith(":latest"), name  # pinned
        for target, source in mounts(service).items():
            assert source.exists(), f"{name} mounts missing {source} at {target}"
    assert "observability" not in compose()["services"]["mediaserver"].get("profiles", [])
    assert {"prometheus", "grafana"} <= set(compose()["volumes"])


def test_prometheus_scrapes_every_server_instance_http_port() -> None:
    services = compose()["services"]
    prometheus = mounts(services["prometheus"])
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    config = yaml.safe_load(prometheus["/etc/prometheus/prometheus.yml"].read_text())
    (job,) = config["scrape_configs"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    ports = set()
    for name, service in services.items():
        if "build" not in service:
            continue  # a media server instance is the image built here
        env = {k: v for k, v in service["environment"].items() if k != "MS_CONFIG"}
        settings = load_settings(REPO / "deploy/config/mediaserver.toml", environ=env)
        assert settings.http.host in ("0.0.0.0", "127.0.0.1"), name  # reachable on the loopback
        ports.add(settings.http.port)
    assert ports == {8080, 8082}
    assert {int(t.rsplit(":", 1)[1]) for t in targets} == ports
    assert {t.rsplit(":", 1)[0] for t in targets} == {"127.0.0.1"}


def test_grafana_is_provisioned_with_the_prometheus_datasource_and_the_dashboard() -> None:
    services = compose()["services"]
    grafana = mounts(services["grafana"])
    provisioning = grafana["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    listen = next(a for a in services["prometheus"]["command"] if a.startswith("--web.listen-address="))
    assert datasource["url"] == "http://" + listen.split("=", 1)[1]
    scrape = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())["global"]["scrape_interval"]
    assert datasource["jsonData"]["timeInterval"] == scrape
    (provider,) = yaml.safe_load((provisioning / "dashboards/mediaserver.yml").read_text())["providers"]
    dashboards = grafana[provider["options"]["path"]]
    assert dashboards == REPO / "deploy/grafana/dashboards"
    dashboard = json.loads((dashboards / "mediaserver.json").read_text())
    used = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    used |= {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert used == {datasource["uid"]}
    ini = (grafana["/etc/grafana/grafana.ini"]).read_text()
    home = re.search(r"^default_home_dashboard_path = (.+)$", ini, re.M)
    assert home is not None and home.group(1) == provider["options"]["path"] + "/mediaserver.json"


def test_every_server_instance_may_run_its_event_loop_at_the_configured_realtime_priority() -> None:
    from mediaserver.settings import load_settings

    wanted = load_settings().performance.loop_realtime_priority
    servers = [s for name, s in compose()["services"].items() if name.startswith("mediaserver")]
    assert servers and wanted > 0
    assert all(s["ulimits"]["rtprio"] >= wanted for s in servers)  # the image runs as a user, not root
