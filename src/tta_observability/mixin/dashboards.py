"""The Grafana dashboard suite as code: the one source of ``dashboards/*.json``.

Every query is built from :mod:`tta_observability.contract` metrics (or the names the recording
rules record), so a panel cannot query a series that nothing emits. Regenerate with::

    python -m tta_observability.mixin.dashboards [--out DIR] [--check]

Conventions shared by the suite, as in the monitoring mixins: a common tag and tag-based links, a
stable ``uid`` per dashboard, a ``datasource`` variable used by every panel and target (never
``${DS_...}``, which only Grafana's manual import dialog resolves), ``environment`` /
``service_name`` / ``primitive`` variables filtering every query whose metric has those labels,
``$__rate_interval``, a unit and a description on every panel, deployment annotations, and
exemplars on latency panels so a spike links to the trace behind it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from .. import contract as c
from . import checkout_dir
from . import rules as _rules

JSON = dict[str, Any]

TAG = "tta-observability"
UID_PREFIX = "tta-"
SCHEMA_VERSION = 39
DS: JSON = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24

#: Label -> matcher for the template variables that filter queries. ``allValue`` is ``.*`` so
#: "All" also matches series that lack the label, and stays a short regex however many values
#: the variable has.
VARIABLE_MATCHERS: dict[str, str] = {
    "environment": 'environment=~"$environment"',
    "service_name": 'service_name=~"$service_name"',
    "primitive_name": 'primitive_name=~"$primitive"',
}

#: Statuses that count as a failed call, as in the recording rules.
FAILED_STATUSES = "|".join(_rules.FAILED_STATUSES)

# Recorded series the dashboards read, with the labels their rules aggregate by.
SLO_KEY = _rules.SLO_KEY
SERVICE = _rules.SERVICE
BUDGET_LEFT = _rules.SLO_ERROR_BUDGET_REMAINING
SERVICE_CALL_RATE = _rules.SERVICE_PRIMITIVE_EXECUTIONS_RATE5M
#: Windows shown on the burn-rate panel: every window an alert pairs, short and long.
BURN_WINDOWS = tuple(
    w for w in _rules.SLO_WINDOWS if any(w in (b.long, b.short) for b in _rules.BURN_RATE_WINDOWS)
)


# Selectors -----------------------------------------------------------------------------------


def _labels_of(metric: c.Metric) -> tuple[str, ...]:
    # CI series are pushed with ``job`` and ``environment`` as grouping keys: no service_name.
    if metric.group == "ci":
        return ("environment", *metric.labels)
    return metric.all_labels


def sel(metric: c.Metric, *matchers: str, suffix: str = "") -> str:
    """``name{...}`` filtered by every template variable whose label ``metric`` carries."""
    labels = _labels_of(metric)
    parts = [m for label, m in VARIABLE_MATCHERS.items() if label in labels]
    return _selector(metric.name + suffix, [*parts, *matchers])


def rec(name: str, labels: Sequence[str], *matchers: str) -> str:
    """A recorded series, filtered by the template variables among ``labels``, the labels its
    rule aggregates by (the tests check them against the rule)."""
    parts = [m for label, m in VARIABLE_MATCHERS.items() if label in labels]
    return _selector(name, [*parts, *matchers])


def _selector(name: str, matchers: Sequence[str]) -> str:
    return f"{name}{{{', '.join(matchers)}}}" if matchers else name


def rate(selector: str, window: str = "$__rate_interval") -> str:
    return f"rate({selector}[{window}])"


def increase(selector: str, window: str = "$__range") -> str:
    return f"increase({selector}[{window}])"


def by(labels: str, expr: str, agg: str = "sum") -> str:
    return f"{agg} by ({labels}) ({expr})" if labels else f"{agg}({expr})"


def quantile(q: float, metric: c.Metric, labels: str, window: str = "$__rate_interval") -> str:
    group = f"le, {labels}" if labels else "le"
    return f"histogram_quantile({q}, {by(group, rate(sel(metric, suffix='_bucket'), window))})"


def ratio(numerator: str, denominator: str) -> str:
    return f"{numerator}\n/\n{denominator}"


def ratio_or_zero(numerator: str, denominator: str) -> str:
    """``numerator / denominator`` that reads 0, not nothing, before the numerator's first sample.

    A labelled series (a cache hit, an export failure) only exists once it has happened.
    """
    return ratio(f"(\n{numerator}\nor 0 * {denominator}\n)", denominator)


def or_zero(expr: str) -> str:
    """A single-value expression that reads 0 while none of its series exist yet."""
    return f"{expr} or vector(0)"


def with_app_labels(expr: str) -> str:
    """Adds ``service_name`` and ``environment`` to a process or scrape series, and filters on them.

    prometheus-client's process collector knows nothing of the service, so its series are joined
    on the scrape target with ``tta_build_info``, which carries the common labels.
    """
    info = by("job, instance, service_name, environment", sel(c.BUILD_INFO), agg="max")
    return f"{expr}\n* on (job, instance) group_left (service_name, environment)\n{info}"


# Panels --------------------------------------------------------------------------------------


def target(
    expr: str,
    legend: str = "__auto",
    *,
    instant: bool = False,
    exemplar: bool = False,
    fmt: str = "time_series",
) -> JSON:
    # A ``$__range`` window already spans the whole dashboard: as a range query each point of
    # the result would compute a window that long again, so such targets are evaluated once.
    if "$__range" in expr:
        instant = True
    t: JSON = {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "format": fmt,
    }
    if exemplar:
        t["exemplar"] = True
    return t


@dataclass
class Panel:
    """A panel before layout; ``json`` turns it into Grafana's model at a grid position."""

    type: str
    title: str
    description: str
    unit: str
    targets: list[JSON]
    width: int = 12
    height: int = 8
    options: JSON = field(default_factory=dict)
    defaults: JSON = field(default_factory=dict)
    overrides: list[JSON] = field(default_factory=list)
    transformations: list[JSON] = field(default_factory=list)

    def json(self, panel_id: int, x: int, y: int) -> JSON:
        targets = [{**t, "refId": chr(ord("A") + i)} for i, t in enumerate(self.targets)]
        return {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "datasource": DS,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "fieldConfig": {
                "defaults": {"unit": self.unit, **self.defaults},
                "overrides": self.overrides,
            },
            "options": self.options,
            "targets": targets,
            **({"transformations": self.transformations} if self.transformations else {}),
        }


