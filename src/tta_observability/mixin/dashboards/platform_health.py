"""The Platform Health dashboard: targets, resources, span export, CI pushes, the alert path."""

from __future__ import annotations

from ... import contract as c
from ..config import DEFAULT, MixinConfig
from ..grafana import (
    Panel,
    Row,
    stat,
    state_timeline,
    table,
    target,
    thresholds,
    timeseries,
    value_text,
)
from ..promql import agg, increase, or_zero, rate, ratio, ratio_or_zero, selector
from ..rules import alert_path as ap
from ._common import (
    RANGE,
    RATE,
    Dashboard,
    is_,
    scrape_series,
    sel,
    with_app_labels,
)


def platform_health(config: MixinConfig = DEFAULT) -> Dashboard:
    scrape = "job, instance"
    up = scrape_series("up", config)
    spans = sel(c.SPANS_EXPORTED)
    pushed = 'environment=~"$environment"'
    return Dashboard(
        "platform-health",
        "TTA.dev / Platform Health",
        "Are the services up and scraped, how much CPU, memory and file descriptors they use, "
        "and whether spans and CI metrics get where they should.",
        [
            stat(
                "Targets up",
                "TTA app scrape targets (jobs matching tta.*) that answered their last scrape.",
                "short",
                target(f"sum({up})", "up"),
            ),
            stat(
                "Targets down",
                "TTA app scrape targets (jobs matching tta.*) whose last scrape failed.",
                "short",
                target(or_zero(f"count({up} == 0)"), "down"),
                thresholds=thresholds((None, "green"), (1, "red")),
            ),
            stat(
                "Calls in flight",
                "Observed calls running right now.",
                "short",
                target(agg("", sel(c.PRIMITIVE_IN_FLIGHT)), "in flight"),
            ),
            stat(
                "Span export failures",
                "Share of spans the exporter failed to send in the time range.",
                "percentunit",
                target(
                    ratio_or_zero(
                        agg("", increase(sel(c.SPANS_EXPORTED, 'result="failure"'), RANGE)),
                        agg("", increase(spans, RANGE)),
                        multiline=True,
                    ),
                    "failed",
                ),
                thresholds=thresholds((None, "green"), (0.001, "orange"), (0.01, "red")),
            ),
            stat(
                "Spans dropped",
                "Spans dropped because the export queue was full, in the time range.",
                "short",
                target(or_zero(agg("", increase(sel(c.SPANS_DROPPED), RANGE))), "dropped"),
                thresholds=thresholds((None, "green"), (1, "red")),
            ),
            stat(
                "Label values folded",
                "Label values the cardinality guard folded into __overflow__ in the time range.",
                "short",
                target(or_zero(agg("", increase(sel(c.LABEL_OVERFLOW), RANGE))), "folded"),
                thresholds=thresholds((None, "green"), (1, "orange")),
            ),
            state_timeline(
                "Targets",
                "Whether each TTA app scrape target answered (up) over time.",
                "none",
                target(
                    agg(f"service_name, environment, {scrape}", up, op="max"),
                    "{{service_name}} {{environment}} {{instance}}",
                ),
                mappings=value_text({"0": ("down", "red"), "1": ("up", "green")}),
                thresholds=thresholds((None, "red"), (1, "green")),
            ),
            timeseries(
                "Scrape duration",
                "How long each scrape of a TTA app took; near the scrape timeout, samples go "
                "missing.",
                "s",
                target(
                    agg(scrape, scrape_series("scrape_duration_seconds", config), op="max"),
                    "{{job}} {{instance}}",
                ),
            ),
            timeseries(
                "Samples per scrape",
                "Samples each scrape of a TTA app returned, and new series it added (cardinality "
                "growth).",
                "short",
                target(
                    agg(scrape, scrape_series("scrape_samples_scraped", config), op="max"),
                    "{{instance}} samples",
                ),
                target(
                    agg(scrape, scrape_series("scrape_series_added", config), op="max"),
                    "{{instance}} new series",
                ),
            ),
            timeseries(
                "CPU",
                "CPU used by each service process (1 = one core).",
                "percentunit",
                target(
                    with_app_labels(rate("process_cpu_seconds_total", RATE)),
                    "{{service_name}} {{instance}}",
                ),
            ),
            timeseries(
                "Resident memory",
                "Resident memory of each service process.",
                "bytes",
                target(
                    with_app_labels("process_resident_memory_bytes"),
                    "{{service_name}} {{instance}}",
                ),
            ),
            timeseries(
                "Open file descriptors",
                "Open file descriptors as a share of the process limit.",
                "percentunit",
                target(
                    with_app_labels("process_open_fds / process_max_fds"),
                    "{{service_name}} {{instance}}",
                ),
            ),
            timeseries(
                "Calls in flight by primitive",
                "Observed calls running, by primitive.",
                "short",
                target(agg("primitive_name", sel(c.PRIMITIVE_IN_FLIGHT)), "{{primitive_name}}"),
                stack=True,
            ),
            timeseries(
                "Span export",
                "Spans handed to the exporter per second by result, and spans dropped.",
                "ops",
                target(agg("result", rate(spans, RATE)), "{{result}}"),
                target(agg("", rate(sel(c.SPANS_DROPPED), RATE)), "dropped"),
            ),
            table(
                "Pushgateway jobs",
                "Jobs that pushed to a Pushgateway: time since their last push and last failed "
                "push, and (for CI steps) since the last success.",
                "s",
                target(agg("job", f"time() - push_time_seconds{{{pushed}}}", op="min"), "push"),
                target(
                    agg("job", f"time() - push_failure_time_seconds{{{pushed}}}", op="min"),
                    "failed",
                ),
                target(agg("job", f"time() - {sel(c.CI_STEP_LAST_SUCCESS)}", op="min"), "success"),
                width=12,
                rename={
                    "Value #A": "Since last push",
                    "Value #B": "Since last failed push",
                    "Value #C": "Since last success",
                },
            ),
            timeseries(
                "CI step duration",
                "Duration of the last run of each CI step pushed by tta-observability ci run.",
                "s",
                target(agg("job", sel(c.CI_STEP_DURATION), op="max"), "{{job}}"),
                width=6,
            ),
            timeseries(
                "CI step runs per hour",
                "Runs of each CI step in the last hour (rolling), by status.",
                "short",
                target(
                    agg("job, status", increase(sel(c.CI_STEP_RUNS), "1h")),
                    "{{job}} {{status}}",
                ),
                width=6,
                stack=True,
            ),
            table(
                "Running builds",
                "Versions running, from tta_build_info: one row per build, with its instances.",
                "short",
                target(
                    agg(
                        "service_name, environment, version, commit, tta_observability_version",
                        sel(c.BUILD_INFO),
                        op="count",
                    ),
                    "builds",
                ),
                rename={"Value": "Instances"},
            ),
            *_alert_path(config),
        ],
    )


