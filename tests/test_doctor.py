"""`doctor` against the real native stack, dead addresses, and apps that lack exemplars.

Jaeger cannot run on this machine, so its checks run against a small fake that serves the
documented query API (`/api/services`, `/api/traces` with `start`/`end` in microseconds).
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tta_observability._servers import LOCALHOST, ManagedProcess, free_port
from tta_observability.assets import asset_file
from tta_observability.cli import _heartbeat as hb
from tta_observability.cli import main
from tta_observability.mixin.rules import ALERT_PATH_FILE, WATCHDOG_ALERT

from .conftest import Prometheus
from .polling import wait_for
from .test_stack import am_alerts

SERVICE = "doctor-app"
HEARTBEAT = f"alertmanager: {WATCHDOG_ALERT} heartbeat active"

APP = textwrap.dedent(
    """
    import sys, time
    import tta_observability as tta

    port, sd_dir = int(sys.argv[1]), sys.argv[2]
    tta.setup(SERVICE_NAME, metrics_port=port, sd_dir=sd_dir or None, traces_exporter="none")

    @tta.observed(name="plan")
    def plan(x):
        return x

    for i in range(5):
        plan(i)
    while True:
        time.sleep(1)
    """
).replace("SERVICE_NAME", repr(SERVICE))


class FakeJaeger:
    """Jaeger's query API: known services, and traces as (service, start time in seconds)."""

    def __init__(self) -> None:
        self.services: list[str] = []
        self.traces: list[tuple[str, float]] = []
        self.server = ThreadingHTTPServer((LOCALHOST, 0), self._handler())
        self.url = f"http://{LOCALHOST}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/api/services":
                    body: dict[str, Any] = {"data": fake.services, "total": len(fake.services)}
                elif url.path == "/api/traces":
                    body = {"data": fake.find(query)}
                else:
                    self.send_error(404)
                    return
                body.update({"limit": 0, "offset": 0, "errors": None})
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def find(self, query: dict[str, str]) -> list[dict[str, Any]]:
        start, end = int(query["start"]), int(query["end"])
        found = []
        for n, (service, at) in enumerate(self.traces):
            at_us = int(at * 1_000_000)
            if service == query.get("service") and start <= at_us <= end:
                trace_id = f"{n + 1:032x}"
                span = {
                    "traceID": trace_id,
                    "spanID": f"{n + 1:016x}",
                    "operationName": "plan",
                    "references": [],
                    "startTime": at_us,
                    "duration": 1000,
                    "tags": [],
                    "logs": [],
                    "processID": "p1",
                    "warnings": None,
                }
                found.append(
                    {
                        "traceID": trace_id,
                        "spans": [span],
                        "processes": {"p1": {"serviceName": service, "tags": []}},
                        "warnings": None,
                    }
                )
        return found[: int(query.get("limit", "20"))]


@pytest.fixture
def jaeger() -> Iterator[FakeJaeger]:
    fake = FakeJaeger()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[Callable[..., str]]:
    started: list[ManagedProcess] = []
    script = tmp_path / "app.py"
    script.write_text(APP)

    def start(sd_dir: Path | None = None, env: dict[str, str] | None = None) -> str:
        import os

        port = free_port()
        url = f"http://{LOCALHOST}:{port}/metrics"
        saved = {k: os.environ.get(k) for k in env or {}}
        os.environ.update(env or {})
        try:
            proc = ManagedProcess(
                "app",
                [sys.executable, str(script), str(port), str(sd_dir or "")],
                url,
                tmp_path / f"app-{port}.log",
            )
            started.append(proc)
            proc.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return url

    yield start
    for proc in started:
        proc.stop()


def _doctor(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, dict[str, str]]]:
    code = main(["doctor", "--format", "json", "--timeout", "2", *args])
    rows = json.loads(capsys.readouterr().out)
    return code, {f"{r['component']}: {r['name']}": r for r in rows}


def _skip(*components: str) -> list[str]:
    return [arg for component in components for arg in ("--skip", component)]


def _dead() -> str:
    return f"http://{LOCALHOST}:{free_port()}"