@dataclass
class Row:
    title: str


def _thresholds(*steps: tuple[float | None, str]) -> JSON:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in steps],
    }


GOOD_HIGH = _thresholds((None, "red"), (0.99, "orange"), (0.999, "green"))
BAD_HIGH = _thresholds((None, "green"), (1.0, "orange"), (6.0, "red"))


def timeseries(
    title: str,
    description: str,
    unit: str,
    *targets: JSON,
    width: int = 12,
    height: int = 8,
    stack: bool = False,
    bars: bool = False,
    min_zero: bool = True,
) -> Panel:
    custom: JSON = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 60 if bars else (25 if stack else 10),
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    defaults: JSON = {"custom": custom}
    if min_zero:
        defaults["min"] = 0
    return Panel(
        "timeseries",
        title,
        description,
        unit,
        list(targets),
        width,
        height,
        options={
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        defaults=defaults,
    )


def stat(
    title: str,
    description: str,
    unit: str,
    *targets: JSON,
    width: int = 4,
    height: int = 5,
    thresholds: JSON | None = None,
    decimals: int | None = None,
) -> Panel:
    defaults: JSON = {"color": {"mode": "thresholds"}}
    if thresholds is not None:
        defaults["thresholds"] = thresholds
    if decimals is not None:
        defaults["decimals"] = decimals
    return Panel(
        "stat",
        title,
        description,
        unit,
        list(targets),
        width,
        height,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
            "justifyMode": "auto",
            "orientation": "auto",
        },
        defaults=defaults,
    )


def table(
    title: str,
    description: str,
    unit: str,
    *targets: JSON,
    width: int = 24,
    height: int = 8,
    rename: dict[str, str] | None = None,
    overrides: list[JSON] | None = None,
    sort_by: str | None = None,
    first: Sequence[str] = (),
) -> Panel:
    """A table of instant queries merged on their labels; ``first``: columns to put leftmost."""
    organize: JSON = {"excludeByName": {"Time": True}, "renameByName": rename or {}}
    if first:
        organize["indexByName"] = {column: i for i, column in enumerate(first)}
    return Panel(
        "table",
        title,
        description,
        unit,
        [{**t, "format": "table", "instant": True, "range": False} for t in targets],
        width,
        height,
        options={
            "showHeader": True,
            "cellHeight": "sm",
            "footer": {"show": False, "reducer": ["sum"], "fields": ""},
            "sortBy": [{"displayName": sort_by, "desc": True}] if sort_by else [],
        },
        overrides=overrides or [],
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": organize},
        ],
    )


def heatmap(title: str, description: str, expr: str, *, width: int = 12, height: int = 8) -> Panel:
    return Panel(
        "heatmap",
        title,
        description,
        "s",
        [target(expr, "{{le}}", exemplar=True, fmt="heatmap")],
        width,
        height,
        options={
            "calculate": False,
            "cellGap": 1,
            "color": {
                "mode": "scheme",
                "scheme": "Oranges",
                "scale": "exponential",
                "exponent": 0.5,
                "steps": 64,
                "fill": "dark-orange",
                "reverse": False,
            },
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
            "filterValues": {"le": 1e-9},
            "rowsFrame": {"layout": "auto"},
            "yAxis": {"axisPlacement": "left", "unit": "s", "reverse": False},
            "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
            "legend": {"show": True},
        },
        defaults={"custom": {"scaleDistribution": {"type": "linear"}}},
    )


def state_timeline(
    title: str,
    description: str,
    unit: str,
    *targets: JSON,
    mappings: list[JSON],
    thresholds: JSON,
    width: int = 12,
    height: int = 8,
) -> Panel:
    return Panel(
        "state-timeline",
        title,
        description,
        unit,
        list(targets),
        width,
        height,
        options={
            "showValue": "auto",
            "mergeValues": True,
            "rowHeight": 0.9,
            "alignValue": "left",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "single", "sort": "none"},
        },
        defaults={
            "color": {"mode": "thresholds"},
            "mappings": mappings,
            "thresholds": thresholds,
            "custom": {"fillOpacity": 80, "lineWidth": 0},
        },
    )


def value_text(mapping: dict[str, tuple[str, str]]) -> list[JSON]:
    """Value mappings: raw value -> (display text, color)."""
    return [
        {
            "type": "value",
            "options": {
                value: {"text": text, "color": color, "index": i}
                for i, (value, (text, color)) in enumerate(mapping.items())
            },
        }
    ]


# Dashboards ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    description: str
    items: Sequence[Panel | Row]
    extra_variables: Sequence[JSON] = ()
    refresh: str = "30s"
    time_from: str = "now-6h"

    @property
    def uid(self) -> str:
        return UID_PREFIX + self.slug

    @property
    def filename(self) -> str:
        return f"{self.slug}.json"