def _alert_path(config: MixinConfig) -> list[Panel | Row]:
    """The alert path watching itself: what the alerts of tta-alert-path.rules.yml read."""
    cfg = config
    prom, am, col = cfg.prometheus_selector, cfg.alertmanager_selector, cfg.collector_selector
    heartbeat = selector(
        "ALERTS", [is_("alertname", ap.WATCHDOG_ALERT), is_("alertstate", "firing")]
    )
    spans = "job, instance, exporter"
    return [
        Row("Alert path"),
        state_timeline(
            "Alert pipeline heartbeat",
            "Whether TTAWatchdog, the alert that always fires, is firing: when it is not, "
            "Prometheus does not evaluate rules and no alert can fire.",
            "none",
            target(or_zero(agg("", heartbeat, "max")), "TTAWatchdog"),
            mappings=value_text({"0": ("silent", "red"), "1": ("alive", "green")}),
            thresholds=thresholds((None, "red"), (1, "green")),
            width=6,
        ),
        timeseries(
            "Notifications failed",
            "Share of the notifications Alertmanager attempted that failed, by integration "
            "(TTAAlertmanagerNotificationsFailing above 1 %).",
            "percentunit",
            target(
                ratio(
                    agg("integration", rate(selector(ap.AM_FAILED, [am]), RATE)),
                    agg("integration", rate(selector(ap.AM_NOTIFICATIONS, [am]), RATE)),
                    multiline=True,
                ),
                "{{integration}}",
            ),
            width=6,
        ),
        timeseries(
            "Rule evaluation failures",
            "Failed rule evaluations per interval, by rule group (TTAPrometheusRuleFailures).",
            "short",
            target(
                agg("rule_group", increase(selector(ap.RULE_FAILURES, [prom]), RATE)),
                "{{rule_group}}",
            ),
            bars=True,
            width=6,
        ),
        timeseries(
            "Alert delivery to Alertmanager",
            "Alertmanagers Prometheus has discovered, and alerts per second it dropped because "
            "it could not send them (TTAPrometheusAlertmanagerUnreachable).",
            "short",
            target(agg("", selector(ap.AMS_DISCOVERED, [prom]), "min"), "Alertmanagers"),
            target(
                or_zero(agg("", rate(selector(ap.NOTIFICATIONS_DROPPED, [prom]), RATE))),
                "alerts dropped/s",
            ),
            width=6,
        ),
        timeseries(
            "Collector span export",
            "Spans per second the OpenTelemetry Collector sent and failed to send, by exporter "
            "(TTACollectorExportFailing).",
            "ops",
            target(
                agg(spans, rate(selector(ap.COLLECTOR_SENT_SPANS, [col]), RATE)),
                "{{exporter}} sent",
            ),
            target(
                agg(spans, rate(selector(ap.COLLECTOR_FAILED_SPANS, [col]), RATE)),
                "{{exporter}} failed",
            ),
            width=24,
        ),
    ]
