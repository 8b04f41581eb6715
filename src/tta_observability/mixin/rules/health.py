"""Health alerts: targets and services down, failing primitives and workflows, recovery
primitives misbehaving, LLM spend, span export and label overflow."""

from __future__ import annotations

from typing import Final

from ... import contract as c
from ..config import MixinConfig
from ..promql import agg, join, label, rate
from ..promql import eq as matcher
from . import names as n
from .model import Alert

SERVICE_DOWN_ALERT: Final = "TTAServiceDown"
SERVICE_GONE_ALERT: Final = "TTAServiceGone"
#: Circuit breaker state gauge value of an open breaker.
CIRCUIT_BREAKER_OPEN: Final = 2

_SVC = "{{ $labels.service_name }} ({{ $labels.environment }})"
_PRIM = "{{ $labels.primitive_name }}"
_WF = "{{ $labels.workflow }}"
_MAX_BY_SERVICE = f"max by ({join(n.SERVICE)})"


def _enough_calls_5m(config: MixinConfig) -> str:
    return f"{agg(n.PRIMITIVE, n.PRIMITIVE_EXECUTIONS_RATE5M)} * 300 >= {config.min_calls_5m}"


def _up(config: MixinConfig) -> str:
    return f'up{{{config.job_selector}, service_name!=""}}'


def _service_down(config: MixinConfig) -> str:
    """Targets of the service are discovered and none is up: a crash.

    A killed process leaves its file_sd entry behind and a crashed container that restarts stays
    discovered, so a crash keeps its targets with ``up == 0``. Targets without a ``service_name``
    label cannot be told apart by service; they are left to TTAMetricsTargetDown, and an empty
    ``service_name`` would make Alertmanager's inhibition treat every service-less alert as this
    service's.
    """
    return f"{_MAX_BY_SERVICE} ({_up(config)}) == 0"


def _service_gone(config: MixinConfig) -> str:
    """No target of the service is discovered now, but one was up within the lookback.

    A clean stop removes the app's discovery file and a container stopped on purpose leaves Docker
    discovery, so this is usually deliberate: it warns instead of paging (docs/rules.md).
    """
    up = _up(config)
    return (
        f"{_MAX_BY_SERVICE} (max_over_time({up}[{config.service_down_lookback}])) == 1"
        f" unless on ({join(n.SERVICE)}) {up}"
    )


def _latency_regression(config: MixinConfig) -> str:
    """p95 over twice its baseline: the same time yesterday, else the average over the last day.

    Yesterday's p95 has no value for a primitive younger than a day (absent) or one without
    calls at that time (NaN); ``>= 0`` keeps only real values, and ``unless`` uses the fallback
    exactly where the day-over-day comparison has nothing to compare with.
    """
    p95, factor = n.PRIMITIVE_DURATION_P95_5M, f"{config.latency_regression_factor:g}"
    yesterday = f"({p95} offset 1d)"
    return (
        f"({p95} > {factor} * {yesterday}"
        f" or ({p95} > {factor} * {n.PRIMITIVE_DURATION_P95_5M_AVG1D}"
        f" unless on ({join(n.PRIMITIVE)}) {yesterday} >= 0))"
        f" and {p95} > {config.latency_regression_min_seconds:g}"
        f" and {_enough_calls_5m(config)}"
    )


def _llm_over_budget(config: MixinConfig) -> str:
    """Hourly spend above the service's own budget gauge, or above the default without one."""
    cost, budget = n.SERVICE_LLM_COST_USD_INCREASE1H, n.LLM_BUDGET_USD_PER_HOUR_MAX
    on = f"on ({join(n.SERVICE)})"
    return (
        f"{cost} > {on} {budget}"
        f" or ({cost} > {config.llm_budget_usd_per_hour:g} unless {on} {budget})"
    )