def _layout(items: Iterable[Panel | Row]) -> list[JSON]:
    """Flows panels left to right in rows of 24 columns; a Row starts a new line."""
    out: list[JSON] = []
    x = y = line_height = 0
    for panel_id, item in enumerate(items, start=1):
        if isinstance(item, Row):
            y += line_height
            x = line_height = 0
            out.append(
                {
                    "id": panel_id,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "panels": [],
                    "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                }
            )
            y += 1
            continue
        if x + item.width > GRID_WIDTH:
            y += line_height
            x = line_height = 0
        out.append(item.json(panel_id, x, y))
        x += item.width
        line_height = max(line_height, item.height)
    return out


def _query_variable(
    name: str, label: str, query: str, description: str, *, multi: bool = True
) -> JSON:
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-variable"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
        "regex": "",
        "skipUrlSync": False,
    }


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
        _query_variable(
            "environment",
            "Environment",
            f"label_values({c.BUILD_INFO.name}, environment)",
            "Deployment environment, from setup(environment=...).",
        ),
        _query_variable(
            "service_name",
            "Service",
            f"label_values({c.BUILD_INFO.name}{{{env}}}, service_name)",
            "Service, from setup(service_name=...).",
        ),
        _query_variable(
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
                f"{by(build, running, 'count')}\nunless\n"
                f"{by(build, f'{running} offset $__rate_interval', 'count')}"
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
        "annotations": {"list": annotation_list()},
        "templating": {"list": [*variables(), *d.extra_variables]},
        "panels": _layout(d.items),
    }


# The six dashboards --------------------------------------------------------------------------

_WF_RUNS = sel(c.WORKFLOW_EXECUTIONS)
_WF_OK = sel(c.WORKFLOW_EXECUTIONS, f'status="{c.STATUS_SUCCESS}"')
_EXECS = sel(c.PRIMITIVE_EXECUTIONS)
_FAILED = sel(c.PRIMITIVE_EXECUTIONS, f'status=~"{FAILED_STATUSES}"')
_CACHE_HITS = sel(c.CACHE_REQUESTS, 'result="hit"')
_PT = "primitive_type, primitive_name"
_SLO = 'slo=~"$slo"'
#: An SLO's name is unique only within its service and environment: every SLO panel keeps all
#: three, so prod and dev of one SLO never merge.
_SLO_BY = ", ".join(SLO_KEY)
_SVC_BY = ", ".join(SERVICE)
_SLO_LEGEND = "{{service_name}} {{environment}} {{slo}}"
#: Column titles of the SLO key in tables, first in this order.
_SLO_COLUMNS = {"service_name": "Service", "environment": "Environment", "slo": "SLO"}
_SCOPE = f"{VARIABLE_MATCHERS['environment']}, {VARIABLE_MATCHERS['service_name']}"
_BUDGET_COLORS = _thresholds((None, "red"), (0.25, "orange"), (0.5, "green"))

SLO_VARIABLE = _query_variable(
    "slo",
    "SLO",
    f"label_values({c.SLO_OBJECTIVE.name}{{{_SCOPE}}}, slo)",
    "Service level objective, as declared with SLO(name, ...).",
)
#: The runbook links point here; a textbox variable so that a fork can use its own copy.
RUNBOOK_VARIABLE: JSON = {
    "name": "runbook_base_url",
    "label": "Runbooks at",
    "description": "Base URL of the runbooks; the runbook of an alert is <base><alertname>.md.",
    "type": "textbox",
    "query": _rules.RUNBOOK_BASE_URL,
    "current": {
        "selected": False,
        "text": _rules.RUNBOOK_BASE_URL,
        "value": _rules.RUNBOOK_BASE_URL,
    },
    "options": [
        {"selected": True, "text": _rules.RUNBOOK_BASE_URL, "value": _rules.RUNBOOK_BASE_URL}
    ],
    "hide": 2,
    "skipUrlSync": False,
}


def _budget(*matchers: str) -> str:
    return rec(BUDGET_LEFT, SLO_KEY, *matchers)


def _colored(column: str, thresholds: JSON) -> JSON:
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            {"id": "thresholds", "value": thresholds},
        ],
    }


def _unit(column: str, unit: str, decimals: int | None = None) -> JSON:
    props: list[JSON] = [{"id": "unit", "value": unit}]
    if decimals is not None:
        props.append({"id": "decimals", "value": decimals})
    return {"matcher": {"id": "byName", "options": column}, "properties": props}


