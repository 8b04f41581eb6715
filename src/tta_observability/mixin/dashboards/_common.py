"""Conventions shared by the dashboard suite, as in the monitoring mixins.

A common tag and tag-based links, a stable ``uid`` per dashboard, a ``datasource`` variable used
by every panel and target, ``environment`` / ``service_name`` / ``primitive`` variables filtering
every query whose metric has those labels, ``$__rate_interval``, a unit and a description on every
panel, deployment annotations, and exemplars on latency panels so a spike links to the trace
behind it. Every query is built from :mod:`tta_observability.contract` metrics or the names the
recording rules record, so a panel cannot query a series that nothing emits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ... import contract as c
from ..config import MixinConfig, check_runbook_base_url
from ..grafana import (
    DS,
    JSON,
    SCHEMA_VERSION,
    Panel,
    Row,
    layout,
    query_variable,
    target,
    thresholds,
    timeseries,
)
from ..promql import agg, increase, rate, selector
from ..rules import names as n
from ..rules.slo import slo_windows

TAG = "tta-observability"
UID_PREFIX = "tta-"
#: Window of every ``rate()`` over the dashboard's step, and of range-wide aggregates.
RATE: Final = "$__rate_interval"
RANGE: Final = "$__range"

#: Label -> matcher for the template variables that filter queries. ``allValue`` is ``.*`` so
#: "All" also matches series that lack the label, and stays a short regex however many values
#: the variable has.
VARIABLE_MATCHERS: dict[str, str] = {
    "environment": 'environment=~"$environment"',
    "service_name": 'service_name=~"$service_name"',
    "primitive_name": 'primitive_name=~"$primitive"',
}

#: Statuses that count as a failed call, as in the recording rules.
FAILED_STATUSES = "|".join(n.FAILED_STATUSES)

# Recorded series the dashboards read, with the labels their rules aggregate by.
SLO_KEY = n.SLO_KEY
SERVICE = n.SERVICE
BUDGET_LEFT = n.SLO_ERROR_BUDGET_REMAINING
SERVICE_CALL_RATE = n.SERVICE_PRIMITIVE_EXECUTIONS_RATE5M


def burn_windows(config: MixinConfig) -> tuple[str, ...]:
    """Windows shown on the burn-rate panel: every window an alert pairs, short and long."""
    return tuple(
        w
        for w in slo_windows(config)
        if any(w in (b.long, b.short) for b in config.burn_rate_windows)
    )


GOOD_HIGH = thresholds((None, "red"), (0.99, "orange"), (0.999, "green"))
BAD_HIGH = thresholds((None, "green"), (1.0, "orange"), (6.0, "red"))


def _labels_of(metric: c.Metric) -> tuple[str, ...]:
    # CI series are pushed with ``job`` and ``environment`` as grouping keys: no service_name.
    if metric.group == "ci":
        return ("environment", *metric.labels)
    return metric.all_labels


def sel(metric: c.Metric, *matchers: str, suffix: str = "") -> str:
    """``name{...}`` filtered by every template variable whose label ``metric`` carries."""
    labels = _labels_of(metric)
    parts = [m for label, m in VARIABLE_MATCHERS.items() if label in labels]
    return selector(metric.name + suffix, [*parts, *matchers])


def rec(name: str, labels: Sequence[str], *matchers: str) -> str:
    """A recorded series, filtered by the template variables among ``labels``, the labels its
    rule aggregates by (the tests check them against the rule)."""
    parts = [m for label, m in VARIABLE_MATCHERS.items() if label in labels]
    return selector(name, [*parts, *matchers])


def quantile(q: float, metric: c.Metric, labels: str, window: str = RATE) -> str:
    group = f"le, {labels}" if labels else "le"
    return f"histogram_quantile({q}, {agg(group, rate(sel(metric, suffix='_bucket'), window))})"


def with_app_labels(expr: str) -> str:
    """Adds ``service_name`` and ``environment`` to a process or scrape series, and filters on them.

    prometheus-client's process collector knows nothing of the service, so its series are joined
    on the scrape target with ``tta_build_info``, which carries the common labels.
    """
    info = agg("job, instance, service_name, environment", sel(c.BUILD_INFO), op="max")
    return f"{expr}\n* on (job, instance) group_left (service_name, environment)\n{info}"


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    description: str
    items: Sequence[Panel | Row]
    extra_variables: Sequence[JSON] = ()
    #: Annotations besides the deployment markers every dashboard has.
    extra_annotations: Sequence[JSON] = ()
    refresh: str = "30s"
    time_from: str = "now-6h"

    @property
    def uid(self) -> str:
        return UID_PREFIX + self.slug

    @property
    def filename(self) -> str:
        return f"{self.slug}.json"


def variables() -> list[JSON]:
    """The variables every dashboard of the suite has, in the order Grafana shows them."""
    env = VARIABLE_MATCHERS["environment"]
    env_svc = f"{env}, {VARIABLE_MATCHERS['service_name']}"
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "description": "The Prometheus (or compatible) data source every panel queries.",
            "type": "datasource",
            "query": "prometheus",
            "current": {"selected": True, "text": "Prometheus", "value": "prometheus"},
            "options": [],
            "hide": 0,
            "includeAll": False,
            "multi": False,
            "refresh": 1,
            "regex": "",
            "skipUrlSync": False,
        },
        query_variable(
            "environment",
            "Environment",
            f"label_values({c.BUILD_INFO.name}, environment)",
            "Deployment environment, from setup(environment=...).",
        ),
        query_variable(
            "service_name",
            "Service",
            f"label_values({c.BUILD_INFO.name}{{{env}}}, service_name)",
            "Service, from setup(service_name=...).",
        ),
        query_variable(
            "primitive",
            "Primitive",
            f"label_values({c.PRIMITIVE_EXECUTIONS.name}{{{env_svc}}}, primitive_name)",
            "Observed primitive or function (the primitive_name label).",
        ),
    ]


def annotation_list() -> list[JSON]:
    built_in = {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }
    # tta_build_info is always 1, so a deployment shows as a build (version and commit) that
    # runs now and did not a moment ago (``unless ... offset``), not as a change of value.
    # Aggregating first keeps restarts and new replicas of a running build out.
    build = "service_name, environment, version, commit"
    running = sel(c.BUILD_INFO)
    return [
        built_in,
        {
            "name": "Deployments",
            "datasource": DS,
            "enable": True,
            "hide": False,
            "iconColor": "rgba(255, 152, 48, 1)",
            "expr": (
                f"{agg(build, running, 'count')}\nunless\n"
                f"{agg(build, f'{running} offset $__rate_interval', 'count')}"
            ),
            # $__rate_interval follows the step, so the offset window always spans one step.
            "step": "60s",
            "titleFormat": "Deployed {{service_name}} {{version}}",
            "textFormat": "{{environment}}, commit {{commit}}",
            "tagKeys": "service_name,environment,version",
        },
        {
            "name": "CI deployments",
            "datasource": DS,
            "enable": True,
            "hide": False,
            "iconColor": "rgba(163, 82, 204, 1)",
            "expr": f"max by (job, environment, version) ({sel(c.DEPLOYMENT)}) * 1000",
            "step": "1m",
            "useValueForTime": True,
            "titleFormat": "Deployment {{version}}",
            "textFormat": "{{job}} in {{environment}}",
            "tagKeys": "environment,version",
        },
    ]


def render(d: Dashboard) -> JSON:
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": [TAG],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": d.refresh,
        "time": {"from": d.time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [
            {
                "title": "TTA.dev dashboards",
                "type": "dashboards",
                "tags": [TAG],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "The other dashboards of the suite",
                "url": "",
            }
        ],
        "annotations": {"list": [*annotation_list(), *d.extra_annotations]},
        "templating": {"list": [*variables(), *d.extra_variables]},
        "panels": layout(d.items),
    }


WF_RUNS = sel(c.WORKFLOW_EXECUTIONS)
WF_OK = sel(c.WORKFLOW_EXECUTIONS, f'status="{c.STATUS_SUCCESS}"')
EXECS = sel(c.PRIMITIVE_EXECUTIONS)
FAILED = sel(c.PRIMITIVE_EXECUTIONS, f'status=~"{FAILED_STATUSES}"')
CACHE_HITS = sel(c.CACHE_REQUESTS, 'result="hit"')
PT = "primitive_type, primitive_name"
SLO = 'slo=~"$slo"'
#: An SLO's name is unique only within its service and environment: every SLO panel keeps all
#: three, so prod and dev of one SLO never merge.
SLO_BY = ", ".join(SLO_KEY)
SVC_BY = ", ".join(SERVICE)
SLO_LEGEND = "{{service_name}} {{environment}} {{slo}}"
#: Column titles of the SLO key in tables, first in this order.
SLO_COLUMNS = {"service_name": "Service", "environment": "Environment", "slo": "SLO"}
SCOPE = f"{VARIABLE_MATCHERS['environment']}, {VARIABLE_MATCHERS['service_name']}"
BUDGET_COLORS = thresholds((None, "red"), (0.25, "orange"), (0.5, "green"))

SLO_VARIABLE = query_variable(
    "slo",
    "SLO",
    f"label_values({c.SLO_OBJECTIVE.name}{{{SCOPE}}}, slo)",
    "Service level objective, as declared with SLO(name, ...).",
)


#: The runbook links point here; a textbox variable so that a fork can use its own copy.
def runbook_variable(config: MixinConfig) -> JSON:
    base = check_runbook_base_url(config.runbook_base_url)
    return {
        "name": "runbook_base_url",
        "label": "Runbooks at",
        "description": "Base URL of the runbooks; the runbook of an alert is <base><alertname>.md.",
        "type": "textbox",
        "query": base,
        "current": {"selected": False, "text": base, "value": base},
        "options": [{"selected": True, "text": base, "value": base}],
        "hide": 2,
        "skipUrlSync": False,
    }


def budget(*matchers: str) -> str:
    return rec(BUDGET_LEFT, SLO_KEY, *matchers)


def scrape_series(name: str, config: MixinConfig) -> str:
    """``up`` or a ``scrape_*`` series of the TTA apps' targets, filtered by the variables.

    These series carry the target's labels only (``honor_labels`` does not apply to them);
    discovery gives a target ``service_name`` and ``environment`` (setup()'s file_sd entry), and
    ``job`` keeps Prometheus, the Pushgateway and other jobs out.
    """
    return selector(name, [config.job_selector, SCOPE])


#: The always-firing heartbeat has severity none: left out wherever alerts mean trouble.
NOT_HEARTBEAT = 'severity!="none"'


def alert_annotation() -> JSON:
    """Alerts of the selected service and environment, as regions from firing to resolved.

    Grafana turns each ``ALERTS`` series into one region per run of samples, so a region starts
    when the alert started firing and ends when it resolved, next to the deployment markers.
    """
    firing = alerts_of_scope(is_("alertstate", "firing"), NOT_HEARTBEAT)
    return {
        "name": "Alerts",
        "datasource": DS,
        "enable": True,
        "hide": False,
        "iconColor": "rgba(242, 73, 92, 1)",
        "expr": agg("alertname, severity, service_name, environment", firing, "max"),
        "step": "60s",
        "titleFormat": "{{alertname}} ({{severity}})",
        "textFormat": "{{service_name}} {{environment}}: firing from the start of the region "
        "until it resolved",
        "tagKeys": "alertname,severity,service_name,environment",
    }


def alerts_of_scope(*matchers: str) -> str:
    """``ALERTS`` of the selected environment and service (alerts that carry those labels)."""
    return selector("ALERTS", [*matchers, SCOPE])


def is_(label: str, value: str) -> str:
    return f'{label}="{value}"'


def cost_of_failure(width: int = 12) -> Panel:
    """Wasted share of LLM spend per workflow and reason (Executive and Developer)."""
    wasted = agg("workflow, reason", increase(sel(c.LLM_WASTED_COST), "1h"))
    spent = agg("workflow", increase(sel(c.LLM_COST), "1h"))
    return timeseries(
        "Cost of failure",
        "Share of each workflow's LLM spend in the last hour (rolling) that bought nothing, by "
        "reason: retried (an attempt thrown away by a retry), fallback (a failed primary), "
        "timeout (cut off), cancelled, error (the run failed anyway).",
        "percentunit",
        target(
            f"{wasted}\n/ on (workflow) group_left ()\n({spent} > 0)",
            "{{workflow}} {{reason}}",
        ),
        stack=True,
        width=width,
    )
