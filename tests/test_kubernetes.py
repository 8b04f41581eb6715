"""`export kubernetes`: the manifests, parsed and checked field by field, and the real tools."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tta_observability import kubernetes, stack
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


# The ServiceMonitor keeps its targets off pods the PodMonitor scrapes.
DROP_POD_MONITOR_PODS = {
    "action": "drop",
    "sourceLabels": ["__meta_kubernetes_pod_label_tta_dev_scrape"],
    "separator": ";",
    "regex": "pod",
}
SET_JOB = {"action": "replace", "targetLabel": "job", "replacement": "tta-apps"}


@pytest.mark.parametrize(
    ("file", "kind", "name", "endpoints_key", "selector", "relabelings"),
    [
        (
            "servicemonitor.yaml",
            "ServiceMonitor",
            "tta-apps",
            "endpoints",
            {"tta.dev/scrape": "service"},
            [DROP_POD_MONITOR_PODS, SET_JOB],
        ),
        (
            "podmonitor.yaml",
            "PodMonitor",
            "tta-apps-pods",
            "podMetricsEndpoints",
            {"tta.dev/scrape": "pod"},
            [SET_JOB],
        ),
    ],
)
def test_monitors(
    exported: Path,
    file: str,
    kind: str,
    name: str,
    endpoints_key: str,
    selector: dict[str, str],
    relabelings: list[dict[str, Any]],
) -> None:
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
    assert spec["selector"] == {"matchLabels": selector}
    assert spec["namespaceSelector"] == {"any": True}
    assert spec[endpoints_key] == [
        {
            "port": "metrics",
            "path": "/metrics",
            "interval": "15s",
            "honorLabels": True,
            "relabelings": relabelings,
        }
    ]
    assert set(spec) == {"selector", "namespaceSelector", endpoints_key}


def _selected(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _kept(relabelings: list[dict[str, Any]], meta: dict[str, str]) -> bool:
    """Prometheus' drop action: the joined source label values fully match the regex."""
    for r in relabelings:
        if r["action"] == "drop":
            joined = r["separator"].join(meta.get(name, "") for name in r["sourceLabels"])
            if re.fullmatch(r["regex"], joined):
                return False
    return True


def _scrapes_per_pod(
    opts: kubernetes.Options, service_labels: dict[str, str], pod_labels: dict[str, str]
) -> int:
    """How often one pod behind one Service is scraped, following the operator's semantics."""
    sm, pm = kubernetes.service_monitor(opts), kubernetes.pod_monitor(opts)
    meta = {
        "__meta_kubernetes_pod_label_" + re.sub(r"[^A-Za-z0-9_]", "_", k): v
        for k, v in pod_labels.items()
    }
    by_service = _selected(sm["spec"]["selector"]["matchLabels"], service_labels) and _kept(
        sm["spec"]["endpoints"][0]["relabelings"], meta
    )
    by_pod = _selected(pm["spec"]["selector"]["matchLabels"], pod_labels)
    return int(by_service) + int(by_pod)


@pytest.mark.parametrize(
    "opts",
    [
        kubernetes.Options(),
        kubernetes.Options(selector={"app": "agent"}, pod_selector={"team": "ai", "tier": "a.b"}),
    ],
    ids=["default", "custom"],
)
def test_no_pod_is_scraped_twice(opts: kubernetes.Options) -> None:
    service_values = [{}, dict(opts.selector), dict(opts.pod_selector)]
    pod_values = [{}, dict(opts.selector), dict(opts.pod_selector)]
    for service_labels in service_values:
        for pod_labels in pod_values:
            count = _scrapes_per_pod(opts, service_labels, pod_labels)
            assert count <= 1, (service_labels, pod_labels)
    # As documented: label the Service, or (no Service) the Pods; each is scraped exactly once.
    assert _scrapes_per_pod(opts, dict(opts.selector), {}) == 1
    assert _scrapes_per_pod(opts, {}, dict(opts.pod_selector)) == 1
    # Both labelled by mistake: the PodMonitor scrapes the pod, the ServiceMonitor drops it.
    assert _scrapes_per_pod(opts, dict(opts.selector), dict(opts.pod_selector)) == 1


