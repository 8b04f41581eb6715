"""The native stack (real Prometheus, Alertmanager, Pushgateway, VictoriaMetrics) and discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from tta_observability import contract, discovery, stack
from tta_observability._servers import LOCALHOST, ManagedProcess, free_port

from .polling import wait_for

ROOT = Path(__file__).resolve().parents[1]
APP = "stack-test-app"


def get_json(url: str, **params: Any) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}{query}", timeout=10) as resp:
        return json.load(resp)


def prom(url: str, path: str, **params: Any) -> Any:
    body = get_json(f"{url}{path}", **params)
    assert body["status"] == "success", body
    return body["data"]


def post_json(url: str, payload: Any) -> None:
    req = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert 200 <= resp.status < 300


class WebhookReceiver:
    """A local incident endpoint: records Alertmanager's webhook calls with their auth header."""

    def __init__(self) -> None:
        received: list[tuple[str, dict[str, Any]]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.headers.get("Authorization", ""), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer((LOCALHOST, free_port()), Handler)
        self.url = f"http://{LOCALHOST}:{self.server.server_port}/alertmanager"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, alertname: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (auth, alert)
            for auth, payload in self.received
            for alert in payload["alerts"]
            if alert["labels"].get("alertname") == alertname
        ]


class App:
    """A process-local metrics endpoint with contract metrics, announced by discovery.register."""

    def __init__(self, sd_dir: Path, service: str) -> None:
        self.registry = CollectorRegistry()
        labels = [*contract.COMMON_LABELS, "primitive_type", "primitive_name"]
        self.calls = Counter(
            contract.PRIMITIVE_EXECUTIONS.name.removesuffix("_total"),
            contract.PRIMITIVE_EXECUTIONS.help,
            [*labels, "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            contract.PRIMITIVE_DURATION.name,
            contract.PRIMITIVE_DURATION.help,
            labels,
            buckets=contract.DURATION_BUCKETS_SECONDS,
            registry=self.registry,
        )
        values = {"service_name": service, "environment": "dev"}
        prim = {**values, "primitive_type": "function", "primitive_name": "step"}
        self.calls.labels(**prim, status="success").inc(3)
        self.duration.labels(**prim).observe(0.2, exemplar={"trace_id": "ab" * 16})
        self.port = free_port()
        self.server, _ = start_http_server(self.port, LOCALHOST, registry=self.registry)
        self.target = discovery.register(sd_dir, LOCALHOST, self.port, values)

    def close(self) -> None:
        discovery.unregister(self.target)
        self.server.shutdown()
        self.server.server_close()


FEDERATION_RULE = """
groups:
  - name: stack-test
    rules:
      - record: tta:stack_test_calls:sum
        expr: sum by (service_name, environment) (tta_primitive_executions_total)
"""


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory, webhook: WebhookReceiver
) -> Iterator[stack.StackHandle]:
    work = tmp_path_factory.mktemp("stack")
    extra = work / "extra-rules.yml"
    extra.write_text(FEDERATION_RULE)
    handle = stack.stack_up(
        work,
        profile="longterm,federation",
        fast=True,
        webhook_url=webhook.url,
        extra_rule_files=[extra],
        environment="dev",
        # The Collector and Jaeger have their own tests (test_e2e_tracing.py).
        tracing=False,
    )
    try:
        yield handle
    finally:
        handle.down()


@pytest.fixture(scope="module")
def app(running: stack.StackHandle) -> Iterator[App]:
    application = App(running.sd_dir, APP)
    yield application
    application.close()


def app_target_up(url: str, service: str) -> Any:
    result = prom(url, "/api/v1/query", query=f'up{{job="tta-apps",service_name="{service}"}} == 1')
    return result["result"]


# --- the stack ---------------------------------------------------------------------------------


