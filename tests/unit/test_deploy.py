"""deploy/: the files an operator runs are checked as far as this machine can (no Docker
engine, no helm): they parse, their configuration validates against the proxy's own
settings, the Helm templates only use values that exist, and the container and the
systemd unit keep the promises the README makes (non-root, health check, reload,
restart, open-files limit, a grace period longer than shutdown_timeout)."""

from __future__ import annotations

import ast
import configparser
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from proxy.connectors import connector_settings
from proxy.writes.settings import ConnectorSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CHART = DEPLOY / "helm" / "writeproxy"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_dockerfile_runs_unprivileged_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in text.splitlines() if line and line[0].isupper()]
    assert instructions[0] == "FROM" and "slim" in text.splitlines()[2]
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0")
    health = re.search(r'CMD \["python", "-c", "(.+)"\]', text)
    assert health is not None
    ast.parse(health.group(1))  # the probe is valid Python
    assert 'ENTRYPOINT ["writeproxy"]' in text and "STOPSIGNAL SIGTERM" in text


def test_compose_wires_the_proxy_to_postgres_and_the_sandboxes() -> None:
    compose = load_yaml(DEPLOY / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {
        "postgres",
        "sandbox-hubspot",
        "sandbox-salesforce",
        "sandbox-stripe",
        "writeproxy",
    }
    proxy = services["writeproxy"]
    env = proxy["environment"]
    assert env["WRITEPROXY_UPSTREAM_URL"].startswith("postgresql://")
    assert (DEPLOY / proxy["volumes"][0].split(":")[0]).is_file()
    assert (DEPLOY / services["postgres"]["volumes"][0].split(":")[0]).is_file()
    # Every connector of the mounted configuration validates with the compose env.
    config = tomllib.loads((DEPLOY / "compose" / "writeproxy.toml").read_text())
    for name, raw in config["connectors"].items():
        settings = ConnectorSettings.model_validate(raw)
        connector_settings(name, settings.kind, settings.connector_options(), env)


def test_example_configurations_validate() -> None:
    env = {"HUBSPOT_TOKEN": "pat-x"}
    for path in (DEPLOY / "writeproxy.toml",):
        config = tomllib.loads(path.read_text())
        for name, raw in config["connectors"].items():
            settings = ConnectorSettings.model_validate(raw)
            connector_settings(name, settings.kind, settings.connector_options(), env)
    values = load_yaml(CHART / "values.yaml")
    chart_config = tomllib.loads(values["config"])
    for name, raw in chart_config["connectors"].items():
        settings = ConnectorSettings.model_validate(raw)
        connector_settings(name, settings.kind, settings.connector_options(), env)


def _has(values: Any, path: list[str]) -> bool:
    for part in path:
        if not isinstance(values, dict) or part not in values:
            return False
        values = values[part]
    return True


def test_helm_chart_uses_only_values_it_defines() -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2" and chart["name"] == "writeproxy"
    values = load_yaml(CHART / "values.yaml")
    templates = {p.name: p.read_text() for p in (CHART / "templates").iterdir()}
    assert {
        "deployment.yaml",
        "service.yaml",
        "configmap.yaml",
        "secret.yaml",
        "pdb.yaml",
    } <= set(templates)
    for name, text in templates.items():
        assert text.count("{{") == text.count("}}"), name
        for reference in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text):
            assert _has(values, reference.split(".")), f"{name}: .Values.{reference}"
    deployment = templates["deployment.yaml"]
    assert "terminationGracePeriodSeconds: {{ add .Values.shutdownTimeout 15 }}" in deployment
    assert "readinessProbe" in deployment and "runAsNonRoot: true" in deployment
    assert "path: /readyz" in deployment and "WRITEPROXY_ADMIN_LISTEN" in deployment
    assert "PodDisruptionBudget" in templates["pdb.yaml"]


def test_systemd_unit_reloads_restarts_and_has_room_for_clients() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "writeproxy.service")
    service = unit["Service"]
    assert service["Restart"] == "always"
    assert "-HUP" in service["ExecReload"]
    assert int(service["LimitNOFILE"]) >= 2 * 5000 + 256
    assert int(service["TimeoutStopSec"]) > 30  # shutdown_timeout's default