def _llm_budget_text(config: MixinConfig) -> str:
    """The budget in the description: the service's gauge when it exports one, else the default."""
    return (
        f'{{{{ with printf "{n.LLM_BUDGET_USD_PER_HOUR_MAX}{{service_name=%q, environment=%q}}" '
        "$labels.service_name $labels.environment | query }}"
        f'{{{{ . | first | value | printf "%.2f" }}}} USD per hour ({c.LLM_BUDGET.name})'
        f"{{{{ else }}}}{config.llm_budget_usd_per_hour:.2f} USD per hour (the default: the "
        f"service exports no {c.LLM_BUDGET.name}){{{{ end }}}}"
    )


def _target_alerts(config: MixinConfig) -> list[Alert]:
    return [
        Alert(
            "TTAMetricsTargetDown",
            f"up{{{config.job_selector}}} == 0",
            "warning",
            "TTA metrics target {{ $labels.instance }} is down",
            "Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for "
            "5 minutes. Its SLOs and alerts are blind while it is down.",
            for_="5m",
        ),
        Alert(
            SERVICE_DOWN_ALERT,
            _service_down(config),
            "critical",
            f"Service {_SVC} is down: no metrics target is up",
            f"Every scrape target of {_SVC} is still discovered but none has been up for "
            "5 minutes: the service has crashed or hangs. Its SLO series are stale, so no burn "
            "alert can fire for it.",
            for_="5m",
        ),
        Alert(
            SERVICE_GONE_ALERT,
            _service_gone(config),
            "warning",
            f"Service {_SVC} has no metrics target any more",
            f"Every scrape target of {_SVC} left service discovery, after one was up in the last "
            f"{config.service_down_lookback}. Expected after a deliberate stop (the app removes "
            "its discovery file; a stopped container leaves Docker discovery); otherwise the "
            "service crashed without a restart.",
            for_="5m",
        ),
        Alert(
            "TTAMetricsAbsent",
            f"absent(up{{{config.job_selector}}} == 1)",
            "warning",
            "No TTA metrics target is up",
            f"No target selected by {config.job_selector} has been scraped successfully for "
            "10 minutes: service discovery found no TTA app, or every one is down. "
            "No SLO alert can fire without metrics.",
            for_="10m",
        ),
    ]