def test_stack_state_file_records_pids_and_ports(running: stack.StackHandle) -> None:
    status = stack.stack_status(running.workdir)
    assert set(status["services"]) == {
        "alertmanager",
        "pushgateway",
        "prometheus",
        "victoriametrics",
        "prometheus-global",
    }
    for name, service in status["services"].items():
        assert service["running"] is True, name
        assert service["url"] == f"http://127.0.0.1:{service['port']}"
        assert service["pid"] == running.services[name].pid


def test_prometheus_ready_with_exemplar_storage(running: stack.StackHandle, app: App) -> None:
    flags = prom(running.prometheus_url, "/api/v1/status/flags")
    assert "exemplar-storage" in flags["enable-feature"].split(",")
    # More than the SLO rules' 30-day budget window.
    assert flags["storage.tsdb.retention.time"] == "31d"
    global_flags = prom(running.global_prometheus_url, "/api/v1/status/flags")
    assert global_flags["storage.tsdb.retention.time"] == stack.GLOBAL_RETENTION_TIME
    config = yaml.safe_load(prom(running.prometheus_url, "/api/v1/status/config")["yaml"])
    assert config["global"]["external_labels"] == {"environment": "dev"}
    name = f"{contract.PRIMITIVE_DURATION.name}_bucket"

    def exemplars() -> Any:
        now = time.time()
        return prom(
            running.prometheus_url,
            "/api/v1/query_exemplars",
            query=f'{name}{{service_name="{APP}"}}',
            start=now - 300,
            end=now + 60,
        )

    found = wait_for(exemplars, "an exemplar scraped from the app")
    labels = [e["labels"] for series in found for e in series["exemplars"]]
    assert {"trace_id": "ab" * 16} in labels


def test_shipped_rules_are_loaded(running: stack.StackHandle) -> None:
    groups = prom(running.prometheus_url, "/api/v1/rules")["groups"]
    loaded = {(Path(g["file"]).name, g["name"]) for g in groups}
    expected = set()
    for path in [*(ROOT / "rules").glob("*.yml"), ROOT / "compose/prometheus/rules/escalation.yml"]:
        expected |= {(path.name, g["name"]) for g in yaml.safe_load(path.read_text())["groups"]}
    assert expected <= loaded
    assert ("escalation.yml", "tta-escalation") in loaded
    assert len(expected) >= 2


def test_alertmanager_connected(running: stack.StackHandle) -> None:
    def active() -> Any:
        return prom(running.prometheus_url, "/api/v1/alertmanagers")["activeAlertmanagers"]

    urls = [a["url"] for a in wait_for(active, "Prometheus to find Alertmanager")]
    assert urls == [f"{running.alertmanager_url}/api/v2/alerts"]


def test_app_discovered_then_gone_after_unregister(running: stack.StackHandle) -> None:
    other = App(running.sd_dir, "stack-test-other")
    try:
        wait_for(lambda: app_target_up(running.prometheus_url, "stack-test-other"), "scrape")
        targets = prom(running.prometheus_url, "/api/v1/targets", state="active")
        [target] = [
            t
            for t in targets["activeTargets"]
            if t["labels"].get("service_name") == "stack-test-other"
        ]
        assert target["labels"]["job"] == "tta-apps"
        assert target["scrapeUrl"] == f"http://127.0.0.1:{other.port}/metrics"
        calls = prom(
            running.prometheus_url,
            "/api/v1/query",
            query=f'{contract.PRIMITIVE_EXECUTIONS.name}{{service_name="stack-test-other"}}',
        )["result"]
        assert [float(r["value"][1]) for r in calls] == [3.0]
    finally:
        other.close()

    def gone() -> bool:
        targets = prom(running.prometheus_url, "/api/v1/targets", state="active")
        return not any(
            t["labels"].get("service_name") == "stack-test-other" for t in targets["activeTargets"]
        )

    wait_for(gone, "the target to disappear after unregister", timeout=15)


def alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {
            "summary": f"{name} test",
            "description": "value 42",
            "runbook_url": f"https://example.test/runbooks/{name}.md",
        },
    }


