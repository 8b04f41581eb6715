"""End to end on the native stack: an app's failing SLO pages a human through the shipped rules.

Nothing is wired by hand: the app announces itself through file-based discovery, Prometheus
evaluates the shipped TTASLOErrorBudgetBurn rule (``for: 2m``, so this takes about 2.5 minutes),
Alertmanager routes the page with the shipped route tree, and a local webhook receives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tta_observability import contract, stack

from .test_stack import WebhookReceiver, am_alerts, prom, wait_for

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "e2e-pipeline"
SLO_NAME = "e2e"
BURN = "TTASLOErrorBudgetBurn"
CALLS_PER_SECOND = 10

# Every SLO call fails, at a steady rate, until the test stops the process by PID. SIGTERM
# becomes a normal exit so that shutdown() removes the discovery file.
APP = f"""
import signal, sys, time
import tta_observability as tta

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
slo = tta.SLO({SLO_NAME!r}, 0.999)
handle = tta.setup(
    {SERVICE!r},
    environment="dev",
    sd_dir=sys.argv[1],
    metrics_port=0,
    slos=[slo],
    traces_exporter="none",
)
print(handle.metrics_port, flush=True)


@tta.observed(name="charge", slo=slo)
def charge():
    raise RuntimeError("payment backend down")


while True:
    try:
        charge()
    except RuntimeError:
        pass
    time.sleep({1 / CALLS_PER_SECOND})
"""


def shipped_runbook() -> str:
    """The runbook link the shipped critical burn-rate rules carry."""
    rules = yaml.safe_load((ROOT / "rules" / "tta-slo.rules.yml").read_text())
    links = {
        rule["annotations"]["runbook_url"]
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == BURN and rule["labels"]["severity"] == "critical"
    }
    [link] = links
    return str(link)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def native_stack(tmp_path: Path, webhook: WebhookReceiver) -> Iterator[stack.StackHandle]:
    handle = stack.stack_up(tmp_path / "stack", fast=True, webhook_url=webhook.url)
    try:
        yield handle
    finally:
        handle.down()


@contextlib.contextmanager
def app_process(script: str, sd_dir: Path, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``script`` running with ``sd_dir`` as its argument, stopped by PID with SIGTERM.

    The script prints its metrics port first; read it from the process' stdout.
    """
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(sd_dir)],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def metrics_port(proc: subprocess.Popen[bytes], log_path: Path) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip().isdigit(), log_path.read_text()
    return int(line)


@pytest.fixture
def failing_app(native_stack: stack.StackHandle, tmp_path: Path) -> Iterator[int]:
    """The app process; yields its metrics port once setup() has announced it."""
    log = tmp_path / "app.log"
    with app_process(APP, native_stack.sd_dir, log) as proc:
        yield metrics_port(proc, log)
    assert proc.returncode == 0, log.read_text()
    # A clean exit unregisters the target: nothing is left for Prometheus to scrape.
    assert list(native_stack.sd_dir.iterdir()) == []


def firing_burns(prometheus_url: str) -> list[dict[str, Any]]:
    return [
        a
        for a in prom(prometheus_url, "/api/v1/alerts")["alerts"]
        if a["labels"].get("alertname") == BURN
        and a["labels"].get("severity") == "critical"
        and a["labels"].get("service_name") == SERVICE
        and a["state"] == "firing"
    ]


@pytest.mark.slow
def test_failing_slo_pages_the_webhook_with_its_runbook(
    native_stack: stack.StackHandle, webhook: WebhookReceiver, failing_app: int
) -> None:
    url = native_stack.prometheus_url
    gateway = native_stack.services["pushgateway"].argv
    assert f"--persistence.file={native_stack.workdir / 'pushgateway' / 'metrics.db'}" in gateway

    # Discovered through the file the app's setup() wrote: no target was written by hand.
    def discovered() -> list[dict[str, Any]]:
        targets = prom(url, "/api/v1/targets", state="active")["activeTargets"]
        return [
            t for t in targets if t["labels"].get("service_name") == SERVICE and t["health"] == "up"
        ]

    [target] = wait_for(discovered, "Prometheus to discover and scrape the app")
    assert target["labels"]["job"] == "tta-apps"
    assert target["scrapeUrl"] == f"http://127.0.0.1:{failing_app}/metrics"

    # The shipped rule holds for 2 minutes before it fires; evaluation runs every second.
    started = time.monotonic()
    firing = wait_for(lambda: firing_burns(url), "the critical burn to fire", timeout=240)
    assert time.monotonic() - started > 100  # the rule's for: 2m was honoured, not bypassed
    assert {a["labels"]["slo"] for a in firing} == {SLO_NAME}
    assert {a["labels"]["environment"] for a in firing} == {"dev"}

    # Every call failed: the scraped counters agree exactly, and are past the traffic guard.
    at = time.time()
    series = {
        metric.name: prom(
            url, "/api/v1/query", query=f'{metric.name}{{service_name="{SERVICE}"}}', time=at
        )["result"]
        for metric in (contract.SLO_REQUESTS, contract.SLO_ERRORS)
    }
    [requests] = series[contract.SLO_REQUESTS.name]
    [errors] = series[contract.SLO_ERRORS.name]
    assert requests["metric"]["slo"] == errors["metric"]["slo"] == SLO_NAME
    assert float(errors["value"][1]) == float(requests["value"][1]) >= 10

    # Alertmanager routes it to the paging receiver, and the incident webhook gets it.
    def routed() -> list[dict[str, Any]]:
        alerts = am_alerts(native_stack.alertmanager_url, BURN)
        return [a for a in alerts if a["labels"].get("service_name") == SERVICE]

    for alert in wait_for(routed, "the page in Alertmanager"):
        assert [r["name"] for r in alert["receivers"]] == ["paging"]
        assert alert["status"]["state"] == "active"

    def delivered() -> list[tuple[str, dict[str, Any]]]:
        return [
            (auth, payload)
            for auth, payload in webhook.received
            if payload["status"] == "firing"
            and any(a["labels"].get("service_name") == SERVICE for a in payload["alerts"])
        ]

    auth, payload = wait_for(delivered, "the webhook call", timeout=30)[0]
    token = (native_stack.secrets_dir / "incident_webhook_token").read_text()
    assert auth == f"Bearer {token}"
    assert payload["receiver"] == "paging"
    assert payload["commonLabels"]["alertname"] == BURN
    assert payload["commonLabels"]["severity"] == "critical"
    assert payload["commonLabels"]["slo"] == SLO_NAME
    assert payload["commonAnnotations"]["runbook_url"] == shipped_runbook()
    for alert in payload["alerts"]:
        assert alert["labels"]["service_name"] == SERVICE
        assert alert["annotations"]["runbook_url"] == shipped_runbook()