def executive() -> Dashboard:
    slo_ratio_30d = rec(_rules.slo_error_ratio(_rules.SLO_PERIOD), SLO_KEY)
    # The hourly spend TTALLMCostOverBudget compares with the budget.
    llm_spend = rec(_rules.SERVICE_LLM_COST_USD_INCREASE1H, SERVICE)
    return Dashboard(
        "executive",
        "TTA.dev / Executive",
        "Workflow volume and success, end-to-end latency, SLO compliance, LLM spend and cache "
        "savings: the page to open first.",
        [
            stat(
                "Workflow runs",
                "Workflow runs (outermost observed calls) in the selected time range.",
                "short",
                target(by("", increase(_WF_RUNS)), "runs"),
            ),
            stat(
                "Workflow success rate",
                "Share of workflow runs in the time range that ended with status success.",
                "percentunit",
                target(ratio(by("", increase(_WF_OK)), by("", increase(_WF_RUNS))), "success"),
                thresholds=GOOD_HIGH,
                decimals=2,
            ),
            stat(
                "End-to-end p95",
                "95th percentile of workflow run duration over the time range.",
                "s",
                target(quantile(0.95, c.WORKFLOW_DURATION, "", "$__range"), "p95"),
            ),
            stat(
                "Worst SLO budget left (30 d)",
                "Error budget remaining over 30 days of the SLO that has the least left; below "
                "0 the SLO is breached.",
                "percentunit",
                target(by("", _budget(), agg="min"), "budget"),
                thresholds=_BUDGET_COLORS,
                decimals=1,
            ),
            stat(
                "LLM cost",
                "LLM spend in US dollars in the selected time range.",
                "currencyUSD",
                target(or_zero(by("", increase(sel(c.LLM_COST)))), "cost"),
                decimals=2,
            ),
            stat(
                "Cache hits",
                "Calls answered from a cache primitive in the time range: work and LLM spend "
                "saved.",
                "short",
                target(or_zero(by("", increase(_CACHE_HITS))), "hits"),
            ),
            timeseries(
                "Workflow runs per second",
                "Workflow run rate by workflow.",
                "ops",
                target(by("workflow", rate(_WF_RUNS)), "{{workflow}}"),
                stack=True,
            ),
            timeseries(
                "Workflow success rate by workflow",
                "Share of workflow runs that succeeded, by workflow.",
                "percentunit",
                target(
                    ratio(by("workflow", rate(_WF_OK)), by("workflow", rate(_WF_RUNS))),
                    "{{workflow}}",
                ),
                min_zero=False,
            ),
            timeseries(
                "End-to-end latency p95",
                "95th percentile workflow duration by workflow; exemplar dots link to the trace "
                "of a slow run.",
                "s",
                target(
                    quantile(0.95, c.WORKFLOW_DURATION, "workflow"), "{{workflow}}", exemplar=True
                ),
                width=24,
            ),
            table(
                "SLO compliance",
                "Each SLO's objective, its good-call ratio over 30 days and the share of its "
                "30-day error budget left (1 = untouched, 0 = spent).",
                "percentunit",
                target(by(_SLO_BY, sel(c.SLO_OBJECTIVE), agg="max"), "objective"),
                target(by(_SLO_BY, f"1 - {slo_ratio_30d}", agg="min"), "sli"),
                target(by(_SLO_BY, _budget(), agg="min"), "budget"),
                width=12,
                first=tuple(_SLO_COLUMNS),
                rename={
                    **_SLO_COLUMNS,
                    "Value #A": "Objective",
                    "Value #B": "SLI (30 d)",
                    "Value #C": "Budget left",
                },
                overrides=[_colored("Budget left", _BUDGET_COLORS)],
            ),
            timeseries(
                "Error budget left (30 d)",
                "Share of the 30-day error budget left, by service, environment and SLO.",
                "percentunit",
                target(by(_SLO_BY, _budget(), agg="min"), _SLO_LEGEND),
                min_zero=False,
            ),
            timeseries(
                "LLM tokens per day by model",
                "Tokens used in the last 24 hours (rolling), by model and token type.",
                "short",
                target(
                    by("model, token_type", increase(sel(c.LLM_TOKENS), "1d")),
                    "{{model}} {{token_type}}",
                ),
                stack=True,
            ),
            timeseries(
                "LLM cost per day by model",
                "US dollars spent in the last 24 hours (rolling), by provider and model.",
                "currencyUSD",
                target(
                    by("provider, model", increase(sel(c.LLM_COST), "1d")),
                    "{{provider}} {{model}}",
                ),
                stack=True,
            ),
            timeseries(
                "LLM spend per hour vs budget",
                "US dollars spent on LLM calls in the last hour (rolling), by service and "
                "environment, and the budget TTALLMCostOverBudget compares it with: "
                "setup(llm_budget_usd_per_hour=...), or the rules' default for a service that "
                f"sets none ({_rules.LLM_COST_BUDGET_USD_PER_HOUR:g} USD).",
                "currencyUSD",
                target(llm_spend, "{{service_name}} {{environment}} spent"),
                target(
                    f"{by(_SVC_BY, sel(c.LLM_BUDGET), agg='max')}\nor\n"
                    f"0 * {llm_spend} + {_rules.LLM_COST_BUDGET_USD_PER_HOUR:g}",
                    "{{service_name}} {{environment}} budget",
                ),
            ),
            timeseries(
                "Cache savings",
                "Calls per second answered from a cache, so the cached primitive (often an LLM "
                "call) did not run, by cache primitive.",
                "ops",
                target(by("primitive_name", rate(_CACHE_HITS)), "{{primitive_name}}"),
                stack=True,
            ),
        ],
    )


def scrape_series(name: str) -> str:
    """``up`` or a ``scrape_*`` series of the TTA apps' targets, filtered by the variables.

    These series carry the target's labels only (``honor_labels`` does not apply to them);
    discovery gives a target ``service_name`` and ``environment`` (setup()'s file_sd entry), and
    ``job`` keeps Prometheus, the Pushgateway and other jobs out.
    """
    return _selector(name, [f'job=~"{_rules.TTA_JOB_REGEX}"', _SCOPE])


