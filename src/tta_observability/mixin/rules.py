"""The shipped Prometheus rules: recording rules, SLO burn-rate rules and health alerts.

This module is the single source of truth for ``rules/*.yml``; ``python -m
tta_observability.mixin.rules`` rewrites them (``--check`` only compares; ``--runbook-base-url`` or
``$TTA_RUNBOOK_BASE_URL`` points the ``runbook_url`` annotations at another copy of the runbooks).
Metric names come from :mod:`tta_observability.contract`; the dashboards read the recorded names
from the constants here.

SLO rules are static and generic: they aggregate ``tta_slo_*`` by ``service_name``,
``environment`` and ``slo`` and take each objective from the ``tta_slo_objective_ratio`` gauge,
so an SLO declared in code needs no regeneration. ``docs/rules.md`` explains the maths.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import yaml

from tta_observability import contract as c
from tta_observability.mixin import checkout_dir

Severity = Literal["critical", "warning", "info"]

#: Where each alert's ``runbook_url`` points by default; the file is
#: ``docs/runbooks/<AlertName>.md``. The committed rule files use this base; ``--runbook-base-url``
#: or :data:`RUNBOOK_BASE_URL_ENV` point a generated copy at another one (a fork, an internal wiki).
RUNBOOK_BASE_URL: Final = "https://github.com/tta-dev/tta-observability/blob/main/docs/runbooks/"
RUNBOOK_BASE_URL_ENV: Final = "TTA_RUNBOOK_BASE_URL"

#: Jobs that scrape TTA apps match this; the bundled stack names its discovered apps "tta-apps".
TTA_JOB_REGEX: Final = "tta.*"

# Labels the rules aggregate by. Everything else (job, instance, pod) is summed away so that
# replicas of one service form one series.
SERVICE: Final = ("service_name", "environment")
PRIMITIVE: Final = (*SERVICE, "primitive_type", "primitive_name")
SLO_KEY: Final = (*SERVICE, "slo")
WORKFLOW: Final = (*SERVICE, "workflow")

#: Outcomes that count against a primitive or workflow; ``cancelled`` means the caller gave up.
FAILED_STATUSES: Final = (c.STATUS_ERROR, c.STATUS_TIMEOUT)

#: SLO windows, from the shortest burn-rate window to the 30-day budget period.
SLO_WINDOWS: Final = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
SLO_PERIOD: Final = "30d"
#: Windows whose ``rate()`` reads days of raw samples. They get their own group, evaluated every
#: :data:`SLO_SLOW_INTERVAL`, so that an overrunning long query cannot make the fast-burn group
#: skip evaluations (and pages). The interval stays under the 5-minute lookback, so instant
#: queries of these series never fall into a gap between two evaluations.
SLO_SLOW_WINDOWS: Final = ("3d", "30d")
SLO_SLOW_INTERVAL: Final = "2m"

# Thresholds of the health alerts (docs/rules.md explains each choice).
#: A burn-rate window must hold at least this many SLO calls before the alert may fire ...
SLO_MIN_REQUESTS: Final = 10
#: ... and at least this many bad calls, so one failure of a dozen calls an hour cannot page.
SLO_MIN_ERRORS: Final = 5
#: TTAServiceGone warns about a service whose targets all left service discovery, if one of them
#: was up within this window; after it, the alert resolves (docs/rules.md).
SERVICE_DOWN_LOOKBACK: Final = "1h"
#: Health alerts on ratios need this many calls in 5 minutes, so two failures of three do not page.
HEALTH_MIN_CALLS_5M: Final = 10
PRIMITIVE_ERROR_RATIO_THRESHOLD: Final = 0.1
WORKFLOW_FAILURE_RATIO_THRESHOLD: Final = 0.1
#: p95 must exceed this factor times the p95 at the same time one day earlier (or, when that has
#: no value, the average p95 over the last day) ...
LATENCY_REGRESSION_FACTOR: Final = 2.0
#: ... and this many seconds, so 1 ms turning into 3 ms does not count as a regression.
LATENCY_REGRESSION_MIN_SECONDS: Final = 0.1
RETRY_STORM_MIN_FAILED_PER_SECOND: Final = 1.0
RETRY_STORM_FAILED_FRACTION: Final = 0.5
#: LLM spend per service and environment over any rolling hour, in US dollars, for services that
#: export no ``tta_llm_budget_usd_per_hour`` gauge of their own.
LLM_COST_BUDGET_USD_PER_HOUR: Final = 10.0
SPAN_EXPORT_FAILURE_RATIO_THRESHOLD: Final = 0.1
#: ... of at least this many failed spans in 5 minutes, so one failed span of one does not count.
SPAN_EXPORT_MIN_FAILURES_5M: Final = 10
CIRCUIT_BREAKER_OPEN: Final = 2


@dataclass(frozen=True)
class BurnRateWindow:
    """One pair of the multi-window, multi-burn-rate alert (Google SRE workbook, chapter 5)."""

    long: str
    short: str
    burn_rate: float
    severity: Severity
    for_: str
    #: Share of the 30-day budget spent over ``long`` at exactly ``burn_rate``.
    budget_spent: str


BURN_RATE_WINDOWS: Final = (
    BurnRateWindow("1h", "5m", 14.4, "critical", "2m", "2%"),
    BurnRateWindow("6h", "30m", 6.0, "critical", "2m", "5%"),
    BurnRateWindow("1d", "2h", 3.0, "warning", "15m", "10%"),
    BurnRateWindow("3d", "6h", 1.0, "warning", "15m", "10%"),
)


def _by(labels: Sequence[str]) -> str:
    return ", ".join(labels)


def _label(metric: c.Metric, label: str) -> str:
    # Label names are spelled by the contract; fail at generation time if it drops one.
    if label not in metric.all_labels:
        raise ValueError(f"{metric.name} has no label {label!r} in the contract")
    return label


def _rate(series: str, window: str, matcher: str = "") -> str:
    return f"rate({series}{matcher}[{window}])"


def _sum(labels: Sequence[str], inner: str) -> str:
    return f"sum by ({_by(labels)}) ({inner})"


def _in(metric: c.Metric, label: str, values: Iterable[str]) -> str:
    return f'{{{_label(metric, label)}=~"{"|".join(values)}"}}'


def _eq(metric: c.Metric, label: str, value: str) -> str:
    return f'{{{_label(metric, label)}="{value}"}}'


def _ratio_or_zero(labels: Sequence[str], part: str, whole: str) -> str:
    """``part / whole``, reading 0 rather than nothing when ``part`` has no series yet.

    prometheus-client creates a labelled child on first use, so before the first error there is
    no error series at all; ``or 0 * whole`` makes the ratio 0 instead of absent.
    """
    return f"({_sum(labels, part)} or 0 * {_sum(labels, whole)}) / {_sum(labels, whole)}"


def _seconds(window: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return int(window[:-1]) * units[window[-1]]


# ---------------------------------------------------------------------------------------------
# Recorded series names (the dashboards import these).

PRIMITIVE_EXECUTIONS_RATE5M: Final = "tta:primitive_executions:rate5m"
PRIMITIVE_ERRORS_RATE5M: Final = "tta:primitive_errors:rate5m"
PRIMITIVE_ERROR_RATIO_RATE5M: Final = "tta:primitive_error_ratio:rate5m"
PRIMITIVE_DURATION_BUCKET_RATE5M: Final = "tta:primitive_duration_seconds_bucket:rate5m"
PRIMITIVE_DURATION_P50_5M: Final = "tta:primitive_duration_seconds:p50_5m"
PRIMITIVE_DURATION_P95_5M: Final = "tta:primitive_duration_seconds:p95_5m"
PRIMITIVE_DURATION_P99_5M: Final = "tta:primitive_duration_seconds:p99_5m"
#: Average of the 5-minute p95 over the last day, ignoring times without calls: the latency
#: regression's baseline when the same time yesterday has no p95.
PRIMITIVE_DURATION_P95_5M_AVG1D: Final = "tta:primitive_duration_seconds:p95_5m_avg1d"
PRIMITIVE_DURATION_MEAN_5M: Final = "tta:primitive_duration_seconds:mean5m"
PRIMITIVE_IN_FLIGHT_SUM: Final = "tta:primitive_in_flight:sum"
SERVICE_PRIMITIVE_EXECUTIONS_RATE5M: Final = "tta:service_primitive_executions:rate5m"
SERVICE_WORKFLOW_EXECUTIONS_RATE5M: Final = "tta:service_workflow_executions:rate5m"
WORKFLOW_EXECUTIONS_RATE5M: Final = "tta:workflow_executions:rate5m"
WORKFLOW_SUCCESS_RATIO_RATE5M: Final = "tta:workflow_success_ratio:rate5m"
WORKFLOW_FAILURE_RATIO_RATE5M: Final = "tta:workflow_failure_ratio:rate5m"
WORKFLOW_DURATION_P50_5M: Final = "tta:workflow_duration_seconds:p50_5m"
WORKFLOW_DURATION_P95_5M: Final = "tta:workflow_duration_seconds:p95_5m"
WORKFLOW_DURATION_P99_5M: Final = "tta:workflow_duration_seconds:p99_5m"
CACHE_REQUESTS_RATE5M: Final = "tta:cache_requests:rate5m"
CACHE_HIT_RATIO_RATE5M: Final = "tta:cache_hit_ratio:rate5m"
RETRY_ATTEMPTS_RATE5M: Final = "tta:retry_attempts:rate5m"
FALLBACK_ACTIVATIONS_RATE5M: Final = "tta:fallback_activations:rate5m"
TIMEOUTS_RATE5M: Final = "tta:timeouts:rate5m"
ROUTER_DECISIONS_RATE5M: Final = "tta:router_decisions:rate5m"
LLM_TOKENS_INCREASE1H: Final = "tta:llm_tokens:increase1h"
LLM_COST_USD_INCREASE1H: Final = "tta:llm_cost_usd:increase1h"
SERVICE_LLM_COST_USD_INCREASE1H: Final = "tta:service_llm_cost_usd:increase1h"
LLM_BUDGET_USD_PER_HOUR_MAX: Final = "tta:llm_budget_usd_per_hour:max"
SLO_OBJECTIVE: Final = "tta:slo_objective:ratio"
SLO_ERROR_BUDGET_REMAINING: Final = f"tta:slo_error_budget_remaining:ratio{SLO_PERIOD}"


def slo_requests(window: str) -> str:
    """Name of the recorded SLO call rate over ``window`` (calls per second)."""
    return f"tta:slo_requests:rate{window}"


def slo_errors(window: str) -> str:
    """Name of the recorded bad-call rate over ``window`` (calls per second)."""
    return f"tta:slo_errors:rate{window}"


def slo_error_ratio(window: str) -> str:
    """Name of the recorded SLO error ratio over ``window`` (bad calls / calls)."""
    return f"tta:slo_error_ratio:rate{window}"


def slo_burn_rate(window: str) -> str:
    """Name of the recorded burn rate over ``window`` (error ratio / error budget)."""
    return f"tta:slo_burn_rate:rate{window}"


# ---------------------------------------------------------------------------------------------
# Rule model.


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str

    def to_yaml(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr}


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: Severity
    summary: str
    description: str
    for_: str = "0m"
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def runbook(self) -> str:
        """Runbook path relative to the repository root."""
        return f"docs/runbooks/{self.name}.md"

    @property
    def runbook_url(self) -> str:
        """The runbook URL under the default :data:`RUNBOOK_BASE_URL`."""
        return f"{RUNBOOK_BASE_URL}{self.name}.md"

    def to_yaml(self, runbook_base_url: str = RUNBOOK_BASE_URL) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_ != "0m":
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity, **self.labels}
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": f"{runbook_base_url}{self.name}.md",
        }
        return rule


Rule = Recording | Alert


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Rule, ...]
    #: Evaluation interval; None keeps Prometheus' global ``evaluation_interval``.
    interval: str | None = None

    def to_yaml(self, runbook_base_url: str = RUNBOOK_BASE_URL) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name}
        if self.interval is not None:
            doc["interval"] = self.interval
        doc["rules"] = [
            r.to_yaml(runbook_base_url) if isinstance(r, Alert) else r.to_yaml() for r in self.rules
        ]
        return doc


# ---------------------------------------------------------------------------------------------
# Recording rules for dashboards and the health alerts.


def _histogram_rules(
    metric: c.Metric, labels: Sequence[str], names: Mapping[float, str]
) -> list[Recording]:
    bucket = f"{metric.name}_bucket"
    return [
        Recording(name, f"histogram_quantile({q}, {_sum(('le', *labels), _rate(bucket, '5m'))})")
        for q, name in names.items()
    ]


def _primitive_rules() -> list[Recording]:
    execs = c.PRIMITIVE_EXECUTIONS
    failed = f"{PRIMITIVE_EXECUTIONS_RATE5M}{_in(execs, 'status', FAILED_STATUSES)}"
    dur = c.PRIMITIVE_DURATION
    bucket_labels = ("le", *PRIMITIVE)
    return [
        Recording(
            PRIMITIVE_EXECUTIONS_RATE5M,
            _sum((*PRIMITIVE, _label(execs, "status")), _rate(execs.name, "5m")),
        ),
        Recording(
            PRIMITIVE_ERROR_RATIO_RATE5M,
            _ratio_or_zero(PRIMITIVE, failed, PRIMITIVE_EXECUTIONS_RATE5M),
        ),
        Recording(
            PRIMITIVE_ERRORS_RATE5M,
            _sum(
                (*PRIMITIVE, _label(c.PRIMITIVE_ERRORS, "error_type")),
                _rate(c.PRIMITIVE_ERRORS.name, "5m"),
            ),
        ),
        Recording(
            PRIMITIVE_DURATION_BUCKET_RATE5M,
            _sum(bucket_labels, _rate(f"{dur.name}_bucket", "5m")),
        ),
        *(
            Recording(
                name,
                f"histogram_quantile({q}, {_sum(bucket_labels, PRIMITIVE_DURATION_BUCKET_RATE5M)})",
            )
            for q, name in (
                (0.5, PRIMITIVE_DURATION_P50_5M),
                (0.95, PRIMITIVE_DURATION_P95_5M),
                (0.99, PRIMITIVE_DURATION_P99_5M),
            )
        ),
        # A 5-minute window without calls records p95 NaN, which would make the whole average
        # NaN; ">= 0" drops those samples, so the baseline covers the times with traffic.
        Recording(
            PRIMITIVE_DURATION_P95_5M_AVG1D,
            f"avg_over_time(({PRIMITIVE_DURATION_P95_5M} >= 0)[1d:5m])",
        ),
        Recording(
            PRIMITIVE_DURATION_MEAN_5M,
            f"{_sum(PRIMITIVE, _rate(f'{dur.name}_sum', '5m'))}"
            f" / {_sum(PRIMITIVE, _rate(f'{dur.name}_count', '5m'))}",
        ),
        Recording(PRIMITIVE_IN_FLIGHT_SUM, _sum(PRIMITIVE, c.PRIMITIVE_IN_FLIGHT.name)),
        Recording(SERVICE_PRIMITIVE_EXECUTIONS_RATE5M, _sum(SERVICE, PRIMITIVE_EXECUTIONS_RATE5M)),
    ]


def _workflow_rules() -> list[Recording]:
    execs = c.WORKFLOW_EXECUTIONS
    rate = WORKFLOW_EXECUTIONS_RATE5M
    return [
        Recording(rate, _sum((*WORKFLOW, _label(execs, "status")), _rate(execs.name, "5m"))),
        Recording(
            WORKFLOW_SUCCESS_RATIO_RATE5M,
            _ratio_or_zero(WORKFLOW, f"{rate}{_eq(execs, 'status', c.STATUS_SUCCESS)}", rate),
        ),
        Recording(
            WORKFLOW_FAILURE_RATIO_RATE5M,
            _ratio_or_zero(WORKFLOW, f"{rate}{_in(execs, 'status', FAILED_STATUSES)}", rate),
        ),
        *_histogram_rules(
            c.WORKFLOW_DURATION,
            WORKFLOW,
            {
                0.5: WORKFLOW_DURATION_P50_5M,
                0.95: WORKFLOW_DURATION_P95_5M,
                0.99: WORKFLOW_DURATION_P99_5M,
            },
        ),
        Recording(SERVICE_WORKFLOW_EXECUTIONS_RATE5M, _sum(SERVICE, rate)),
    ]


def _recovery_rules() -> list[Recording]:
    cache = c.CACHE_REQUESTS
    by_name = (*SERVICE, "primitive_name")

    def per(metric: c.Metric, *extra: str) -> str:
        labels = (*SERVICE, *(_label(metric, x) for x in ("primitive_name", *extra)))
        return _sum(labels, _rate(metric.name, "5m"))

    return [
        Recording(CACHE_REQUESTS_RATE5M, per(cache, "result")),
        Recording(
            CACHE_HIT_RATIO_RATE5M,
            _ratio_or_zero(
                by_name,
                f"{CACHE_REQUESTS_RATE5M}{_eq(cache, 'result', 'hit')}",
                CACHE_REQUESTS_RATE5M,
            ),
        ),
        Recording(RETRY_ATTEMPTS_RATE5M, per(c.RETRY_ATTEMPTS, "outcome")),
        Recording(FALLBACK_ACTIVATIONS_RATE5M, per(c.FALLBACK_ACTIVATIONS)),
        Recording(TIMEOUTS_RATE5M, per(c.TIMEOUTS)),
        Recording(ROUTER_DECISIONS_RATE5M, per(c.ROUTER_DECISIONS, "route")),
    ]


def _llm_rules() -> list[Recording]:
    tokens, cost = c.LLM_TOKENS, c.LLM_COST
    model = (*SERVICE, _label(cost, "provider"), _label(cost, "model"))
    return [
        Recording(
            LLM_TOKENS_INCREASE1H,
            _sum((*model, _label(tokens, "token_type")), f"increase({tokens.name}[1h])"),
        ),
        Recording(LLM_COST_USD_INCREASE1H, _sum(model, f"increase({cost.name}[1h])")),
        Recording(SERVICE_LLM_COST_USD_INCREASE1H, _sum(SERVICE, LLM_COST_USD_INCREASE1H)),
        # Replicas of one service export the same budget; max keeps one series per service.
        Recording(
            LLM_BUDGET_USD_PER_HOUR_MAX,
            f"max by ({_by([_label(c.LLM_BUDGET, x) for x in SERVICE])}) ({c.LLM_BUDGET.name})",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# SLO rules.


def _slo_window_rules(windows: Iterable[str]) -> list[Recording]:
    rules: list[Recording] = []
    for w in windows:
        rules += [
            Recording(slo_requests(w), _sum(SLO_KEY, _rate(c.SLO_REQUESTS.name, w))),
            # No error series exists before the first bad call; read that as 0 bad calls.
            Recording(
                slo_errors(w),
                f"{_sum(SLO_KEY, _rate(c.SLO_ERRORS.name, w))} or 0 * {slo_requests(w)}",
            ),
            Recording(slo_error_ratio(w), f"{slo_errors(w)} / {slo_requests(w)}"),
            Recording(
                slo_burn_rate(w),
                f"{slo_error_ratio(w)} / on ({_by(SLO_KEY)}) (1 - {SLO_OBJECTIVE})",
            ),
        ]
    return rules


def _slo_fast_group() -> Group:
    windows = [w for w in SLO_WINDOWS if w not in SLO_SLOW_WINDOWS]
    return Group(
        "tta-slo",
        (
            Recording(SLO_OBJECTIVE, f"max by ({_by(SLO_KEY)}) ({c.SLO_OBJECTIVE.name})"),
            *_slo_window_rules(windows),
            *(_burn_alert(w) for w in BURN_RATE_WINDOWS if w.long not in SLO_SLOW_WINDOWS),
        ),
    )


def _slo_slow_group() -> Group:
    # Its burn alert reads the short window (6h) from the fast group: at most one fast
    # evaluation old, which a ticket alert pending for 15 minutes does not notice.
    return Group(
        "tta-slo-long-windows",
        (
            *_slo_window_rules(SLO_SLOW_WINDOWS),
            Recording(SLO_ERROR_BUDGET_REMAINING, f"1 - {slo_burn_rate(SLO_PERIOD)}"),
            *(_burn_alert(w) for w in BURN_RATE_WINDOWS if w.long in SLO_SLOW_WINDOWS),
        ),
        interval=SLO_SLOW_INTERVAL,
    )


SLO_BURN_ALERT: Final = "TTASLOErrorBudgetBurn"


def _burn_alert(w: BurnRateWindow) -> Alert:
    threshold = f"{w.burn_rate:g}"
    expr = (
        f"{slo_burn_rate(w.long)} > {threshold}"
        f" and {slo_burn_rate(w.short)} > {threshold}"
        f" and {slo_requests(w.long)} * {_seconds(w.long)} >= {SLO_MIN_REQUESTS}"
        f" and {slo_errors(w.long)} * {_seconds(w.long)} >= {SLO_MIN_ERRORS}"
    )
    pace = "fast" if w.severity == "critical" else "steadily"
    return Alert(
        SLO_BURN_ALERT,
        expr,
        w.severity,
        summary=(
            "SLO {{ $labels.slo }} of {{ $labels.service_name }} ({{ $labels.environment }}) "
            f"is burning its error budget {pace}"
        ),
        description=(
            "SLO {{ $labels.slo }} of {{ $labels.service_name }} in {{ $labels.environment }} "
            "burns its error budget {{ $value | humanize }} times faster than it can sustain "
            f"over the last {w.long} (threshold {threshold}, also exceeded over {w.short}). "
            f"Burning at {threshold} spends {w.budget_spent} of the {SLO_PERIOD} budget "
            f"in {w.long}."
        ),
        for_=w.for_,
        labels={"long_window": w.long, "short_window": w.short},
    )


# ---------------------------------------------------------------------------------------------
# Health alerts.

_SVC = "{{ $labels.service_name }} ({{ $labels.environment }})"
_PRIM = "{{ $labels.primitive_name }}"

_ENOUGH_CALLS_5M = f"{_sum(PRIMITIVE, PRIMITIVE_EXECUTIONS_RATE5M)} * 300 >= {HEALTH_MIN_CALLS_5M}"

SERVICE_DOWN_ALERT: Final = "TTAServiceDown"
SERVICE_GONE_ALERT: Final = "TTAServiceGone"


_UP = f'up{{job=~"{TTA_JOB_REGEX}", service_name!=""}}'
_MAX_BY_SERVICE = f"max by ({_by(SERVICE)})"


def _service_down() -> str:
    """Targets of the service are discovered and none is up: a crash.

    A killed process leaves its file_sd entry behind and a crashed container that restarts stays
    discovered, so a crash keeps its targets with ``up == 0``. Targets without a ``service_name``
    label cannot be told apart by service; they are left to TTAMetricsTargetDown, and an empty
    ``service_name`` would make Alertmanager's inhibition treat every service-less alert as this
    service's.
    """
    return f"{_MAX_BY_SERVICE} ({_UP}) == 0"


def _service_gone() -> str:
    """No target of the service is discovered now, but one was up within the lookback.

    A clean stop removes the app's discovery file and a container stopped on purpose leaves Docker
    discovery, so this is usually deliberate: it warns instead of paging (docs/rules.md).
    """
    return (
        f"{_MAX_BY_SERVICE} (max_over_time({_UP}[{SERVICE_DOWN_LOOKBACK}])) == 1"
        f" unless on ({_by(SERVICE)}) {_UP}"
    )


def _latency_regression() -> str:
    """p95 over twice its baseline: the same time yesterday, else the average over the last day.

    Yesterday's p95 has no value for a primitive younger than a day (absent) or one without
    calls at that time (NaN); ``>= 0`` keeps only real values, and ``unless`` uses the fallback
    exactly where the day-over-day comparison has nothing to compare with.
    """
    p95, factor = PRIMITIVE_DURATION_P95_5M, f"{LATENCY_REGRESSION_FACTOR:g}"
    yesterday = f"({p95} offset 1d)"
    return (
        f"({p95} > {factor} * {yesterday}"
        f" or ({p95} > {factor} * {PRIMITIVE_DURATION_P95_5M_AVG1D}"
        f" unless on ({_by(PRIMITIVE)}) {yesterday} >= 0))"
        f" and {p95} > {LATENCY_REGRESSION_MIN_SECONDS:g}"
        f" and {_ENOUGH_CALLS_5M}"
    )


def _llm_over_budget() -> str:
    """Hourly spend above the service's own budget gauge, or above the default without one."""
    cost, budget = SERVICE_LLM_COST_USD_INCREASE1H, LLM_BUDGET_USD_PER_HOUR_MAX
    on = f"on ({_by(SERVICE)})"
    return (
        f"{cost} > {on} {budget}"
        f" or ({cost} > {LLM_COST_BUDGET_USD_PER_HOUR:g} unless {on} {budget})"
    )