def test_monitor_relabelings_pass_promtool(exported: Path, tmp_path: Path) -> None:
    """The operator copies relabelings into relabel_configs; Prometheus must accept them."""
    if shutil.which("promtool") is None:
        pytest.fail("promtool missing: apt-get install prometheus")
    snake = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    jobs = []
    for file in ("servicemonitor.yaml", "podmonitor.yaml"):
        (doc,) = _docs(exported / file)
        [endpoint] = next(v for k, v in doc["spec"].items() if k.endswith("ndpoints"))
        jobs.append(
            {
                "job_name": file.removesuffix(".yaml"),
                "static_configs": [{"targets": ["127.0.0.1:9464"]}],
                "relabel_configs": [
                    {snake.get(k, k): v for k, v in r.items()} for r in endpoint["relabelings"]
                ],
            }
        )
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": jobs}))
    result = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(config)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_folder_is_the_one_compose_provisions() -> None:
    """Issue 5: one folder "TTA.dev" whether Grafana runs from compose or in Kubernetes."""
    providers = "grafana/provisioning/dashboards/"
    [provider_file] = [f for f in asset_files("compose") if f.relpath.startswith(providers)]
    [provider] = yaml.safe_load(provider_file.read_text())["providers"]
    assert provider["folder"] == "TTA.dev"
    assert kubernetes.Options().grafana_folder == provider["folder"]
    for cm in kubernetes.dashboard_config_maps(kubernetes.Options()):
        assert cm["metadata"]["annotations"] == {"grafana_folder": "TTA.dev"}


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
        assert cm["metadata"]["annotations"] == {"grafana_folder": "TTA.dev"}
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
    raw = _amtool_check(tmp_path / "raw.yaml", text)
    if "url_file" in config_keys(config):
        # Debian's amtool 0.25 predates url_file (Alertmanager 0.26, which the operator's
        # Alertmanager must run): the config must fail on that field alone and pass once only
        # it is inlined.
        assert raw.returncode != 0
        assert "field url_file not found" in raw.stdout + raw.stderr
        inlined = stack.render_alertmanager(config, {}, webhook_url="http://incident.test/hook")
        raw = _amtool_check(tmp_path / "inlined.yaml", stack.dump_yaml(inlined))
    assert raw.returncode == 0, raw.stdout + raw.stderr


def config_keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node).union(*(config_keys(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(config_keys(v) for v in node))
    return set()


def _amtool_check(path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path.write_text(text)
    return subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True)


def test_options_change_selectors_and_namespaces() -> None:
    opts = kubernetes.Options(
        selector={"app": "agent"},
        pod_selector={"app": "agent-pod"},
        app_namespaces=("agents", "tools"),
        port_name="http",
    )
    monitor = kubernetes.service_monitor(opts)
    assert monitor["spec"]["selector"] == {"matchLabels": {"app": "agent"}}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["agents", "tools"]}
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["relabelings"][0] == {
        "action": "drop",
        "sourceLabels": ["__meta_kubernetes_pod_label_app"],
        "separator": ";",
        "regex": "agent-pod",
    }
    pods = kubernetes.pod_monitor(opts)
    assert pods["spec"]["selector"] == {"matchLabels": {"app": "agent-pod"}}
    assert pods["spec"]["namespaceSelector"] == {"matchNames": ["agents", "tools"]}


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (
            kubernetes.Options(selector={"app": "a"}, pod_selector={"app": "a"}),
            "the Service selector and the Pod selector are the same (app=a): the "
            "ServiceMonitor and the PodMonitor would select the same apps; give Services and "
            "Pods different values (default tta.dev/scrape=service and tta.dev/scrape=pod)",
        ),
        (kubernetes.Options(pod_selector={}), "the Pod selector is empty"),
        (kubernetes.Options(selector={}), "the Service selector is empty"),
        (
            kubernetes.Options(pod_selector={"tier": "-x"}),
            "label value '-x' for 'tier' is not a valid Kubernetes label value",
        ),
    ],
)
def test_bad_selectors_name_the_problem(opts: kubernetes.Options, message: str) -> None:
    with pytest.raises(kubernetes.ManifestError) as info:
        kubernetes.manifests(opts)
    assert message in str(info.value)


def test_docs_name_the_selectors_and_every_secret_file(exported: Path) -> None:
    doc = " ".join((Path(__file__).parents[1] / "docs" / "cli.md").read_text().split())
    opts = kubernetes.Options()
    for labels in (opts.selector, opts.pod_selector):
        for key, value in labels.items():
            assert f"`{key}: {value}`" in doc
            assert f"`{key}={value}`" in doc
    (secret,) = _docs(exported / "alertmanager-secret.yaml")
    config = base64.b64decode(secret["data"]["alertmanager.yaml"]).decode()
    files = re.findall(r"_file:\s*/etc/alertmanager/secrets/tta-alertmanager-secrets/(\w+)", config)
    assert files
    for name in files:
        assert f"`{name}`" in doc, f"docs/cli.md does not list the secret key {name}"


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


def test_cli_selectors_reach_the_monitors(tmp_path: Path) -> None:

    out = tmp_path / "k8s"
    code = main(
        [
            "export",
            "kubernetes",
            str(out),
            "--selector",
            "team=agents",
            "--pod-selector",
            "team=agents-pods",
        ]
    )
    assert code == 0
    service_monitor = yaml.safe_load((out / "servicemonitor.yaml").read_text())
    pod_monitor = yaml.safe_load((out / "podmonitor.yaml").read_text())
    assert service_monitor["spec"]["selector"]["matchLabels"] == {"team": "agents"}
    assert pod_monitor["spec"]["selector"]["matchLabels"] == {"team": "agents-pods"}
    assert (
        main(
            [
                "export",
                "kubernetes",
                str(tmp_path / "bad"),
                "--selector",
                "a=b",
                "--pod-selector",
                "a=b",
                "--force",
            ]
        )
        != 0
    )