def platform_health() -> Dashboard:
    scrape = "job, instance"
    up = scrape_series("up")
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
                thresholds=_thresholds((None, "green"), (1, "red")),
            ),
            stat(
                "Calls in flight",
                "Observed calls running right now.",
                "short",
                target(by("", sel(c.PRIMITIVE_IN_FLIGHT)), "in flight"),
            ),
            stat(
                "Span export failures",
                "Share of spans the exporter failed to send in the time range.",
                "percentunit",
                target(
                    ratio_or_zero(
                        by("", increase(sel(c.SPANS_EXPORTED, 'result="failure"'))),
                        by("", increase(spans)),
                    ),
                    "failed",
                ),
                thresholds=_thresholds((None, "green"), (0.001, "orange"), (0.01, "red")),
            ),
            stat(
                "Spans dropped",
                "Spans dropped because the export queue was full, in the time range.",
                "short",
                target(or_zero(by("", increase(sel(c.SPANS_DROPPED)))), "dropped"),
                thresholds=_thresholds((None, "green"), (1, "red")),
            ),
            stat(
                "Label values folded",
                "Label values the cardinality guard folded into __overflow__ in the time range.",
                "short",
                target(or_zero(by("", increase(sel(c.LABEL_OVERFLOW)))), "folded"),
                thresholds=_thresholds((None, "green"), (1, "orange")),
            ),
            state_timeline(
                "Targets",
                "Whether each TTA app scrape target answered (up) over time.",
                "none",
                target(
                    by(f"service_name, environment, {scrape}", up, agg="max"),
                    "{{service_name}} {{environment}} {{instance}}",
                ),
                mappings=value_text({"0": ("down", "red"), "1": ("up", "green")}),
                thresholds=_thresholds((None, "red"), (1, "green")),
            ),
            timeseries(
                "Scrape duration",
                "How long each scrape of a TTA app took; near the scrape timeout, samples go "
                "missing.",
                "s",
                target(
                    by(scrape, scrape_series("scrape_duration_seconds"), agg="max"),
                    "{{job}} {{instance}}",
                ),
            ),
            timeseries(
                "Samples per scrape",
                "Samples each scrape of a TTA app returned, and new series it added (cardinality "
                "growth).",
                "short",
                target(
                    by(scrape, scrape_series("scrape_samples_scraped"), agg="max"),
                    "{{instance}} samples",
                ),
                target(
                    by(scrape, scrape_series("scrape_series_added"), agg="max"),
                    "{{instance}} new series",
                ),
            ),
            timeseries(
                "CPU",
                "CPU used by each service process (1 = one core).",
                "percentunit",
                target(
                    with_app_labels(rate("process_cpu_seconds_total")),
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
                target(by("primitive_name", sel(c.PRIMITIVE_IN_FLIGHT)), "{{primitive_name}}"),
                stack=True,
            ),
            timeseries(
                "Span export",
                "Spans handed to the exporter per second by result, and spans dropped.",
                "ops",
                target(by("result", rate(spans)), "{{result}}"),
                target(by("", rate(sel(c.SPANS_DROPPED))), "dropped"),
            ),
            table(
                "Pushgateway jobs",
                "Jobs that pushed to a Pushgateway: time since their last push and last failed "
                "push, and (for CI steps) since the last success.",
                "s",
                target(by("job", f"time() - push_time_seconds{{{pushed}}}", agg="min"), "push"),
                target(
                    by("job", f"time() - push_failure_time_seconds{{{pushed}}}", agg="min"),
                    "failed",
                ),
                target(by("job", f"time() - {sel(c.CI_STEP_LAST_SUCCESS)}", agg="min"), "success"),
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
                target(by("job", sel(c.CI_STEP_DURATION), agg="max"), "{{job}}"),
                width=6,
            ),
            timeseries(
                "CI step runs per hour",
                "Runs of each CI step in the last hour (rolling), by status.",
                "short",
                target(
                    by("job, status", increase(sel(c.CI_STEP_RUNS), "1h")),
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
                    by(
                        "service_name, environment, version, commit, tta_observability_version",
                        sel(c.BUILD_INFO),
                        agg="count",
                    ),
                    "builds",
                ),
                rename={"Value": "Instances"},
            ),
        ],
    )


def _quantiles(metric: c.Metric, label: str) -> list[JSON]:
    return [
        target(quantile(q, metric, label), f"{{{{{label}}}}} p{round(q * 100)}", exemplar=True)
        for q in (0.5, 0.95, 0.99)
    ]


CIRCUIT_STATES = {"0": ("closed", "green"), "1": ("half-open", "orange"), "2": ("open", "red")}