def am_alerts(url: str, alertname: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = get_json(
        f"{url}/api/v2/alerts", filter=f'alertname="{alertname}"'
    )
    return result


def test_alert_routed_to_paging_and_webhook_gets_runbook(
    running: stack.StackHandle, webhook: WebhookReceiver
) -> None:
    post_json(
        f"{running.alertmanager_url}/api/v2/alerts",
        [alert("StackTestPage", "critical", service_name="svc-a", slo="checkout")],
    )
    [routed] = wait_for(lambda: am_alerts(running.alertmanager_url, "StackTestPage"), "alert")
    assert [r["name"] for r in routed["receivers"]] == ["paging"]
    [(auth, delivered)] = wait_for(lambda: webhook.alerts("StackTestPage"), "the webhook call")
    token = (running.secrets_dir / "incident_webhook_token").read_text()
    assert auth == f"Bearer {token}"
    assert (
        delivered["annotations"]["runbook_url"] == "https://example.test/runbooks/StackTestPage.md"
    )
    assert delivered["labels"]["slo"] == "checkout"


@pytest.mark.parametrize(("severity", "receiver"), [("warning", "ticket"), ("info", "digest")])
def test_non_critical_alerts_routed(
    running: stack.StackHandle, severity: str, receiver: str
) -> None:
    name = f"StackTestRoute{severity}"
    post_json(f"{running.alertmanager_url}/api/v2/alerts", [alert(name, severity)])
    [routed] = wait_for(lambda: am_alerts(running.alertmanager_url, name), "alert")
    assert [r["name"] for r in routed["receivers"]] == [receiver]


def test_inhibition(running: stack.StackHandle) -> None:
    burn = "TTASLOErrorBudgetBurn"
    spike = "TTAPrimitiveErrorRateSpike"
    same = {"service_name": "svc-b", "slo": "search", "environment": "dev"}
    crashed = {"service_name": "svc-e", "environment": "dev"}
    posted = [
        alert(burn, "critical", **same),
        alert(burn, "warning", **same),
        alert(burn, "warning", **{**same, "slo": "other"}),
        # One instance down is a warning (muted at night): it must not hide the service's page.
        alert("TTAMetricsTargetDown", "warning", service_name="svc-c", environment="dev"),
        alert(burn, "critical", service_name="svc-c", environment="dev", slo="pay"),
        alert(spike, "warning", service_name="svc-c", environment="dev"),
        alert(spike, "warning", service_name="svc-d", environment="dev"),
        # The whole service is down: one page for it, its symptoms stay quiet.
        alert("TTAServiceDown", "critical", **crashed),
        alert(burn, "critical", **crashed, slo="crash"),
        alert(spike, "warning", **crashed),
        alert("TTACriticalAlertUnresolved", "critical", **crashed, escalation="tier2"),
    ]
    post_json(f"{running.alertmanager_url}/api/v2/alerts", posted)
    names = {a["labels"]["alertname"] for a in posted}

    def states() -> dict[tuple[str, str, str], str] | None:
        found = {}
        for name in names:
            for a in am_alerts(running.alertmanager_url, name):
                labels = a["labels"]
                key = (name, labels["severity"], labels.get("slo") or labels["service_name"])
                found[key] = a["status"]["state"]
        done = len(found) == len(posted) and "unprocessed" not in found.values()
        return found if done else None

    found = wait_for(states, "every posted alert processed")
    assert found == {
        (burn, "critical", "search"): "active",
        (burn, "warning", "search"): "suppressed",
        (burn, "warning", "other"): "active",
        ("TTAMetricsTargetDown", "warning", "svc-c"): "active",
        (burn, "critical", "pay"): "active",
        (spike, "warning", "svc-c"): "active",
        (spike, "warning", "svc-d"): "active",
        ("TTAServiceDown", "critical", "svc-e"): "active",
        (burn, "critical", "crash"): "suppressed",
        (spike, "warning", "svc-e"): "suppressed",
        ("TTACriticalAlertUnresolved", "critical", "svc-e"): "active",
    }


def test_pushgateway_scraped_with_honor_labels(running: stack.StackHandle) -> None:
    body = f'{contract.CI_STEP_RUNS.name}{{status="success"}} 2\n'.encode()
    req = urllib.request.Request(
        f"{running.pushgateway_url}/metrics/job/stack-test-ci/environment/dev", body, method="PUT"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200

    def scraped() -> Any:
        query = f'{contract.CI_STEP_RUNS.name}{{job="stack-test-ci"}}'
        return prom(running.prometheus_url, "/api/v1/query", query=query)["result"]

    [series] = wait_for(scraped, "the pushed series in Prometheus")
    assert series["metric"]["environment"] == "dev"
    assert series["metric"]["status"] == "success"
    assert float(series["value"][1]) == 2.0


def test_remote_write_lands_in_victoriametrics(running: stack.StackHandle, app: App) -> None:
    def in_vm() -> Any:
        with urllib.request.urlopen(f"{running.victoriametrics_url}/internal/force_flush"):
            pass
        query = f'{contract.PRIMITIVE_EXECUTIONS.name}{{service_name="{APP}"}}'
        return prom(running.victoriametrics_url, "/api/v1/query", query=query)["result"]

    [series] = wait_for(in_vm, "the app's series in VictoriaMetrics")
    assert float(series["value"][1]) == 3.0
    assert series["metric"]["environment"] == "dev"
    assert series["metric"]["job"] == "tta-apps"


def test_global_prometheus_federates_tta_series(running: stack.StackHandle, app: App) -> None:
    def federated() -> Any:
        query = f'tta:stack_test_calls:sum{{service_name="{APP}"}}'
        return prom(running.global_prometheus_url, "/api/v1/query", query=query)["result"]

    [series] = wait_for(federated, "the tta: series in the global Prometheus")
    assert float(series["value"][1]) == 3.0
    assert series["metric"]["environment"] == "dev"
    assert series["metric"]["job"] == "tta-federate"
    # Only tta: recording rules travel: the raw series stay in the environment Prometheus.
    raw = prom(
        running.global_prometheus_url,
        "/api/v1/query",
        query=f"{contract.PRIMITIVE_EXECUTIONS.name}",
    )["result"]
    assert raw == []


def test_rendered_alertmanager_posts_to_the_given_webhook(
    running: stack.StackHandle, webhook: WebhookReceiver
) -> None:
    path = running.workdir / "config" / "alertmanager.yml"
    # The URL may carry a token: the rendered file is the owner's alone.
    assert path.stat().st_mode & 0o777 == 0o600
    receivers = {r["name"]: r for r in yaml.safe_load(path.read_text())["receivers"]}
    for name in ("paging", "escalation", "ticket"):
        [hook] = receivers[name]["webhook_configs"]
        assert hook_url(hook, running.secrets_dir) == webhook.url
    assert running.webhook_url == webhook.url


def hook_url(hook: dict[str, Any], secrets_dir: Path) -> str:
    """The webhook's address: inlined for Alertmanager 0.25, else the shipped url_file's."""
    am = running_program("alertmanager")
    if am_knows_url_file(am):
        assert "url" not in hook
        assert hook["url_file"] == str(secrets_dir.resolve() / stack.WEBHOOK_URL_FILE)
        path = Path(hook["url_file"])
        assert path.stat().st_mode & 0o777 == 0o600
        return path.read_text().strip()
    assert "url_file" not in hook
    return str(hook["url"])


def running_program(name: str) -> str:
    from tta_observability._components import find_program

    found = find_program(name)
    assert found is not None
    return found


def am_knows_url_file(path: str) -> bool:
    from tta_observability._components import program_version

    version = program_version(path)
    return version is not None and version >= (0, 26, 0)


def test_no_secrets_no_failing_notifications(
    running: stack.StackHandle, webhook: WebhookReceiver
) -> None:
    """Integrations without their secret file are left out: nothing retries and logs failures."""
    assert sorted(running.disabled) == [
        "digest/slack",
        "escalation/pagerduty",
        "paging/pagerduty",
        "ticket/slack",
    ]
    name = "StackTestQuiet"
    post_json(
        f"{running.alertmanager_url}/api/v2/alerts",
        [alert(name, "critical", service_name="svc-q", slo="checkout")],
    )
    wait_for(lambda: webhook.alerts(name), "the webhook call")
    log = (running.workdir / "logs" / "alertmanager.log").read_text()
    assert "Notify for alerts failed" not in log
    assert "Error on notify" not in log


def test_webhook_url_comes_from_argument_env_or_secret_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(stack.WEBHOOK_URL_ENV, raising=False)
    assert stack.resolve_webhook_url(None, tmp_path) is None
    (tmp_path / stack.WEBHOOK_URL_FILE).write_text("https://file.example.test/a\n")
    assert stack.resolve_webhook_url(None, tmp_path) == "https://file.example.test/a"
    monkeypatch.setenv(stack.WEBHOOK_URL_ENV, "http://127.0.0.1:8080/env")
    assert stack.resolve_webhook_url(None, tmp_path) == "http://127.0.0.1:8080/env"
    assert stack.resolve_webhook_url("https://arg.test/x", tmp_path) == "https://arg.test/x"
    monkeypatch.setenv(stack.WEBHOOK_URL_ENV, "ftp://nope")
    with pytest.raises(ValueError, match="TTA_ALERT_WEBHOOK_URL must be an absolute http"):
        stack.resolve_webhook_url(None, tmp_path)
    with pytest.raises(ValueError, match=r"webhook_url must be an absolute http.*'/relative'"):
        stack.resolve_webhook_url("/relative", tmp_path)


def test_cli_stack_up_takes_webhook_url_and_secrets_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tta_observability.cli import main

    work, keys = tmp_path / "cli-stack", tmp_path / "keys"
    url = "http://127.0.0.1:9/hook/secret-path"
    argv = ["stack", "up", "--native", "--free-ports", "--workdir", str(work)]
    assert main([*argv, "--webhook-url", url, "--secrets-dir", str(keys)]) == 0
    try:
        out = capsys.readouterr().out
        assert f"alertmanager secrets in {keys}\n" in out
        assert "incident webhook: http://127.0.0.1:9/...\n" in out
        assert "secret-path" not in out
        assert (keys / "incident_webhook_token").stat().st_mode & 0o777 == 0o600
        config = yaml.safe_load((work / "config" / "alertmanager.yml").read_text())
        [paging] = [r for r in config["receivers"] if r["name"] == "paging"]
        assert [hook_url(h, keys) for h in paging["webhook_configs"]] == [url]
        token = paging["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"]
        assert token == str(keys / "incident_webhook_token")
    finally:
        assert main(["stack", "down", "--workdir", str(work)]) == 0
    assert main([*argv[:2], "--workdir", str(tmp_path / "docker"), "--webhook-url", "x:y"]) == 1
    err = capsys.readouterr().err
    assert f"{(tmp_path / 'docker').resolve() / '.env'} is missing" in err


def test_stack_down_from_another_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(stack.WEBHOOK_URL_ENV, raising=False)
    monkeypatch.setenv(stack.SECRETS_DIR_ENV, str(tmp_path / "keys"))
    handle = stack.stack_up(tmp_path / "w")
    assert handle.secrets_dir == tmp_path / "keys"
    assert (tmp_path / "keys" / "incident_webhook_token").is_file()
    # No webhook address anywhere: the incident webhook is left out, Alertmanager still starts.
    assert handle.webhook_url is None
    config = yaml.safe_load((tmp_path / "w" / "config" / "alertmanager.yml").read_text())
    assert all("webhook_configs" not in r for r in config["receivers"])
    pids = [s.pid for s in handle.services.values()]
    assert all(p is not None and Path(f"/proc/{p}").exists() for p in pids)
    with pytest.raises(stack.StackError, match="already running"):
        stack.stack_up(tmp_path / "w")
    code = "import sys, tta_observability.stack as s; print(s.stack_down(sys.argv[1]))"
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "w")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # The Collector and Jaeger run too when they are built (scripts/build-components.sh).
    tracing = ["otel-collector", "jaeger"] if "jaeger" in handle.services else []
    assert out.strip() == str([*tracing, "prometheus", "pushgateway", "alertmanager"])
    for proc in handle._processes:
        assert proc.proc is not None
        proc.proc.wait(5)
    assert not (tmp_path / "w" / stack.STATE_FILE).exists()
    assert stack.stack_down(tmp_path / "w") == []


def test_bad_stack_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown stack profile 'huge'"):
        stack.stack_up(tmp_path, profile="huge")
    with pytest.raises(ValueError, match="port for prometheus"):
        stack.stack_up(tmp_path, ports={"prometheus": 70000})
    with pytest.raises(ValueError, match="unknown services in ports"):
        stack.stack_up(tmp_path, ports={"grafana": 3000})
    assert not (tmp_path / stack.STATE_FILE).exists()


def test_render_drops_docker_only_parts() -> None:
    base = yaml.safe_load((ROOT / "compose/prometheus/prometheus.yml").read_text())
    rendered = stack.render_prometheus(base, {stack.PROMETHEUS: "127.0.0.1:1"}, "1s")
    jobs = {sc["job_name"]: sc for sc in rendered["scrape_configs"]}
    assert set(jobs) == {"tta-apps", "prometheus"}
    assert "docker_sd_configs" not in jobs["tta-apps"]
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["127.0.0.1:1"]}]
    assert rendered["global"]["scrape_interval"] == "1s"
    assert base["global"]["scrape_interval"] == "15s"


