"""Live, on the native stack: a failing leaf in a nested workflow pages once, for the leaf.

The rules are exported with ``tta-observability export rules --config``: the shipped rules with
two settings changed so that the test takes seconds, not the shipped 5 minutes, and is delivered
at any hour: TTAPrimitiveErrorRateSpike pending for 10 s, and critical (a warning goes to the
ticket receiver, muted out of working hours). Everything else is the real path: the library in
an app process, file-based discovery, Prometheus evaluating the rules, Alertmanager routing with
the shipped tree, a local webhook receiving the notifications.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tta_observability import cli, stack

from .polling import wait_for
from .test_alert_pipeline import app_process, metrics_port
from .test_stack import WebhookReceiver, am_alerts, prom

SERVICE = "e2e-one-page"
SPIKE = "TTAPrimitiveErrorRateSpike"
LEVELS = ("answer", "plan", "retrieve", "llm_call")

# answer -> plan -> retrieve -> llm_call; llm_call always fails, 20 runs a second.
APP = f"""
import signal, sys, time
import tta_observability as tta

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
handle = tta.setup({SERVICE!r}, environment="dev", sd_dir=sys.argv[1], metrics_port=0,
                   traces_exporter="none")
print(handle.metrics_port, flush=True)

class RateLimitError(Exception):
    pass

@tta.observed(name="llm_call")
def llm_call():
    raise RateLimitError("429")

@tta.observed(name="retrieve")
def retrieve():
    return llm_call()

@tta.observed(name="plan")
def plan():
    return retrieve()

@tta.observed(name="answer")
def answer():
    return plan()

while True:
    try:
        answer()
    except RateLimitError:
        pass
    time.sleep(0.05)
"""

CONFIG = f"""
alert_for: {{{SPIKE}: 10s}}
alert_severity: {{{SPIKE}: critical}}
"""


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    with receiver.server:  # closes the socket on the way out
        yield receiver
        receiver.server.shutdown()


@pytest.fixture(scope="module")
def native_stack(
    tmp_path_factory: pytest.TempPathFactory, webhook: WebhookReceiver
) -> Iterator[stack.StackHandle]:
    """One stack for both tests."""
    tmp_path = tmp_path_factory.mktemp("one-page")
    (tmp_path / "mixin.yml").write_text(CONFIG, encoding="utf-8")
    rules = tmp_path / "rules"
    assert cli.main(["export", "rules", "--config", str(tmp_path / "mixin.yml"), str(rules)]) == 0
    handle = stack.stack_up(tmp_path / "stack", fast=True, webhook_url=webhook.url, rules_dir=rules)
    try:
        yield handle
    finally:
        handle.down()


@pytest.fixture
def failing_app(native_stack: stack.StackHandle, tmp_path: Path) -> Iterator[int]:
    log = tmp_path / "app.log"
    with app_process(APP, native_stack.sd_dir, log) as proc:
        yield metrics_port(proc, log)


def _query(url: str, expr: str) -> dict[str, float]:
    """primitive_name -> value of an instant query over this test's service."""
    result = prom(url, "/api/v1/query", query=expr)["result"]
    return {r["metric"].get("primitive_name", ""): float(r["value"][1]) for r in result}


def _spike_alerts(payloads: list[dict[str, Any]]) -> set[tuple[tuple[str, str], ...]]:
    """The distinct error-spike alerts of this service in the webhook's notifications."""
    return {
        tuple(sorted(a["labels"].items()))
        for p in payloads
        for a in p["alerts"]
        if a["labels"].get("alertname") == SPIKE and a["labels"].get("service_name") == SERVICE
    }


@pytest.mark.slow
def test_failing_leaf_pages_once(
    native_stack: stack.StackHandle, webhook: WebhookReceiver, failing_app: int
) -> None:
    url = native_stack.prometheus_url

    def payloads() -> list[dict[str, Any]]:
        return [p for _, p in webhook.received]

    first = wait_for(lambda: _spike_alerts(payloads()), "the error-spike page", timeout=90)
    # Wait until every ancestor has failed as often as the leaf for longer than the alert's
    # pending time: a rule on failed calls would have paged for all four levels by now.
    ratio = f'tta:primitive_error_ratio:rate5m{{service_name="{SERVICE}"}}'
    held = f"min_over_time(({ratio} > 0.1)[15s:1s])"
    wait_for(lambda: set(_query(url, held)) >= set(LEVELS), "every level to fail for 15 s")
    firing = _query(url, f'ALERTS{{alertname="{SPIKE}", service_name="{SERVICE}"}}')
    assert set(firing) == {"llm_call"}
    # Exactly one error-spike notification: one alert, for the leaf, naming the workflow.
    alerts = _spike_alerts(payloads())
    assert alerts == first
    [labels] = [dict(a) for a in alerts]
    assert (labels["primitive_name"], labels["workflow"]) == ("llm_call", "answer")
    spike_payloads = [p for p in payloads() if p["commonLabels"].get("alertname") == SPIKE]
    assert len(spike_payloads) == 1
    assert spike_payloads[0]["receiver"] == "paging"
    # The metrics tell where it started: raised at the leaf, propagated by the three above.
    raised = (
        f'sum by (primitive_name, origin) (tta_primitive_errors_total{{service_name="{SERVICE}"}})'
    )
    origins = {
        (r["metric"]["primitive_name"], r["metric"]["origin"])
        for r in prom(url, "/api/v1/query", query=raised)["result"]
    }
    assert origins == {
        ("llm_call", "raised"),
        ("retrieve", "propagated"),
        ("plan", "propagated"),
        ("answer", "propagated"),
    }


@pytest.mark.slow
def test_the_alert_path_is_scraped_and_the_heartbeat_reaches_its_receiver(
    native_stack: stack.StackHandle, webhook: WebhookReceiver
) -> None:
    """The native stack scrapes its own components, and TTAWatchdog goes to the heartbeat."""
    url = native_stack.prometheus_url

    def scraped() -> set[str]:
        result = prom(url, "/api/v1/query", query="up == 1")["result"]
        return {r["metric"]["job"] for r in result}

    wait_for(lambda: {"prometheus", "alertmanager", "pushgateway"} <= scraped(), "the scrapes")

    def heartbeat() -> list[dict[str, Any]]:
        return am_alerts(native_stack.alertmanager_url, "TTAWatchdog")

    # Prometheus often evaluates the rule before it has discovered Alertmanager and drops that
    # first notification; the fast stack resends after 5 s (Prometheus' default: a minute).
    [alert] = wait_for(heartbeat, "the heartbeat in Alertmanager", timeout=90)
    assert [r["name"] for r in alert["receivers"]] == ["heartbeat"]
    assert alert["labels"]["severity"] == "none"
    # The heartbeat receiver notifies nobody by default: nothing reaches the incident webhook.
    assert not [
        p for _, p in webhook.received if p["commonLabels"].get("alertname") == "TTAWatchdog"
    ]
    # The alert-path series the rules read are there to read.
    for series in (
        'prometheus_notifications_alertmanagers_discovered{job="prometheus"}',
        'alertmanager_notifications_total{job="alertmanager"}',
    ):
        assert wait_for(lambda s=series: prom(url, "/api/v1/query", query=s)["result"], series)