def developer() -> Dashboard:
    cache = sel(c.CACHE_REQUESTS)
    dur = c.PRIMITIVE_DURATION
    return Dashboard(
        "developer",
        "TTA.dev / Developer",
        "Per primitive: rate, errors, latency with exemplars linking to traces, and what the "
        "recovery primitives (retry, fallback, timeout, cache, circuit breaker, router) did.",
        [
            Row("Calls"),
            timeseries(
                "Call rate",
                "Calls per second, by primitive type and name.",
                "ops",
                target(by(_PT, rate(_EXECS)), "{{primitive_type}} {{primitive_name}}"),
            ),
            timeseries(
                "Error ratio",
                "Share of calls that failed (status error or timeout), by primitive.",
                "percentunit",
                target(
                    ratio(by("primitive_name", rate(_FAILED)), by("primitive_name", rate(_EXECS))),
                    "{{primitive_name}}",
                ),
            ),
            timeseries(
                "Errors by type",
                "Exceptions raised per second, by primitive and exception class.",
                "ops",
                target(
                    by("primitive_name, error_type", rate(sel(c.PRIMITIVE_ERRORS))),
                    "{{primitive_name}} {{error_type}}",
                ),
                stack=True,
            ),
            timeseries(
                "Calls by status",
                "Calls per second by outcome: success, error, timeout, cancelled.",
                "ops",
                target(by("status", rate(_EXECS)), "{{status}}"),
                stack=True,
            ),
            Row("Latency"),
            timeseries(
                "Latency percentiles",
                "p50, p95 and p99 call duration by primitive; exemplar dots link to the trace of "
                "a call in that bucket.",
                "s",
                *_quantiles(dur, "primitive_name"),
            ),
            heatmap(
                "Latency heatmap",
                "Distribution of call durations over time (histogram buckets); exemplars link "
                "to traces.",
                by("le", rate(sel(dur, suffix="_bucket"))),
            ),
            table(
                "Slowest primitives",
                "Primitives with the highest p95 duration over the time range, with their "
                "mean duration and call count.",
                "s",
                target(f"topk(10, {quantile(0.95, dur, _PT, '$__range')})", "p95"),
                target(
                    ratio(
                        by(_PT, rate(sel(dur, suffix="_sum"), "$__range")),
                        by(_PT, rate(sel(dur, suffix="_count"), "$__range")),
                    ),
                    "mean",
                ),
                target(by(_PT, increase(sel(dur, suffix="_count"))), "calls"),
                rename={"Value #A": "p95", "Value #B": "Mean", "Value #C": "Calls"},
                overrides=[_unit("Calls", "short", 0)],
                sort_by="p95",
            ),
            Row("Recovery primitives"),
            timeseries(
                "Retry attempts",
                "Attempts made by retry primitives per second, by outcome.",
                "ops",
                target(
                    by("primitive_name, outcome", rate(sel(c.RETRY_ATTEMPTS))),
                    "{{primitive_name}} {{outcome}}",
                ),
                width=8,
            ),
            timeseries(
                "Fallbacks",
                "Times per second a fallback primitive ran its fallback branch.",
                "ops",
                target(
                    by("primitive_name", rate(sel(c.FALLBACK_ACTIVATIONS))), "{{primitive_name}}"
                ),
                width=8,
            ),
            timeseries(
                "Timeouts",
                "Calls cut off by a timeout primitive per second.",
                "ops",
                target(by("primitive_name", rate(sel(c.TIMEOUTS))), "{{primitive_name}}"),
                width=8,
            ),
            timeseries(
                "Cache hit ratio",
                "Share of cache lookups answered from the cache, by cache primitive.",
                "percentunit",
                target(
                    ratio_or_zero(
                        by("primitive_name", rate(_CACHE_HITS)), by("primitive_name", rate(cache))
                    ),
                    "{{primitive_name}}",
                ),
                width=8,
            ),
            state_timeline(
                "Circuit breaker state",
                "State of each circuit breaker: closed, half-open or open (calls rejected).",
                "none",
                target(
                    by("primitive_name", sel(c.CIRCUIT_BREAKER_STATE), agg="max"),
                    "{{primitive_name}}",
                ),
                mappings=value_text(CIRCUIT_STATES),
                thresholds=_thresholds((None, "green"), (1, "orange"), (2, "red")),
                width=8,
            ),
            timeseries(
                "Circuit breaker transitions",
                "State changes per breaker in each interval.",
                "short",
                target(
                    by(
                        "primitive_name, to_state",
                        increase(sel(c.CIRCUIT_BREAKER_TRANSITIONS), "$__rate_interval"),
                    ),
                    "{{primitive_name}} to {{to_state}}",
                ),
                bars=True,
                width=8,
            ),
            timeseries(
                "Router decisions",
                "Routes chosen per second by router and switch primitives.",
                "ops",
                target(
                    by("primitive_name, route", rate(sel(c.ROUTER_DECISIONS))),
                    "{{primitive_name}} {{route}}",
                ),
                stack=True,
                width=24,
            ),
        ],
    )