def test_docker_discovery_keeps_only_the_stack_network(tmp_path: Path) -> None:
    """The shipped tta-apps relabeling in a real Prometheus, fed the labels Docker discovery
    gives a container on two networks, plus a file-discovered app."""
    sd_dir = tmp_path / "file_sd"
    sd_dir.mkdir()
    docker = {
        "__meta_docker_container_label_tta_observability_port": "9464",
        "__meta_docker_container_name": "/other-project-app-1",
    }
    groups = [
        {
            "targets": ["172.18.0.5:80"],
            "labels": {
                **docker,
                "__meta_docker_network_name": "tta-observability",
                "__meta_docker_network_ip": "172.18.0.5",
            },
        },
        {
            "targets": ["172.19.0.5:80"],
            "labels": {
                **docker,
                "__meta_docker_network_name": "other-project_default",
                "__meta_docker_network_ip": "172.19.0.5",
            },
        },
        {"targets": ["127.0.0.1:1"], "labels": {"service_name": "file-discovered"}},
    ]
    (sd_dir / "targets.json").write_text(json.dumps(groups))
    base = yaml.safe_load((ROOT / "compose/prometheus/prometheus.yml").read_text())
    rendered = stack.render_prometheus(base, {stack.CONTAINER_FILE_SD: f"{sd_dir}/"}, "1s")
    [apps] = [sc for sc in rendered["scrape_configs"] if sc["job_name"] == "tta-apps"]
    config = tmp_path / "prometheus.yml"
    config.write_text(stack.dump_yaml({"global": rendered["global"], "scrape_configs": [apps]}))
    port = free_port()
    url = f"http://{LOCALHOST}:{port}"
    argv = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address={LOCALHOST}:{port}",
    ]
    with ManagedProcess("prometheus", argv, f"{url}/-/ready", tmp_path / "prometheus.log"):

        def discovered() -> Any:
            targets = prom(url, "/api/v1/targets")
            seen = len(targets["activeTargets"]) + len(targets["droppedTargets"])
            return targets if seen == len(groups) else None

        targets = wait_for(discovered, "all three targets discovered")
    active = sorted(t["scrapeUrl"] for t in targets["activeTargets"])
    assert active == ["http://172.18.0.5:9464/metrics", "http://host.docker.internal:1/metrics"]
    [dropped] = targets["droppedTargets"]
    assert dropped["discoveredLabels"]["__meta_docker_network_name"] == "other-project_default"


