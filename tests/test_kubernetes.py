"""`export kubernetes`: the manifests, parsed and checked field by field, and the real tools."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tta_observability import kubernetes
from tta_observability.assets import asset_files
from tta_observability.cli import main


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("k8s")
    code = main(
        [
            "export",
            "kubernetes",
            str(dest),
            "--namespace",
            "observability",
            "--label",
            "release=kube-prometheus-stack",
            "--alertmanager-name",
            "main",
        ]
    )
    assert code == 0
    return dest


def _shipped_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for item in asset_files("rules"):
        groups += yaml.safe_load(item.read_text())["groups"]
    for item in asset_files("compose"):
        if item.relpath.startswith("prometheus/rules/"):
            groups += yaml.safe_load(item.read_text())["groups"]
    return groups


def test_files_and_kustomization(exported: Path) -> None:
    names = sorted(p.name for p in exported.iterdir())
    assert names == [
        "alertmanager-secret.yaml",
        "grafana-dashboards.yaml",
        "kustomization.yaml",
        "podmonitor.yaml",
        "prometheusrule.yaml",
        "servicemonitor.yaml",
    ]
    (kust,) = _docs(exported / "kustomization.yaml")
    assert kust["kind"] == "Kustomization"
    assert kust["namespace"] == "observability"
    assert sorted(kust["resources"]) == sorted(n for n in names if n != "kustomization.yaml")


def test_prometheus_rule_holds_every_shipped_group(exported: Path) -> None:
    (rule,) = _docs(exported / "prometheusrule.yaml")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["metadata"]["name"] == "tta-observability"
    assert rule["metadata"]["namespace"] == "observability"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == _shipped_groups()
    assert set(rule["spec"]) == {"groups"}


def test_prometheus_rule_passes_promtool(exported: Path, tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        pytest.fail("promtool missing: apt-get install prometheus")
    (rule,) = _docs(exported / "prometheusrule.yaml")
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("file", "kind", "name", "endpoints_key"),
    [
        ("servicemonitor.yaml", "ServiceMonitor", "tta-apps", "endpoints"),
        ("podmonitor.yaml", "PodMonitor", "tta-apps-pods", "podMetricsEndpoints"),
    ],
)
def test_monitors(exported: Path, file: str, kind: str, name: str, endpoints_key: str) -> None:
    (doc,) = _docs(exported / file)
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["kind"] == kind
    assert doc["metadata"]["name"] == name
    assert doc["metadata"]["namespace"] == "observability"
    assert doc["metadata"]["labels"] == {
        "app.kubernetes.io/name": "tta-observability",
        "app.kubernetes.io/part-of": "tta-observability",
        "release": "kube-prometheus-stack",
    }
    spec = doc["spec"]
    assert spec["selector"] == {"matchLabels": {"tta.dev/scrape": "true"}}
    assert spec["namespaceSelector"] == {"any": True}
    assert spec[endpoints_key] == [
        {
            "port": "metrics",
            "path": "/metrics",
            "interval": "15s",
            "honorLabels": True,
            "relabelings": [{"action": "replace", "targetLabel": "job", "replacement": "tta-apps"}],
        }
    ]
    assert set(spec) == {"selector", "namespaceSelector", endpoints_key}


def test_dashboards_as_configmaps_for_the_sidecar(exported: Path) -> None:
    maps = _docs(exported / "grafana-dashboards.yaml")
    shipped = {
        f.relpath: f.read_text() for f in asset_files("dashboards") if f.relpath.endswith(".json")
    }
    assert shipped, "no dashboards shipped"
    assert len(maps) == len(shipped)
    seen: dict[str, str] = {}
    for cm in maps:
        assert cm["apiVersion"] == "v1"
        assert cm["kind"] == "ConfigMap"
        assert cm["metadata"]["namespace"] == "observability"
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"] == {"grafana_folder": "TTA"}
        assert cm["metadata"]["name"].startswith("tta-dashboard-")
        assert len(cm["metadata"]["name"]) <= 63
        ((key, text),) = cm["data"].items()
        json.loads(text)
        seen[key] = text
    assert seen == shipped


def test_alertmanager_secret(exported: Path, tmp_path: Path) -> None:
    (secret,) = _docs(exported / "alertmanager-secret.yaml")
    assert secret["apiVersion"] == "v1"
    assert secret["kind"] == "Secret"
    assert secret["type"] == "Opaque"
    # The Prometheus Operator's default configSecret for an Alertmanager named "main".
    assert secret["metadata"]["name"] == "alertmanager-main"
    assert secret["metadata"]["namespace"] == "observability"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    templates = [
        f.relpath.rsplit("/", 1)[1]
        for f in asset_files("compose")
        if f.relpath.startswith("alertmanager/templates/")
    ]
    assert sorted(data) == sorted(["alertmanager.yaml", *templates])
    config = yaml.safe_load(data["alertmanager.yaml"])
    assert config["templates"] == ["/etc/alertmanager/config/*.tmpl"]
    text = data["alertmanager.yaml"]
    assert "/etc/alertmanager/templates/" not in text
    # Secret files move to where the operator mounts spec.secrets.
    files = [
        line.split(":", 1)[1].strip()
        for line in text.splitlines()
        if line.strip().split(":", 1)[0].endswith("_file")
    ]
    assert files
    assert all(f.startswith("/etc/alertmanager/secrets/tta-alertmanager-secrets/") for f in files)
    if shutil.which("amtool") is None:
        pytest.fail("amtool missing: apt-get install prometheus-alertmanager")
    (tmp_path / "alertmanager.yaml").write_text(text)
    result = subprocess.run(
        ["amtool", "check-config", str(tmp_path / "alertmanager.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_options_change_selector_and_namespaces() -> None:
    opts = kubernetes.Options(
        selector={"app": "agent"}, app_namespaces=("agents", "tools"), port_name="http"
    )
    monitor = kubernetes.service_monitor(opts)
    assert monitor["spec"]["selector"] == {"matchLabels": {"app": "agent"}}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["agents", "tools"]}
    assert monitor["spec"]["endpoints"][0]["port"] == "http"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--namespace", "Bad_NS"], "namespace 'Bad_NS' is not a valid Kubernetes name"),
        (["--label", "novalue"], "--label 'novalue' is not key=value"),
        (["--selector", "app=bad value"], "is not a valid Kubernetes label value"),
        (["--interval", "soon"], "scrape interval 'soon' is not a duration"),
    ],
)
def test_bad_options_name_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["export", "kubernetes", str(tmp_path / "out"), *argv]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