def sre() -> Dashboard:
    requests = sel(c.SLO_REQUESTS, _SLO)
    errors = sel(c.SLO_ERRORS, _SLO)
    burn_alert = _is("alertname", _rules.SLO_BURN_ALERT)
    objective = by(_SLO_BY, sel(c.SLO_OBJECTIVE, _SLO), agg="max")
    return Dashboard(
        "sre",
        "TTA.dev / SRE",
        "Service level objectives: each SLO's SLI, burn rate per alerting window, error budget "
        "remaining and the burn alerts firing now.",
        [
            table(
                "SLOs",
                "Every declared SLO: objective, SLI and burn rate over the last hour, share of "
                "the 30-day error budget left, status (breached once the budget is spent) and "
                "the latency above which a call counts as bad.",
                "percentunit",
                target(objective, "objective"),
                target(
                    by(_SLO_BY, f"1 - {rec(_rules.slo_error_ratio('1h'), SLO_KEY, _SLO)}", "min"),
                    "sli",
                ),
                target(by(_SLO_BY, rec(_rules.slo_burn_rate("1h"), SLO_KEY, _SLO), "max"), "burn"),
                target(by(_SLO_BY, _budget(_SLO), agg="min"), "budget"),
                target(by(_SLO_BY, f"{_budget(_SLO)} > bool 0", agg="min"), "status"),
                target(by(_SLO_BY, sel(c.SLO_LATENCY_THRESHOLD, _SLO), agg="max"), "threshold"),
                first=tuple(_SLO_COLUMNS),
                rename={
                    **_SLO_COLUMNS,
                    "Value #A": "Objective",
                    "Value #B": "SLI (1 h)",
                    "Value #C": "Burn rate (1 h)",
                    "Value #D": "Budget left (30 d)",
                    "Value #E": "Status",
                    "Value #F": "Latency threshold",
                },
                overrides=[
                    _unit("Latency threshold", "s"),
                    _colored("Budget left (30 d)", _BUDGET_COLORS),
                    _unit("Burn rate (1 h)", "x", 2),
                    {
                        "matcher": {"id": "byName", "options": "Status"},
                        "properties": [
                            {"id": "unit", "value": "none"},
                            {
                                "id": "mappings",
                                "value": value_text(
                                    {"0": ("breached", "red"), "1": ("ok", "green")}
                                ),
                            },
                            {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                        ],
                    },
                ],
            ),
            timeseries(
                "SLI",
                "Share of good calls (not failed, not slower than the SLO's latency threshold) "
                "per service, environment and SLO, and its objective.",
                "percentunit",
                target(
                    f"1 - (\n{ratio(by(_SLO_BY, rate(errors)), by(_SLO_BY, rate(requests)))}\n)",
                    _SLO_LEGEND,
                ),
                target(objective, f"{_SLO_LEGEND} objective"),
                min_zero=False,
            ),
            timeseries(
                "Burn rate per window",
                "How fast each SLO spends its error budget, per alerting window (1 = on track to "
                "spend exactly the budget in 30 days). The burn alerts fire when a long and a "
                "short window both exceed 14.4 (1 h, 5 m), 6 (6 h, 30 m), 3 (1 d, 2 h) or 1 "
                "(3 d, 6 h).",
                "x",
                *(
                    target(
                        by(_SLO_BY, rec(_rules.slo_burn_rate(w), SLO_KEY, _SLO), agg="max"),
                        f"{_SLO_LEGEND} {w}",
                    )
                    for w in BURN_WINDOWS
                ),
            ),
            timeseries(
                "Error budget remaining (30 d)",
                "Share of the 30-day error budget left, per service, environment and SLO; below 0 "
                "the SLO is breached.",
                "percentunit",
                target(by(_SLO_BY, _budget(_SLO), agg="min"), _SLO_LEGEND),
                min_zero=False,
            ),
            timeseries(
                "Bad calls",
                "SLO calls per second that failed or ran over the latency threshold.",
                "ops",
                target(by(_SLO_BY, rate(errors)), _SLO_LEGEND),
                stack=True,
            ),
            table(
                "Burn alerts firing",
                "SLO burn-rate alerts firing now, with the window pair that fired.",
                "short",
                target(
                    by(
                        f"{_SLO_BY}, severity, long_window, short_window",
                        _alerts(_is("alertstate", "firing"), burn_alert, _SLO),
                        agg="max",
                    ),
                    "alerts",
                ),
                width=12,
                first=tuple(_SLO_COLUMNS),
                rename={**_SLO_COLUMNS, "Value": "Firing"},
            ),
            timeseries(
                "Burn alerts over time",
                "SLO burn-rate alerts pending or firing, by service, environment, SLO, long window "
                "and state.",
                "short",
                target(
                    by(
                        f"{_SLO_BY}, long_window, alertstate",
                        _alerts(burn_alert, _SLO),
                        agg="count",
                    ),
                    f"{_SLO_LEGEND} {{{{long_window}}}} {{{{alertstate}}}}",
                ),
                bars=True,
            ),
        ],
        extra_variables=[SLO_VARIABLE],
    )


def capacity_planning() -> Dashboard:
    svc = "service_name"
    svc_rate = rec(SERVICE_CALL_RATE, SERVICE)
    cpu = with_app_labels(rate("process_cpu_seconds_total"))
    return Dashboard(
        "capacity-planning",
        "TTA.dev / Capacity Planning",
        "Throughput and concurrency trends, resources per call, growth forecasts and headroom.",
        [
            timeseries(
                "Throughput",
                "Primitive calls and workflow runs per second, by service.",
                "ops",
                target(by(svc, rate(_EXECS)), "{{service_name}} calls"),
                target(by(svc, rate(_WF_RUNS)), "{{service_name}} workflow runs"),
            ),
            timeseries(
                "Concurrency",
                "Most observed calls in flight at any scrape of each interval, by service.",
                "short",
                target(
                    by(svc, f"max_over_time({sel(c.PRIMITIVE_IN_FLIGHT)}[$__rate_interval])"),
                    "{{service_name}}",
                ),
            ),
            timeseries(
                "CPU per call",
                "CPU seconds used per primitive call, by service.",
                "s",
                target(ratio(by(svc, cpu), by(svc, rate(_EXECS))), "{{service_name}}"),
            ),
            timeseries(
                "LLM cost per workflow run",
                "US dollars spent on LLM calls per workflow run, by service.",
                "currencyUSD",
                target(
                    ratio(by(svc, rate(sel(c.LLM_COST))), by(svc, rate(_WF_RUNS))),
                    "{{service_name}}",
                ),
            ),
            timeseries(
                "Throughput forecast (7 d)",
                "Call rate now (recorded 5-minute rate) and in 7 days if the trend of the last "
                "6 hours continues (predict_linear).",
                "ops",
                target(by(svc, svc_rate), "{{service_name}} now"),
                target(
                    by(svc, f"predict_linear({svc_rate}[6h], 7 * 86400)"),
                    "{{service_name}} in 7 d",
                ),
            ),
            timeseries(
                "Memory forecast (7 d)",
                "Resident memory now and in 7 days if the trend of the last 6 hours continues.",
                "bytes",
                target(with_app_labels("process_resident_memory_bytes"), "{{service_name}} now"),
                target(
                    with_app_labels("predict_linear(process_resident_memory_bytes[6h], 7 * 86400)"),
                    "{{service_name}} in 7 d",
                ),
            ),
            timeseries(
                "Throughput vs 7-day peak",
                "Call rate as a share of the highest recorded 5-minute rate of the last 7 days, "
                "by service: how close it runs to the load it has already handled.",
                "percentunit",
                target(
                    ratio(by(svc, svc_rate), by(svc, f"max_over_time({svc_rate}[7d])")),
                    "{{service_name}}",
                ),
                width=8,
            ),
            timeseries(
                "Concurrency vs 7-day peak",
                "Calls in flight as a share of the most in flight at any scrape of the last "
                "7 days, by service.",
                "percentunit",
                target(
                    ratio(
                        by(svc, sel(c.PRIMITIVE_IN_FLIGHT)),
                        # Only the denominator is filtered: ``a / b > 0`` would also drop
                        # the moments with nothing in flight, which must read 0 %.
                        f"({by(svc, f'max_over_time({sel(c.PRIMITIVE_IN_FLIGHT)}[7d])')} > 0)",
                    ),
                    "{{service_name}}",
                ),
                width=8,
            ),
            stat(
                "File descriptor headroom",
                "Share of the file descriptor limit still free, for the fullest process.",
                "percentunit",
                target(
                    by("", with_app_labels("(1 - process_open_fds / process_max_fds)"), "min"),
                    "headroom",
                ),
                thresholds=_thresholds((None, "red"), (0.1, "orange"), (0.3, "green")),
                width=8,
                height=8,
            ),
        ],
        time_from="now-7d",
        refresh="5m",
    )


SEVERITY_COLORS = {"critical": "red", "warning": "orange", "info": "blue"}


def _alerts(*matchers: str) -> str:
    """``ALERTS`` of the selected environment and service (alerts that carry those labels)."""
    return _selector("ALERTS", [*matchers, _SCOPE])


def _is(label: str, value: str) -> str:
    return f'{label}="{value}"'


def alerts() -> Dashboard:
    firing = _alerts(_is("alertstate", "firing"))
    pending = _alerts(_is("alertstate", "pending"))
    alert_key = "alertname, severity"
    runbook_link = {
        "matcher": {"id": "byName", "options": "alertname"},
        "properties": [
            {
                "id": "links",
                "value": [
                    {
                        "title": "Runbook for ${__value.text}",
                        "url": "${runbook_base_url}${__value.text}.md",
                        "targetBlank": True,
                    }
                ],
            }
        ],
    }
    # ALERTS_FOR_STATE holds when each alert became active; it has every label of its ALERTS
    # series but alertstate, hence the join ignoring it.
    active_for = (
        f"(time() - {_selector('ALERTS_FOR_STATE', [_SCOPE])})\n"
        f"* ignoring (alertstate) group_left (alertstate)\n{_alerts()}"
    )
    return Dashboard(
        "alerts",
        "TTA.dev / Alerts",
        "Alerts firing and pending by severity, their history, and links to their runbooks.",
        [
            *(
                stat(
                    f"{state.capitalize()}: {sev}",
                    f"Alerts of severity {sev} {state} now.",
                    "short",
                    target(
                        or_zero(
                            f"count({_alerts(_is('alertstate', state), _is('severity', sev))})"
                        ),
                        sev,
                    ),
                    thresholds=_thresholds((None, "green"), (1, SEVERITY_COLORS[sev])),
                )
                for state in ("firing", "pending")
                for sev in get_args(_rules.Severity)
            ),
            table(
                "Active alerts",
                "Every alert pending or firing now and how long it has been active; click an "
                "alert name for its runbook.",
                "s",
                target(
                    by(
                        "alertname, alertstate, severity, service_name, environment, slo, "
                        "primitive_name, workflow",
                        active_for,
                        agg="max",
                    ),
                    "active for",
                ),
                rename={"Value": "Active for"},
                overrides=[runbook_link],
                height=10,
                sort_by="Active for",
            ),
            timeseries(
                "Firing alerts by severity",
                "Alerts firing over time, by severity.",
                "short",
                target(by("severity", firing, agg="count"), "{{severity}}"),
                stack=True,
                bars=True,
            ),
            timeseries(
                "Pending alerts by severity",
                "Alerts whose condition holds but whose 'for' duration has not passed yet.",
                "short",
                target(by("severity", pending, agg="count"), "{{severity}}"),
                stack=True,
                bars=True,
            ),
            state_timeline(
                "Alert history",
                "When each alert was pending (orange) or firing (red) in the time range.",
                "none",
                target(
                    f"2 * {by(alert_key, firing, agg='max')}\nor {by(alert_key, pending, 'max')}",
                    "{{alertname}} ({{severity}})",
                ),
                mappings=value_text({"1": ("pending", "orange"), "2": ("firing", "red")}),
                thresholds=_thresholds((None, "orange"), (2, "red")),
                width=24,
                height=10,
            ),
        ],
        extra_variables=[RUNBOOK_VARIABLE],
        refresh="1m",
    )


DASHBOARDS = (executive, platform_health, developer, sre, capacity_planning, alerts)


def build() -> dict[str, JSON]:
    """File name -> dashboard model, for every dashboard of the suite."""
    return {d.filename: render(d) for d in (make() for make in DASHBOARDS)}


def dumps(model: JSON) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def default_out(module_file: str | Path = __file__) -> Path | None:
    """``dashboards/`` of the source checkout this module runs from, or None when installed."""
    return checkout_dir("dashboards", module_file)


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in build().items():
        path = out / name
        path.write_text(dumps(model), encoding="utf-8")
        written.append(path)
    return written


def stale(out: Path) -> list[str]:
    """Files in ``out`` that differ from the generator's output, missing ones included."""
    return [
        name
        for name, model in build().items()
        if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != dumps(model)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tta_observability.mixin.dashboards",
        description="Write the Grafana dashboard suite (dashboards/*.json).",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=default_out(),
        help="output directory (default: the source checkout's dashboards/)",
    )
    parser.add_argument(
        "--check", action="store_true", help="only report files that differ; exit 1 if any"
    )
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error(
            "not running from a source checkout (no src/ with a pyproject.toml next to it): "
            "pass --out DIR"
        )
    if args.check:
        diff = stale(args.out)
        for name in diff:
            print(f"differs: {args.out / name}", file=sys.stderr)
        return 1 if diff else 0
    for path in write(args.out):
        print(f"wrote: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