def _wait_for_target_up(prometheus: str, app: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{prometheus}/api/v1/targets", timeout=5) as resp:
            targets = json.load(resp)["data"]["activeTargets"]
        if any(t["scrapeUrl"] == app and t["health"] == "up" for t in targets):
            return
        time.sleep(0.2)
    raise AssertionError(f"{app} never came up in {prometheus}")


def test_passes_against_the_native_stack(
    tmp_path: Path,
    start_app: Callable[..., str],
    jaeger: FakeJaeger,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tta_observability.stack import stack_up

    sd_dir = tmp_path / "sd"
    with stack_up(tmp_path / "stack", native=True, sd_dir=sd_dir, fast=True) as stack:
        app = start_app(sd_dir)
        jaeger.services = ["other", SERVICE]
        jaeger.traces = [(SERVICE, time.time() - 60)]
        _wait_for_target_up(stack.prometheus_url, app)
        # Real Prometheus evaluating the shipped rules every second, sending to the real
        # Alertmanager: the heartbeat arrives within the stack's 5 s resend delay.
        [heartbeat] = wait_for(
            lambda: am_alerts(stack.alertmanager_url, WATCHDOG_ALERT), "the heartbeat"
        )
        code, rows = _doctor(
            capsys,
            "--app",
            app,
            "--prometheus",
            stack.prometheus_url,
            "--alertmanager",
            stack.alertmanager_url,
            "--pushgateway",
            stack.pushgateway_url,
            "--jaeger",
            jaeger.url,
        )
    failed = {k: v for k, v in rows.items() if v["status"] != "PASS"}
    assert failed == {}
    assert code == 0
    assert list(rows) == [
        "app: metrics endpoint answers",
        "app: serves OpenMetrics",
        "app: exemplars present",
        "prometheus: Prometheus answers",
        "prometheus: app target discovered",
        "prometheus: app target up",
        "prometheus: rules loaded",
        "prometheus: exemplar storage on",
        "prometheus: Alertmanager connected",
        "alertmanager: Alertmanager answers",
        HEARTBEAT,
        "jaeger: Jaeger answers",
        "jaeger: Jaeger knows the service",
        "jaeger: traces in the last hour",
        "pushgateway: Pushgateway answers",
    ]
    assert rows["jaeger: Jaeger knows the service"]["detail"] == SERVICE
    assert rows["jaeger: traces in the last hour"]["detail"] == f"latest trace {1:032x}"
    assert rows["app: exemplars present"]["detail"].endswith("sample(s) carry one")
    assert rows[HEARTBEAT]["detail"] == f"active since {heartbeat['startsAt']}, receiver heartbeat"


def test_dead_addresses_fail_with_advice(capsys: pytest.CaptureFixture[str]) -> None:
    addresses = {c: _dead() for c in ("prometheus", "alertmanager", "jaeger", "pushgateway")}
    app = f"{_dead()}/metrics"
    args = ["--app", app]
    for component, url in addresses.items():
        args += [f"--{component}", url]
    code, rows = _doctor(capsys, *args)
    assert code == 1
    assert list(rows) == [
        "app: metrics endpoint answers",
        "prometheus: Prometheus answers",
        "alertmanager: Alertmanager answers",
        "jaeger: Jaeger answers",
        "pushgateway: Pushgateway answers",
    ]
    assert all(r["status"] == "FAIL" for r in rows.values())
    assert rows["app: metrics endpoint answers"]["detail"] == (
        f"{app} is unreachable: connection refused (nothing listens there)"
    )
    assert "setup(metrics_port=9464)" in rows["app: metrics endpoint answers"]["fix"]
    assert addresses["prometheus"] in rows["prometheus: Prometheus answers"]["detail"]
    assert "--prometheus URL" in rows["prometheus: Prometheus answers"]["fix"]
    assert "--pushgateway URL" in rows["pushgateway: Pushgateway answers"]["fix"]


def test_table_output_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "doctor",
            "--app",
            f"{_dead()}/metrics",
            *_skip("prometheus", "alertmanager", "jaeger", "pushgateway"),
            "--timeout",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert lines[1].startswith("FAIL  app: metrics endpoint answers")
    assert lines[2].strip().startswith("fix: start the app with tta_observability.setup(")
    assert lines[-1] == "0 passed, 1 failed - see the fixes above"


def test_app_without_exemplars_says_sampling(
    start_app: Callable[..., str], jaeger: FakeJaeger, capsys: pytest.CaptureFixture[str]
) -> None:
    app = start_app(env={"OTEL_TRACES_SAMPLER": "always_off"})
    jaeger.services = ["checkout", "search"]
    dead_collector = _dead()
    code, rows = _doctor(
        capsys,
        "--app",
        app,
        "--jaeger",
        jaeger.url,
        "--otlp-endpoint",
        dead_collector,
        *_skip("prometheus", "alertmanager", "pushgateway"),
    )
    assert code == 1
    assert rows["app: serves OpenMetrics"]["status"] == "PASS"
    exemplars = rows["app: exemplars present"]
    assert exemplars["status"] == "FAIL"
    assert exemplars["detail"] == (
        "5 observed call(s) but no exemplars: exemplars link only to sampled spans, so "
        "sampling is at 0 or no tracing is set up"
    )
    assert "OTEL_TRACES_SAMPLER" in exemplars["fix"]
    known = rows["jaeger: Jaeger knows the service"]
    assert known["status"] == "FAIL"
    assert known["detail"] == f"no service {SERVICE!r}; Jaeger knows: checkout, search"
    reasons = known["fix"].splitlines()
    assert reasons[0].startswith("sampling at 0: the app made calls but sampled none")
    assert f"collector not reachable: nothing listens at {dead_collector}" in reasons
    assert any(r.startswith("wrong service name?") for r in reasons)
    assert rows["jaeger: traces in the last hour"]["status"] == "SKIP"


def test_old_traces_only_says_time_range(
    start_app: Callable[..., str], jaeger: FakeJaeger, capsys: pytest.CaptureFixture[str]
) -> None:
    app = start_app()
    jaeger.services = [SERVICE]
    jaeger.traces = [(SERVICE, time.time() - 3 * 3600)]
    code, rows = _doctor(
        capsys,
        "--app",
        app,
        "--jaeger",
        jaeger.url,
        *_skip("prometheus", "alertmanager", "pushgateway"),
    )
    assert code == 1
    assert rows["app: exemplars present"]["status"] == "PASS"
    assert rows["jaeger: Jaeger knows the service"]["status"] == "PASS"
    recent = rows["jaeger: traces in the last hour"]
    assert recent["status"] == "FAIL"
    assert recent["detail"] == f"no trace of {SERVICE!r} in the last hour"
    assert recent["fix"].splitlines()[0].startswith("time range: Jaeger has older traces")


def test_misconfigured_prometheus(
    tmp_path: Path, start_app: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    app = start_app()
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: self\n    static_configs: [{{targets: ['{LOCALHOST}:{port}']}}]\n"
    )
    proc = ManagedProcess(
        "prometheus",
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={LOCALHOST}:{port}",
        ],
        f"http://{LOCALHOST}:{port}/-/ready",
        tmp_path / "prometheus.log",
    )
    with proc:
        _wait_for_target_up(f"http://{LOCALHOST}:{port}", f"http://{LOCALHOST}:{port}/metrics")
        code, rows = _doctor(
            capsys,
            "--app",
            app,
            "--prometheus",
            f"http://{LOCALHOST}:{port}",
            *_skip("alertmanager", "jaeger", "pushgateway"),
        )
    assert code == 1
    assert rows["prometheus: Prometheus answers"]["status"] == "PASS"
    discovered = rows["prometheus: app target discovered"]
    assert discovered["status"] == "FAIL"
    assert discovered["detail"] == f"no active target scrapes {app}; jobs: self"
    assert "TTA_OBSERVABILITY_SD_DIR" in discovered["fix"]
    assert rows["prometheus: app target up"]["status"] == "SKIP"
    rules = rows["prometheus: rules loaded"]
    assert rules["status"] == "FAIL"
    shipped_groups = sum(
        len(yaml.safe_load(path.read_text())["groups"])
        for path in (Path(__file__).resolve().parents[1] / "rules").glob("*.yml")
    )
    head, _, named = rules["detail"].partition(": ")
    assert head == f"{shipped_groups} shipped rule group(s) not loaded"
    assert len(named.split(", ")) == shipped_groups
    assert {"tta-health", "tta-llm", "tta-slo", "tta-llm-budget"} <= set(named.split(", "))
    storage = rows["prometheus: exemplar storage on"]
    assert storage["status"] == "FAIL"
    assert "--enable-feature=exemplar-storage" in storage["fix"]
    am = rows["prometheus: Alertmanager connected"]
    assert am["status"] == "FAIL"
    assert am["detail"] == "Prometheus sends alerts to no Alertmanager"


def test_bad_address_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--prometheus", "localhost:9090"]) == 1
    assert "--prometheus 'localhost:9090' is not an http:// or https:// URL" in (
        capsys.readouterr().err
    )


def test_port_held_by_another_process_is_not_no_call_yet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Another exporter on the port, then an app that ran setup() but made no call yet."""
    import tempfile

    from prometheus_client import CollectorRegistry, Counter, start_http_server

    other = CollectorRegistry()
    Counter("someone_elses_requests", "Not ours.", registry=other).inc()
    server, _ = start_http_server(0, addr=LOCALHOST, registry=other)
    try:
        app = f"http://{LOCALHOST}:{server.server_port}/metrics"
        code, rows = _doctor(
            capsys, "--app", app, *_skip("prometheus", "alertmanager", "jaeger", "pushgateway")
        )
        assert code == 1
        held = rows["app: served by tta_observability"]
        assert held["status"] == "FAIL"
        assert "held by another process" in held["detail"]
        assert "app: exemplars present" not in rows
    finally:
        server.shutdown()
        server.server_close()
    # A process of its own: this test process's store has other tests' calls.
    port = free_port()
    idle = ManagedProcess(
        sys.executable,
        [
            sys.executable,
            "-c",
            "import time, tta_observability as tto\n"
            f"tto.setup('idle-app', metrics_port={port})\n"
            "time.sleep(60)",
        ],
        f"http://{LOCALHOST}:{port}/metrics",
        Path(tempfile.mkdtemp()) / "idle.log",
    )
    with idle:
        code, rows = _doctor(
            capsys,
            "--app",
            f"http://{LOCALHOST}:{port}/metrics",
            *_skip("prometheus", "alertmanager", "jaeger", "pushgateway"),
        )
    assert "app: served by tta_observability" not in rows
    assert "no observed call has run yet" in rows["app: exemplars present"]["detail"]


def _watchdog_rule(prometheus: Prometheus) -> Any:
    groups = prometheus.api("/api/v1/rules", type="alert")["groups"]
    return next((r for g in groups for r in g["rules"] if r["name"] == WATCHDOG_ALERT), None)


def test_heartbeat_missing_says_which_side(
    tmp_path: Path,
    start_alertmanager: Callable[[], str],
    start_prometheus: Callable[..., Prometheus],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A real Alertmanager that no Prometheus sends the heartbeat to, seen from both sides."""
    alertmanager = start_alertmanager()

    def heartbeat(*args: str) -> dict[str, str]:
        code, rows = _doctor(
            capsys, "--alertmanager", alertmanager, *_skip("app", "jaeger", "pushgateway"), *args
        )
        assert code == 1
        assert rows[HEARTBEAT]["status"] == "FAIL"
        return rows[HEARTBEAT]

    missing = f"{WATCHDOG_ALERT} is not in Alertmanager"
    assert heartbeat("--skip", "prometheus")["detail"] == (
        f"{missing}: no Prometheus delivers the heartbeat here (Prometheus is skipped, so "
        "which side is broken is not known)"
    )
    dead = _dead()
    row = heartbeat("--prometheus", dead)
    assert row["detail"] == (
        f"{missing}: Prometheus at {dead} does not answer, so nothing evaluates the heartbeat rule"
    )
    assert "--prometheus URL" in row["fix"]

    # A Prometheus whose rule_files glob matches nothing yet, evaluating every second and
    # sending alerts nowhere.
    rules = tmp_path / "rules"
    rules.mkdir()
    prometheus = start_prometheus(
        f"global: {{evaluation_interval: 1s}}\nrule_files: ['{rules}/*.yml']\n"
    )
    row = heartbeat("--prometheus", prometheus.url)
    assert row["detail"] == (
        f"{missing}: Prometheus at {prometheus.url} has no {WATCHDOG_ALERT} rule, so the "
        f"alert-path rules ({ALERT_PATH_FILE}) are not loaded and the heartbeat is never "
        "evaluated"
    )
    assert "reload Prometheus" in row["fix"]
    # Do what the fix says: the rule now fires in Prometheus and still never reaches Alertmanager.
    (rules / ALERT_PATH_FILE).write_text(asset_file("rules", ALERT_PATH_FILE).read_text())
    urllib.request.urlopen(
        urllib.request.Request(f"{prometheus.url}/-/reload", method="POST"), timeout=10
    ).close()
    prometheus.wait_for(
        lambda: (_watchdog_rule(prometheus) or {}).get("state") == "firing", what="the rule"
    )
    row = heartbeat("--prometheus", prometheus.url)
    assert row["detail"] == (
        f"{WATCHDOG_ALERT} fires in Prometheus at {prometheus.url} but is not in this "
        "Alertmanager: Prometheus sends alerts to no Alertmanager, so delivery is broken"
    )
    assert "alerting.alertmanagers" in row["fix"]
    assert am_alerts(alertmanager, WATCHDOG_ALERT) == []


def test_silenced_heartbeat_fails(
    start_alertmanager: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The heartbeat in Alertmanager passes until a silence stops it reaching the receiver."""
    alertmanager = start_alertmanager()
    args = ["--alertmanager", alertmanager, *_skip("app", "prometheus", "jaeger", "pushgateway")]

    def post(path: str, payload: Any) -> Any:
        request = urllib.request.Request(
            f"{alertmanager}{path}",
            json.dumps(payload).encode(),
            {"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    # What Prometheus sends for the rule.
    post("/api/v2/alerts", [{"labels": {"alertname": WATCHDOG_ALERT, "severity": "none"}}])
    [alert] = wait_for(lambda: am_alerts(alertmanager, WATCHDOG_ALERT), "the alert")
    code, rows = _doctor(capsys, *args)
    assert (code, rows[HEARTBEAT]["status"]) == (0, "PASS")
    assert rows[HEARTBEAT]["detail"] == f"active since {alert['startsAt']}, receiver quiet"

    now = time.time()
    silence = post(
        "/api/v2/silences",
        {
            "matchers": [{"name": "alertname", "value": WATCHDOG_ALERT, "isRegex": False}],
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
            "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
            "createdBy": "test",
            "comment": "maintenance",
        },
    )["silenceID"]
    code, rows = _doctor(capsys, *args)
    assert (code, rows[HEARTBEAT]["status"]) == (1, "FAIL")
    assert rows[HEARTBEAT]["detail"] == (
        f"{WATCHDOG_ALERT} is silenced in Alertmanager (silence {silence}): the heartbeat "
        "receiver gets nothing, so the dead man's switch raises the alarm"
    )
    assert f"amtool silence expire {silence}" in rows[HEARTBEAT]["fix"]


def test_heartbeat_lost_between_prometheus_and_alertmanager() -> None:
    """Each Prometheus-side cause is told apart (the answers as /api/v1/rules shows them)."""
    prom, ours = "http://prom:9090", "http://am:9093"
    firing = {"name": WATCHDOG_ALERT, "type": "alerting", "state": "firing", "health": "ok"}
    assert hb.find_rule([{"rules": [{"name": "Other"}]}, {"rules": [firing]}]) is firing
    assert hb.find_rule([{"rules": [{"name": "Other"}]}]) is None
    elsewhere = hb.lost(prom, firing, ["http://other:9093/api/v2/alerts"], False, ours)
    assert elsewhere.detail == (
        f"{WATCHDOG_ALERT} fires in Prometheus at {prom} but is not in this Alertmanager: "
        f"Prometheus sends alerts to http://other:9093/api/v2/alerts, not to {ours}"
    )
    assert f"list {ours} under alerting.alertmanagers" in elsewhere.fix
    ours_too = hb.lost(prom, firing, [f"{ours}/api/v2/alerts"], True, ours)
    assert ours_too.detail == (
        f"{WATCHDOG_ALERT} fires in Prometheus at {prom} but is not in this Alertmanager, "
        "though Prometheus sends to it: delivery from Prometheus to Alertmanager fails, or has "
        "not been retried since Prometheus found this Alertmanager"
    )
    assert "--rules.alert.resend-delay" in ours_too.fix
    broken = hb.lost(prom, {**firing, "health": "err", "lastError": "boom"}, [], False, ours)
    assert broken.detail.endswith(f"Prometheus at {prom} fails to evaluate {WATCHDOG_ALERT}: boom")
    idle = hb.lost(prom, {**firing, "state": "inactive", "health": "unknown"}, [], False, ours)
    assert "it is inactive (rule health unknown)" in idle.detail
    assert not any(v.ok for v in (elsewhere, ours_too, broken, idle))