#: The budget in the description: the service's gauge when it exports one, else the default.
_LLM_BUDGET_TEXT = (
    f'{{{{ with printf "{LLM_BUDGET_USD_PER_HOUR_MAX}{{service_name=%q, environment=%q}}" '
    "$labels.service_name $labels.environment | query }}"
    f'{{{{ . | first | value | printf "%.2f" }}}} USD per hour ({c.LLM_BUDGET.name})'
    f"{{{{ else }}}}{LLM_COST_BUDGET_USD_PER_HOUR:.2f} USD per hour (the default: the service "
    f"exports no {c.LLM_BUDGET.name}){{{{ end }}}}"
)


def _health_alerts() -> list[Alert]:
    spans = c.SPANS_EXPORTED
    retries_failed = f"{RETRY_ATTEMPTS_RATE5M}{_eq(c.RETRY_ATTEMPTS, 'outcome', 'error')}"
    retry_key = (*SERVICE, "primitive_name")
    regression = f"{LATENCY_REGRESSION_FACTOR:g}"
    failed_spans = _sum(SERVICE, _rate(spans.name, "5m", _eq(spans, "result", "failure")))
    return [
        Alert(
            "TTAMetricsTargetDown",
            f'up{{job=~"{TTA_JOB_REGEX}"}} == 0',
            "warning",
            "TTA metrics target {{ $labels.instance }} is down",
            "Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for "
            "5 minutes. Its SLOs and alerts are blind while it is down.",
            for_="5m",
        ),
        Alert(
            SERVICE_DOWN_ALERT,
            _service_down(),
            "critical",
            f"Service {_SVC} is down: no metrics target is up",
            f"Every scrape target of {_SVC} is still discovered but none has been up for "
            "5 minutes: the service has crashed or hangs. Its SLO series are stale, so no burn "
            "alert can fire for it.",
            for_="5m",
        ),
        Alert(
            SERVICE_GONE_ALERT,
            _service_gone(),
            "warning",
            f"Service {_SVC} has no metrics target any more",
            f"Every scrape target of {_SVC} left service discovery, after one was up in the last "
            f"{SERVICE_DOWN_LOOKBACK}. Expected after a deliberate stop (the app removes its "
            "discovery file; a stopped container leaves Docker discovery); otherwise the "
            "service crashed without a restart.",
            for_="5m",
        ),
        Alert(
            "TTAMetricsAbsent",
            f'absent(up{{job=~"{TTA_JOB_REGEX}"}} == 1)',
            "warning",
            "No TTA metrics target is up",
            f'No target of a job matching "{TTA_JOB_REGEX}" has been scraped successfully for '
            "10 minutes: service discovery found no TTA app, or every one is down. "
            "No SLO alert can fire without metrics.",
            for_="10m",
        ),
        Alert(
            "TTAPrimitiveErrorRateSpike",
            f"{PRIMITIVE_ERROR_RATIO_RATE5M} > {PRIMITIVE_ERROR_RATIO_THRESHOLD:g}"
            f" and {_ENOUGH_CALLS_5M}",
            "warning",
            f"Primitive {_PRIM} of {_SVC} is failing",
            "{{ $value | humanizePercentage }} of the calls of {{ $labels.primitive_type }} "
            f"primitive {_PRIM} in {_SVC} failed or timed out over the last 5 minutes "
            f"(threshold {PRIMITIVE_ERROR_RATIO_THRESHOLD:.0%}).",
            for_="5m",
        ),
        Alert(
            "TTAPrimitiveLatencyRegression",
            _latency_regression(),
            "warning",
            f"Primitive {_PRIM} of {_SVC} is slower than its baseline",
            f"The p95 latency of {{{{ $labels.primitive_type }}}} primitive {_PRIM} in {_SVC} is "
            "{{ $value | humanizeDuration }}, more than "
            f"{regression} times its p95 at the same time one day earlier or, when that time "
            "has no p95 (a primitive younger than a day, no calls then), its average p95 over "
            "the last day.",
            for_="15m",
        ),
        Alert(
            "TTACircuitBreakerOpen",
            f"max by ({_by((*SERVICE, 'primitive_name'))}) "
            f"(max_over_time({c.CIRCUIT_BREAKER_STATE.name}[2m])) == {CIRCUIT_BREAKER_OPEN}",
            "warning",
            f"Circuit breaker {_PRIM} of {_SVC} is open",
            f"Circuit breaker {_PRIM} in {_SVC} has been open, or reopened after each half-open "
            "probe, for 5 minutes: calls through it fail fast or take the fallback.",
            for_="5m",
        ),
        Alert(
            "TTARetryStorm",
            f"{_sum(retry_key, retries_failed)} > {RETRY_STORM_MIN_FAILED_PER_SECOND:g}"
            f" and {_sum(retry_key, retries_failed)} / {_sum(retry_key, RETRY_ATTEMPTS_RATE5M)}"
            f" > {RETRY_STORM_FAILED_FRACTION:g}",
            "warning",
            f"Retry storm in {_PRIM} of {_SVC}",
            f"Retry primitive {_PRIM} in {_SVC} makes {{{{ $value | humanize }}}} failed attempts "
            "per second, and more than "
            f"{RETRY_STORM_FAILED_FRACTION:.0%} of its attempts fail: retries multiply the load "
            "on a dependency that is already failing.",
            for_="10m",
        ),
        Alert(
            "TTAWorkflowFailureRate",
            f"{WORKFLOW_FAILURE_RATIO_RATE5M} > {WORKFLOW_FAILURE_RATIO_THRESHOLD:g}"
            f" and {_sum(WORKFLOW, WORKFLOW_EXECUTIONS_RATE5M)} * 300 >= {HEALTH_MIN_CALLS_5M}",
            "warning",
            f"Workflow {{{{ $labels.workflow }}}} of {_SVC} is failing",
            "{{ $value | humanizePercentage }} of the runs of workflow {{ $labels.workflow }} in "
            f"{_SVC} failed or timed out over the last 5 minutes "
            f"(threshold {WORKFLOW_FAILURE_RATIO_THRESHOLD:.0%}).",
            for_="10m",
        ),
        Alert(
            "TTALLMCostOverBudget",
            _llm_over_budget(),
            "warning",
            f"LLM spend of {_SVC} is over budget",
            f'{_SVC} spent {{{{ $value | printf "%.2f" }}}} USD on LLM calls in the last hour; '
            f"the budget is {_LLM_BUDGET_TEXT}.",
            for_="5m",
        ),
        Alert(
            "TTASpanExportFailing",
            f"{failed_spans} / {_sum(SERVICE, _rate(spans.name, '5m'))}"
            f" > {SPAN_EXPORT_FAILURE_RATIO_THRESHOLD:g}"
            f" and {failed_spans} * 300 >= {SPAN_EXPORT_MIN_FAILURES_5M}",
            "warning",
            f"Span export of {_SVC} is failing",
            f"{{{{ $value | humanizePercentage }}}} of the spans {_SVC} exported over the last "
            "5 minutes failed to reach the trace backend: traces and exemplar links are missing.",
            for_="10m",
        ),
        Alert(
            "TTASpansDropped",
            f"{_sum(SERVICE, _rate(c.SPANS_DROPPED.name, '5m'))} > 0",
            "warning",
            f"{_SVC} is dropping spans",
            f"{_SVC} drops {{{{ $value | humanize }}}} spans per second because its export queue "
            "is full: traces are incomplete and some exemplars lead nowhere.",
            for_="10m",
        ),
        Alert(
            "TTALabelOverflow",
            _sum(
                (*SERVICE, _label(c.LABEL_OVERFLOW, "metric"), _label(c.LABEL_OVERFLOW, "label")),
                f"increase({c.LABEL_OVERFLOW.name}[1h])",
            )
            + " > 0",
            "info",
            f"Label {{{{ $labels.label }}}} of {{{{ $labels.metric }}}} overflows in {_SVC}",
            "{{ $value | humanize }} values of label {{ $labels.label }} on metric "
            f"{{{{ $labels.metric }}}} in {_SVC} were folded into {c.OVERFLOW_VALUE} in the last "
            "hour: the label takes more distinct values than the cardinality limit.",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Files.

RECORDING_FILE: Final = "tta-recording.rules.yml"
SLO_FILE: Final = "tta-slo.rules.yml"
ALERTS_FILE: Final = "tta-alerts.rules.yml"


def rule_files() -> dict[str, tuple[Group, ...]]:
    """Every shipped rule file name with its groups, in file order."""
    return {
        RECORDING_FILE: (
            Group("tta-primitives", tuple(_primitive_rules())),
            Group("tta-workflows", tuple(_workflow_rules())),
            Group("tta-recovery", tuple(_recovery_rules())),
            Group("tta-llm", tuple(_llm_rules())),
        ),
        # Rules of a group run in order at one timestamp, so each burn alert sits in the group
        # that records its long window and reads the ratios of the same evaluation.
        SLO_FILE: (_slo_fast_group(), _slo_slow_group()),
        ALERTS_FILE: (Group("tta-health", tuple(_health_alerts())),),
    }


def all_rules() -> list[Rule]:
    return [r for groups in rule_files().values() for g in groups for r in g.rules]


def recorded_names() -> list[str]:
    """Every series name the recording rules produce, in file order."""
    return [r.record for r in all_rules() if isinstance(r, Recording)]


def alerts() -> list[Alert]:
    """Every alert rule (the burn-rate alert appears once per window pair)."""
    return [r for r in all_rules() if isinstance(r, Alert)]


def alert_runbooks() -> dict[str, str]:
    """Alert name -> runbook path relative to the repository root."""
    return {a.name: a.runbook for a in alerts()}


_HEADER = (
    "# Generated by `python -m tta_observability.mixin.rules` from "
    "src/tta_observability/mixin/rules.py; do not edit.\n"
)


def check_runbook_base_url(url: str) -> str:
    """``url`` as a runbook base: an absolute http(s) URL, ending in ``/``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"runbook base URL {url!r} is not an absolute http:// or https:// URL "
            f"(for example {RUNBOOK_BASE_URL})"
        )
    if parts.query or parts.fragment:
        raise ValueError(
            f"runbook base URL {url!r} has a query or fragment; the alert name is appended to it"
        )
    base = url.strip()
    return base if base.endswith("/") else base + "/"


def render(runbook_base_url: str = RUNBOOK_BASE_URL) -> dict[str, str]:
    """File name -> YAML text; with the default base URL, exactly as committed under ``rules/``."""
    base = check_runbook_base_url(runbook_base_url)
    return {
        name: _HEADER
        + yaml.safe_dump(
            {"groups": [g.to_yaml(base) for g in groups]},
            sort_keys=False,
            width=1_000_000,
            allow_unicode=True,
        )
        for name, groups in rule_files().items()
    }


# ---------------------------------------------------------------------------------------------
# Metric names in PromQL, for the test that no rule or panel queries a name nothing produces.

_TOKEN = re.compile(
    r"""(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      |(?P<dur>\[[^\]]*\])
      |(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[smhdwy]?)
      |(?P<id>[A-Za-z_:][A-Za-z0-9_:]*)
      |(?P<punct>[{}()])
      |(?P<other>\S)""",
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {
        *("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"),
        *("bottomk", "topk", "quantile", "by", "without", "on", "ignoring", "group_left"),
        *("group_right", "and", "or", "unless", "offset", "bool", "atan2", "inf", "nan"),
    }
)
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


def metric_names(expr: str) -> set[str]:
    """Series names that a PromQL expression selects (functions and label names excluded)."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr)]
    names: set[str] = set()
    depth_braces = 0
    skip_list = False
    for i, (kind, text) in enumerate(tokens):
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "punct":
            if text == "{":
                depth_braces += 1
            elif text == "}":
                depth_braces -= 1
            elif text == ")" and skip_list:
                skip_list = False
            continue
        if kind != "id" or depth_braces or skip_list:
            continue
        if text in _GROUPING:
            skip_list = nxt == "("
            continue
        if text in _KEYWORDS or nxt == "(":
            continue
        names.add(text)
    return names


def unknown_metric_names() -> dict[str, set[str]]:
    """Rule name -> names it queries that neither the contract nor a recording rule produces."""
    known = c.known_series() | set(recorded_names())
    out: dict[str, set[str]] = {}
    for rule in all_rules():
        missing = metric_names(rule.expr) - known
        if missing:
            name = rule.record if isinstance(rule, Recording) else rule.name
            out.setdefault(name, set()).update(missing)
    return out


def _default_out_dir() -> Path | None:
    """``rules/`` of the source checkout this module runs from, if it runs from one."""
    return checkout_dir("rules", __file__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tta_observability.mixin.rules",
        description="Write the shipped Prometheus rule files (rules/*.yml).",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=_default_out_dir(),
        help="directory (default: the checkout's rules/)",
    )
    parser.add_argument(
        "--check", action="store_true", help="only report files that differ; exit 1 if any"
    )
    parser.add_argument(
        "--runbook-base-url",
        default=os.environ.get(RUNBOOK_BASE_URL_ENV) or RUNBOOK_BASE_URL,
        metavar="URL",
        help=(
            "base of every alert's runbook_url; <AlertName>.md is appended "
            f"(default: ${RUNBOOK_BASE_URL_ENV}, else {RUNBOOK_BASE_URL})"
        ),
    )
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("not running from a source checkout: pass --out DIR")
    try:
        files = render(args.runbook_base_url)
    except ValueError as exc:
        parser.error(f"--runbook-base-url / ${RUNBOOK_BASE_URL_ENV}: {exc}")
    out: Path = args.out
    stale = []
    for name, text in files.items():
        path = out / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'differs' if args.check else 'wrote'}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
