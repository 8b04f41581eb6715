"""Alerts on the alert path itself: a heartbeat, failing notifications, failing rules, an
unreachable Alertmanager and a Collector that cannot export.

When any of these breaks, every other alert goes silent while the dashboards stay green. The
heartbeat (``TTAWatchdog``) always fires: its absence at the receiving end is the only signal
that survives a broken Prometheus or Alertmanager.
"""

from __future__ import annotations

from typing import Final

from ..config import MixinConfig
from ..promql import agg, rate
from .model import Alert

WATCHDOG_ALERT: Final = "TTAWatchdog"

# Series of Prometheus, Alertmanager and the Collector (in contract.EXTERNAL_SERIES).
AM_FAILED: Final = "alertmanager_notifications_failed_total"
AM_NOTIFICATIONS: Final = "alertmanager_notifications_total"
RULE_FAILURES: Final = "prometheus_rule_evaluation_failures_total"
AMS_DISCOVERED: Final = "prometheus_notifications_alertmanagers_discovered"
NOTIFICATIONS_DROPPED: Final = "prometheus_notifications_dropped_total"
# The Collector (0.161, built by scripts/build-components.sh) exposes its own counters without
# the _total suffix; tests/test_e2e_tracing.py reads them from the real one.
COLLECTOR_FAILED_SPANS: Final = "otelcol_exporter_send_failed_spans"
COLLECTOR_SENT_SPANS: Final = "otelcol_exporter_sent_spans"

_TARGET = ("job", "instance")
_AT = "{{ $labels.instance }} (job {{ $labels.job }})"


def _sel(name: str, selector: str) -> str:
    return f"{name}{{{selector}}}"


def _notifications_failing(config: MixinConfig) -> str:
    by = (*_TARGET, "integration")
    failed = agg(by, rate(_sel(AM_FAILED, config.alertmanager_selector), "5m"))
    attempted = agg(by, rate(_sel(AM_NOTIFICATIONS, config.alertmanager_selector), "5m"))
    return f"{failed} / {attempted} > 0.01"


def _alertmanager_unreachable(config: MixinConfig) -> str:
    discovered = agg(_TARGET, _sel(AMS_DISCOVERED, config.prometheus_selector), "max")
    dropped = agg(_TARGET, rate(_sel(NOTIFICATIONS_DROPPED, config.prometheus_selector), "5m"))
    return f"{discovered} < 1 or {dropped} > 0"


def _collector_export_failing(config: MixinConfig) -> str:
    by = (*_TARGET, "exporter")
    failed = agg(by, rate(_sel(COLLECTOR_FAILED_SPANS, config.collector_selector), "5m"))
    sent = agg(by, rate(_sel(COLLECTOR_SENT_SPANS, config.collector_selector), "5m"))
    return (
        f"{failed} / ({failed} + {sent}) > {config.span_export_failure_ratio:g}"
        f" and {failed} * 300 >= {config.span_export_min_failures_5m}"
    )


def alert_path_alerts(config: MixinConfig) -> list[Alert]:
    return [
        Alert(
            WATCHDOG_ALERT,
            "vector(1)",
            "none",
            "The alert pipeline is alive (heartbeat)",
            "Always firing, on purpose: Prometheus evaluates rules and Alertmanager delivers this "
            "to the heartbeat receiver every minute. A dead man's switch outside the stack (or a "
            "check of Alertmanager's API for it) raises the alarm when it stops arriving; it never "
            "pages.",
        ),
        Alert(
            "TTAAlertmanagerNotificationsFailing",
            _notifications_failing(config),
            "critical",
            f"Alertmanager {_AT} fails to send {{{{ $labels.integration }}}} notifications",
            f"{{{{ $value | humanizePercentage }}}} of the {{{{ $labels.integration }}}} "
            f"notifications of Alertmanager {_AT} failed over the last 5 minutes: pages and "
            "tickets sent that way are not arriving.",
            for_="5m",
        ),
        Alert(
            "TTAPrometheusRuleFailures",
            agg(
                (*_TARGET, "rule_group"),
                f"increase({_sel(RULE_FAILURES, config.prometheus_selector)}[5m])",
            )
            + " > 0",
            "critical",
            "Prometheus fails to evaluate rules of {{ $labels.rule_group }}",
            f"Prometheus {_AT} failed {{{{ $value | humanize }}}} evaluations of rule group "
            "{{ $labels.rule_group }} in the last 5 minutes: its recording rules have gaps and "
            "its alerts cannot fire.",
            for_="15m",
        ),
        Alert(
            "TTAPrometheusAlertmanagerUnreachable",
            _alertmanager_unreachable(config),
            "critical",
            f"Prometheus {_AT} cannot deliver alerts to Alertmanager",
            f"Prometheus {_AT} has discovered no Alertmanager, or drops the alerts it fails to "
            "send, for 10 minutes: no alert reaches a receiver. This notification itself only "
            "arrives through another Alertmanager; the missing TTAWatchdog heartbeat is the "
            "signal that gets out.",
            for_="10m",
        ),
        Alert(
            "TTACollectorExportFailing",
            _collector_export_failing(config),
            "warning",
            "Collector {{ $labels.instance }} fails to export spans to {{ $labels.exporter }}",
            "{{ $value | humanizePercentage }} of the spans the OpenTelemetry Collector "
            f"{_AT} sent to exporter {{{{ $labels.exporter }}}} over the last 5 minutes failed: "
            "traces and exemplar links are missing in the trace backend.",
            for_="10m",
        ),
    ]