# --- discovery ---------------------------------------------------------------------------------


def test_register_writes_file_sd_json(tmp_path: Path) -> None:
    path = discovery.register(
        tmp_path / "sd", "127.0.0.1", 9464, {"service_name": "shop", "environment": "prod"}
    )
    assert path == tmp_path / "sd" / f"shop-{os.getpid()}.json"
    assert json.loads(path.read_text()) == [
        {"targets": ["127.0.0.1:9464"], "labels": {"environment": "prod", "service_name": "shop"}}
    ]
    assert sorted(p.name for p in (tmp_path / "sd").iterdir()) == [path.name]
    assert path.stat().st_mode & 0o777 == 0o644
    discovery.unregister(path)
    assert not path.exists()
    discovery.unregister(path)


def test_register_uses_env_dir_and_ipv6(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(discovery.SD_DIR_ENV, str(tmp_path))
    path = discovery.register(None, "::1", 8000, service="my app/1")
    assert path.parent == tmp_path
    assert path.name == f"my_app_1-{os.getpid()}.json"
    assert json.loads(path.read_text())[0]["targets"] == ["[::1]:8000"]


def test_register_rejects_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(discovery.SD_DIR_ENV, raising=False)
    with pytest.raises(ValueError, match="TTA_OBSERVABILITY_SD_DIR"):
        discovery.register(None, "127.0.0.1", 1)
    with pytest.raises(ValueError, match="port must be an integer"):
        discovery.register(tmp_path, "127.0.0.1", 0)
    with pytest.raises(ValueError, match="neither an IP address nor a host name"):
        discovery.register(tmp_path, "bad host", 80)
    with pytest.raises(ValueError, match="label name '__address__'"):
        discovery.register(tmp_path, "127.0.0.1", 80, {"__address__": "x"})
    with pytest.raises(ValueError, match="label 'env' must be a string"):
        discovery.register(tmp_path, "127.0.0.1", 80, {"env": 1})  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []


def test_doctor_reports_what_the_stack_was_started_without(
    running: stack.StackHandle, app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """``doctor --workdir`` checks the stack at its own addresses; Jaeger, left out of this
    stack, is reported as not part of it, not as a failure."""
    from tta_observability.cli import main

    wait_for(lambda: app_target_up(running.prometheus_url, APP), "the app target up")
    metrics = f"http://{LOCALHOST}:{app.port}/metrics"
    # This app is prometheus-client alone, no setup(): doctor's app checks are not the point.
    args = ["doctor", "--workdir", str(running.workdir), "--app", metrics, "--skip", "app"]
    args += ["--format", "json"]
    code = main(args)
    rows = {f"{r['component']}: {r['name']}": r for r in json.loads(capsys.readouterr().out)}
    assert rows["jaeger: part of the stack"] == {
        "component": "jaeger",
        "name": "part of the stack",
        "status": "SKIP",
        "detail": "not part of this stack: not requested (tracing=False)",
        "fix": "",
    }
    assert [k for k in rows if k.startswith("jaeger:")] == ["jaeger: part of the stack"]
    assert {k: r["detail"] for k, r in rows.items() if r["status"] == "FAIL"} == {}
    assert code == 0
    assert rows["alertmanager: Alertmanager answers"]["detail"] == (
        f"{running.alertmanager_url}/-/healthy"
    )