def _primitive_alerts(config: MixinConfig) -> list[Alert]:
    retries_failed = f"{n.RETRY_ATTEMPTS_RATE5M}{matcher(c.RETRY_ATTEMPTS, 'outcome', 'error')}"
    retry_key = (*n.SERVICE, "primitive_name")
    failed_per_s = agg(retry_key, retries_failed)
    return [
        Alert(
            "TTAPrimitiveErrorRateSpike",
            f"{n.PRIMITIVE_RAISED_ERROR_RATIO_RATE5M} > {config.primitive_error_ratio:g}"
            f" and on ({join(n.PRIMITIVE)}) {_enough_calls_5m(config)}",
            "warning",
            f"Primitive {_PRIM} of {_SVC} is failing in workflow {_WF}",
            "{{ $value | humanizePercentage }} of the calls of {{ $labels.primitive_type }} "
            f"primitive {_PRIM} in {_SVC} failed or timed out there over the last 5 minutes "
            f"(threshold {config.primitive_error_ratio:.0%}), most of them in runs of workflow "
            f"{_WF}. Failures "
            "it only passed on from observed calls inside it do not count: the primitive named "
            "here is where they start.",
            for_="5m",
        ),
        Alert(
            "TTAPrimitiveLatencyRegression",
            _latency_regression(config),
            "warning",
            f"Primitive {_PRIM} of {_SVC} is slower than its baseline",
            f"The p95 latency of {{{{ $labels.primitive_type }}}} primitive {_PRIM} in {_SVC} is "
            "{{ $value | humanizeDuration }}, more than "
            f"{config.latency_regression_factor:g} times its p95 at the same time one day "
            "earlier or, when that time has no p95 (a primitive younger than a day, no calls "
            "then), its average p95 over the last day.",
            for_="15m",
        ),
        Alert(
            "TTACircuitBreakerOpen",
            f"max by ({join((*n.SERVICE, 'primitive_name'))}) "
            f"(max_over_time({c.CIRCUIT_BREAKER_STATE.name}[2m])) == {CIRCUIT_BREAKER_OPEN}",
            "warning",
            f"Circuit breaker {_PRIM} of {_SVC} is open",
            f"Circuit breaker {_PRIM} in {_SVC} has been open, or reopened after each half-open "
            "probe, for 5 minutes: calls through it fail fast or take the fallback.",
            for_="5m",
        ),
        Alert(
            "TTARetryStorm",
            f"{failed_per_s} > {config.retry_storm_min_failed_per_second:g}"
            f" and {failed_per_s} / {agg(retry_key, n.RETRY_ATTEMPTS_RATE5M)}"
            f" > {config.retry_storm_failed_fraction:g}",
            "warning",
            f"Retry storm in {_PRIM} of {_SVC}",
            f"Retry primitive {_PRIM} in {_SVC} makes {{{{ $value | humanize }}}} failed attempts "
            "per second, and more than "
            f"{config.retry_storm_failed_fraction:.0%} of its attempts fail: retries multiply "
            "the load on a dependency that is already failing.",
            for_="10m",
        ),
        Alert(
            "TTAWorkflowFailureRate",
            f"{n.WORKFLOW_FAILURE_RATIO_RATE5M} > {config.workflow_failure_ratio:g}"
            f" and {agg(n.WORKFLOW, n.WORKFLOW_EXECUTIONS_RATE5M)} * 300 >= {config.min_calls_5m}",
            "warning",
            f"Workflow {{{{ $labels.workflow }}}} of {_SVC} is failing",
            "{{ $value | humanizePercentage }} of the runs of workflow {{ $labels.workflow }} in "
            f"{_SVC} failed or timed out over the last 5 minutes "
            f"(threshold {config.workflow_failure_ratio:.0%}).",
            for_="10m",
        ),
        Alert(
            "TTALLMCostOverBudget",
            _llm_over_budget(config),
            "warning",
            f"LLM spend of {_SVC} is over budget",
            f'{_SVC} spent {{{{ $value | printf "%.2f" }}}} USD on LLM calls in the last hour; '
            f"the budget is {_llm_budget_text(config)}.",
            for_="5m",
        ),
    ]


def _telemetry_alerts(config: MixinConfig) -> list[Alert]:
    spans = c.SPANS_EXPORTED
    failed_spans = agg(n.SERVICE, rate(spans.name + matcher(spans, "result", "failure"), "5m"))
    return [
        Alert(
            "TTASpanExportFailing",
            f"{failed_spans} / {agg(n.SERVICE, rate(spans.name, '5m'))}"
            f" > {config.span_export_failure_ratio:g}"
            f" and {failed_spans} * 300 >= {config.span_export_min_failures_5m}",
            "warning",
            f"Span export of {_SVC} is failing",
            f"{{{{ $value | humanizePercentage }}}} of the spans {_SVC} exported over the last "
            "5 minutes failed to reach the trace backend: traces and exemplar links are missing.",
            for_="10m",
        ),
        Alert(
            "TTASpansDropped",
            f"{agg(n.SERVICE, rate(c.SPANS_DROPPED.name, '5m'))} > 0",
            "warning",
            f"{_SVC} is dropping spans",
            f"{_SVC} drops {{{{ $value | humanize }}}} spans per second because its export queue "
            "is full: traces are incomplete and some exemplars lead nowhere.",
            for_="10m",
        ),
        Alert(
            "TTALabelOverflow",
            agg(
                (*n.SERVICE, label(c.LABEL_OVERFLOW, "metric"), label(c.LABEL_OVERFLOW, "label")),
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


def health_alerts(config: MixinConfig) -> list[Alert]:
    """Every health alert, in file order."""
    return [*_target_alerts(config), *_primitive_alerts(config), *_telemetry_alerts(config)]
