"""The metric contract: every metric name, label set, bucket list and span attribute key.

Nothing else in the library spells a metric name. ``docs/metrics.md``, the shipped rules and the
dashboards are checked against this module by tests, so a panel or an alert can never query a
name that no code emits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

CONTRACT_VERSION: Final = 1

MetricType = Literal["counter", "gauge", "histogram"]

#: Labels that every series carries. Their values come from ``setup()`` and are applied at scrape
#: time, so calls made before ``setup()`` are still counted under the final service name.
COMMON_LABELS: Final = ("service_name", "environment")

#: Seconds. LLM calls take seconds to minutes; in-process primitives take milliseconds.
DURATION_BUCKETS_SECONDS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)

#: CI steps run from seconds to the better part of an hour.
CI_DURATION_BUCKETS_SECONDS: Final = (
    1.0,
    5.0,
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)

STATUS_SUCCESS: Final = "success"
STATUS_ERROR: Final = "error"
STATUS_TIMEOUT: Final = "timeout"
STATUS_CANCELLED: Final = "cancelled"
STATUSES: Final = (STATUS_SUCCESS, STATUS_ERROR, STATUS_TIMEOUT, STATUS_CANCELLED)

#: Label value that replaces any value past the cardinality limit.
OVERFLOW_VALUE: Final = "__overflow__"
#: Longest label value kept; longer values are truncated.
MAX_LABEL_VALUE_LENGTH: Final = 128
#: Distinct values one bounded label may take per metric before folding into ``OVERFLOW_VALUE``.
DEFAULT_MAX_LABEL_VALUES: Final = 1000

#: Calls in one workflow run (observed calls, or LLM calls): agent runs make one to a thousand.
RUN_CALLS_BUCKETS: Final = (
    1.0,
    2.0,
    3.0,
    5.0,
    10.0,
    20.0,
    30.0,
    50.0,
    100.0,
    200.0,
    300.0,
    500.0,
    1000.0,
)
#: LLM tokens used in one workflow run.
RUN_TOKENS_BUCKETS: Final = (
    100.0,
    300.0,
    1000.0,
    3000.0,
    10000.0,
    30000.0,
    100000.0,
    300000.0,
    1000000.0,
    3000000.0,
    10000000.0,
)
#: US dollars spent on LLM calls in one workflow run: a hundredth of a cent to a hundred dollars.
RUN_COST_BUCKETS_USD: Final = (
    0.0001,
    0.0003,
    0.001,
    0.003,
    0.01,
    0.03,
    0.1,
    0.3,
    1.0,
    3.0,
    10.0,
    30.0,
    100.0,
)

#: Labels whose values come from user data and so are bounded by the cardinality guard.
BOUNDED_LABELS: Final = frozenset(
    {
        "primitive_name",
        "error_type",
        "slo",
        "workflow",
        "route",
        "model",
        "provider",
        "parent",
        "child",
    }
)


@dataclass(frozen=True)
class Metric:
    """One metric of the contract. ``labels`` excludes :data:`COMMON_LABELS`."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None
    #: Family, for the docs: "core" series are emitted by ``@observed``.
    group: str = "core"
    #: Labels every series of this metric carries besides ``labels``.
    common: tuple[str, ...] = COMMON_LABELS

    @property
    def all_labels(self) -> tuple[str, ...]:
        return (*self.common, *self.labels)

    @property
    def series_names(self) -> tuple[str, ...]:
        """Names of the series Prometheus stores for this metric."""
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


_P = ("primitive_type", "primitive_name")

PRIMITIVE_EXECUTIONS = Metric(
    "tta_primitive_executions_total",
    "counter",
    "Calls of an observed primitive or function, by outcome.",
    (*_P, "status"),
)
#: ``origin`` of ``tta_primitive_errors_total``: the failure started in this call (the first
#: observed call its exception left) ...
ORIGIN_RAISED: Final = "raised"
#: ... or the call only passed on a failure that started in an observed call inside it (the same
#: exception, or one raised from it or while handling it).
ORIGIN_PROPAGATED: Final = "propagated"
ORIGINS: Final = (ORIGIN_RAISED, ORIGIN_PROPAGATED)

PRIMITIVE_ERRORS = Metric(
    "tta_primitive_errors_total",
    "counter",
    "Calls that failed (status error or timeout), by exception class name, whether the failure "
    "started in the call (origin raised) or in an observed call inside it (origin propagated), "
    "and the workflow run the call belonged to.",
    (*_P, "error_type", "origin", "workflow"),
)
PRIMITIVE_DURATION = Metric(
    "tta_primitive_duration_seconds",
    "histogram",
    "Wall-clock duration of an observed call, exemplars link to its trace.",
    _P,
    DURATION_BUCKETS_SECONDS,
)
PRIMITIVE_IN_FLIGHT = Metric(
    "tta_primitive_in_flight",
    "gauge",
    "Observed calls currently running.",
    _P,
)
SLO_REQUESTS = Metric(
    "tta_slo_requests_total", "counter", "Calls counted towards an SLO.", ("slo",), group="slo"
)
SLO_ERRORS = Metric(
    "tta_slo_errors_total",
    "counter",
    "SLO calls that failed or ran longer than the SLO's latency threshold.",
    ("slo",),
    group="slo",
)
SLO_OBJECTIVE = Metric(
    "tta_slo_objective_ratio",
    "gauge",
    "Target ratio of good calls for an SLO (for example 0.999).",
    ("slo",),
    group="slo",
)
SLO_LATENCY_THRESHOLD = Metric(
    "tta_slo_latency_threshold_seconds",
    "gauge",
    "Latency above which an SLO call counts as bad.",
    ("slo",),
    group="slo",
)
BUILD_INFO = Metric(
    "tta_build_info",
    "gauge",
    "Always 1; labels say which build of the application is running.",
    ("version", "commit", "tta_observability_version"),
)
LABEL_OVERFLOW = Metric(
    "tta_observability_label_overflow_total",
    "counter",
    "Label values folded into __overflow__ by the cardinality guard.",
    ("metric", "label"),
)
SPANS_EXPORTED = Metric(
    "tta_observability_spans_exported_total",
    "counter",
    "Spans handed to the span exporter, by result (success or failure).",
    ("result",),
    group="export",
)
SPANS_DROPPED = Metric(
    "tta_observability_spans_dropped_total",
    "counter",
    "Spans dropped because the export queue was full.",
    group="export",
)

WORKFLOW_EXECUTIONS = Metric(
    "tta_workflow_executions_total",
    "counter",
    "Workflow runs (the outermost observed call of a trace, for roots that run other observed "
    "or LLM calls), by outcome.",
    ("workflow", "status"),
    group="workflow",
)
WORKFLOW_DURATION = Metric(
    "tta_workflow_duration_seconds",
    "histogram",
    "Duration of a workflow run, exemplars link to its trace.",
    ("workflow",),
    DURATION_BUCKETS_SECONDS,
    group="workflow",
)
PRIMITIVE_TIME_TO_FIRST_ITEM = Metric(
    "tta_primitive_time_to_first_item_seconds",
    "histogram",
    "Time from the start of an observed generator's iteration to its first item (time to first "
    "token of a streamed LLM answer), exemplars link to its trace.",
    _P,
    DURATION_BUCKETS_SECONDS,
    group="stream",
)
PRIMITIVE_SELF_DURATION = Metric(
    "tta_primitive_self_duration_seconds",
    "histogram",
    "Time of a call not covered by any of its observed children (overlapping children count "
    "once); only calls that had children, as a leaf's self time is its duration.",
    _P,
    DURATION_BUCKETS_SECONDS,
    group="shape",
)
WORKFLOW_EDGE_INFO = Metric(
    "tta_workflow_edge_info",
    "gauge",
    'Always 1; one series per parent -> child edge of a workflow (the root has parent "").',
    ("workflow", "parent", "child"),
    group="shape",
)
WORKFLOW_RUN_PRIMITIVE_CALLS = Metric(
    "tta_workflow_run_primitive_calls",
    "histogram",
    "Observed calls made by one workflow run, its root included; one observation per run.",
    ("workflow",),
    RUN_CALLS_BUCKETS,
    group="shape",
)
WORKFLOW_RUN_LLM_CALLS = Metric(
    "tta_workflow_run_llm_calls",
    "histogram",
    "LLM calls (llm primitives and record_llm_usage() reports) made by one workflow run.",
    ("workflow",),
    RUN_CALLS_BUCKETS,
    group="shape",
)
WORKFLOW_RUN_LLM_TOKENS = Metric(
    "tta_workflow_run_llm_tokens",
    "histogram",
    "LLM tokens (input and output) used by one workflow run.",
    ("workflow",),
    RUN_TOKENS_BUCKETS,
    group="shape",
)
WORKFLOW_RUN_COST = Metric(
    "tta_workflow_run_cost_usd",
    "histogram",
    "LLM spend in US dollars of one workflow run.",
    ("workflow",),
    RUN_COST_BUCKETS_USD,
    group="shape",
)
RUN_BUDGET_EXCEEDED = Metric(
    "tta_run_budget_exceeded_total",
    "counter",
    "Runs stopped by a RunBudget, by the limit they hit (llm_calls, tokens or cost_usd).",
    ("workflow", "limit"),
    group="budget",
)
RETRY_ATTEMPTS = Metric(
    "tta_retry_attempts_total",
    "counter",
    "Attempts made by a retry primitive, by outcome (success or error).",
    ("primitive_name", "outcome"),
    group="recovery",
)
FALLBACK_ACTIVATIONS = Metric(
    "tta_fallback_activations_total",
    "counter",
    "Times a fallback primitive ran its fallback branch.",
    ("primitive_name",),
    group="recovery",
)
COMPENSATIONS = Metric(
    "tta_compensations_total",
    "counter",
    "Compensations a saga primitive ran after its forward step failed, by outcome (success or "
    "error).",
    ("primitive_name", "outcome"),
    group="recovery",
)
TIMEOUTS = Metric(
    "tta_timeouts_total",
    "counter",
    "Calls cut off by a timeout primitive.",
    ("primitive_name",),
    group="recovery",
)
CIRCUIT_BREAKER_STATE = Metric(
    "tta_circuit_breaker_state",
    "gauge",
    "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
    ("primitive_name",),
    group="recovery",
)
CIRCUIT_BREAKER_TRANSITIONS = Metric(
    "tta_circuit_breaker_transitions_total",
    "counter",
    "Circuit breaker state changes.",
    ("primitive_name", "from_state", "to_state"),
    group="recovery",
)
CACHE_REQUESTS = Metric(
    "tta_cache_requests_total",
    "counter",
    "Cache lookups, by result (hit or miss).",
    ("primitive_name", "result"),
    group="recovery",
)
ROUTER_DECISIONS = Metric(
    "tta_router_decisions_total",
    "counter",
    "Routes chosen by a router or switch primitive.",
    ("primitive_name", "route"),
    group="recovery",
)
#: ``workflow`` of LLM series recorded outside any workflow run.
NO_WORKFLOW: Final = "none"
#: Why LLM spend bought nothing: the attempt was retried, a fallback served instead, a timeout
#: cut it off, the run was cancelled, or the workflow run failed anyway.
WASTE_RETRIED: Final = "retried"
WASTE_FALLBACK: Final = "fallback"
WASTE_TIMEOUT: Final = "timeout"
WASTE_CANCELLED: Final = "cancelled"
WASTE_ERROR: Final = "error"
WASTE_REASONS: Final = (WASTE_RETRIED, WASTE_FALLBACK, WASTE_TIMEOUT, WASTE_CANCELLED, WASTE_ERROR)
#: ``resource`` of the rate-limit gauges.
RATELIMIT_RESOURCES: Final = ("requests", "tokens", "input_tokens", "output_tokens")

LLM_TOKENS = Metric(
    "tta_llm_tokens_total",
    "counter",
    "LLM tokens used, by workflow run and token_type (input or output).",
    ("workflow", "provider", "model", "token_type"),
    group="llm",
)
LLM_COST = Metric(
    "tta_llm_cost_usd_total",
    "counter",
    "LLM spend in US dollars, by workflow run.",
    ("workflow", "provider", "model"),
    group="llm",
)
LLM_WASTED_COST = Metric(
    "tta_llm_wasted_cost_usd_total",
    "counter",
    "LLM spend that bought nothing, by reason (retried, fallback, timeout, cancelled, error).",
    ("workflow", "provider", "model", "reason"),
    group="llm",
)
LLM_WASTED_TOKENS = Metric(
    "tta_llm_wasted_tokens_total",
    "counter",
    "LLM tokens (input and output) that bought nothing, by reason.",
    ("workflow", "provider", "model", "reason"),
    group="llm",
)
LLM_BUDGET_MONTH = Metric(
    "tta_llm_budget_usd_per_month",
    "gauge",
    "Monthly LLM budget in US dollars, for TTALLMBudgetBurn (setup(llm_budget_usd_per_month=)).",
    group="llm",
)
LLM_RATELIMIT_LIMIT = Metric(
    "tta_llm_ratelimit_limit",
    "gauge",
    "Provider rate limit from the last response's headers, by resource.",
    ("provider", "model", "resource"),
    group="llm",
)
LLM_RATELIMIT_REMAINING = Metric(
    "tta_llm_ratelimit_remaining",
    "gauge",
    "What is left of the provider rate limit, from the last response's headers.",
    ("provider", "model", "resource"),
    group="llm",
)
LLM_BUDGET = Metric(
    "tta_llm_budget_usd_per_hour",
    "gauge",
    "LLM spend per hour above which TTALLMCostOverBudget fires (setup(llm_budget_usd_per_hour=)).",
    group="llm",
)

#: Pushed to a Pushgateway by ``tta-observability ci run``; ``job`` and ``environment`` are
#: grouping keys, so these carry ``job`` rather than ``service_name``.
_CI_COMMON = ("job", "environment")
CI_STEP_DURATION = Metric(
    "tta_ci_step_duration_seconds",
    "gauge",
    "Duration of the last run of a CI step.",
    group="ci",
    common=_CI_COMMON,
)
CI_STEP_LAST_SUCCESS = Metric(
    "tta_ci_step_last_success_timestamp_seconds",
    "gauge",
    "Unix time of the last successful run of a CI step.",
    group="ci",
    common=_CI_COMMON,
)
CI_STEP_RUNS = Metric(
    "tta_ci_step_runs_total",
    "counter",
    "Runs of a CI step, by status (success or failure).",
    ("status",),
    group="ci",
    common=_CI_COMMON,
)
DEPLOYMENT = Metric(
    "tta_deployment_timestamp_seconds",
    "gauge",
    "Unix time of the last deployment of a version, for dashboard annotations.",
    ("version",),
    group="ci",
    common=_CI_COMMON,
)

METRICS: Final[tuple[Metric, ...]] = (
    PRIMITIVE_EXECUTIONS,
    PRIMITIVE_ERRORS,
    PRIMITIVE_DURATION,
    PRIMITIVE_IN_FLIGHT,
    PRIMITIVE_TIME_TO_FIRST_ITEM,
    SLO_REQUESTS,
    SLO_ERRORS,
    SLO_OBJECTIVE,
    SLO_LATENCY_THRESHOLD,
    BUILD_INFO,
    LABEL_OVERFLOW,
    SPANS_EXPORTED,
    SPANS_DROPPED,
    WORKFLOW_EXECUTIONS,
    WORKFLOW_DURATION,
    PRIMITIVE_SELF_DURATION,
    WORKFLOW_EDGE_INFO,
    WORKFLOW_RUN_PRIMITIVE_CALLS,
    WORKFLOW_RUN_LLM_CALLS,
    WORKFLOW_RUN_LLM_TOKENS,
    WORKFLOW_RUN_COST,
    RUN_BUDGET_EXCEEDED,
    RETRY_ATTEMPTS,
    FALLBACK_ACTIVATIONS,
    COMPENSATIONS,
    TIMEOUTS,
    CIRCUIT_BREAKER_STATE,
    CIRCUIT_BREAKER_TRANSITIONS,
    CACHE_REQUESTS,
    ROUTER_DECISIONS,
    LLM_TOKENS,
    LLM_COST,
    LLM_WASTED_COST,
    LLM_WASTED_TOKENS,
    LLM_BUDGET,
    LLM_BUDGET_MONTH,
    LLM_RATELIMIT_LIMIT,
    LLM_RATELIMIT_REMAINING,
    CI_STEP_DURATION,
    CI_STEP_LAST_SUCCESS,
    CI_STEP_RUNS,
    DEPLOYMENT,
)

METRICS_BY_NAME: Final = {m.name: m for m in METRICS}

#: Series that prometheus-client's default collectors and Prometheus itself provide; rules and
#: dashboards may query them without the library defining them.
EXTERNAL_SERIES: Final = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "python_gc_collections_total",
        "python_info",
        "push_time_seconds",
        "push_failure_time_seconds",
        # The alert path watching itself: Prometheus, Alertmanager and the Collector.
        "prometheus_rule_evaluation_failures_total",
        "prometheus_notifications_alertmanagers_discovered",
        "prometheus_notifications_dropped_total",
        "alertmanager_notifications_total",
        "alertmanager_notifications_failed_total",
        "alertmanager_alerts",
        "alertmanager_silences",
        "otelcol_exporter_sent_spans",
        "otelcol_exporter_send_failed_spans",
    }
)


def known_series() -> frozenset[str]:
    """Every series name a query may use: the contract's series plus :data:`EXTERNAL_SERIES`."""
    return frozenset(s for m in METRICS for s in m.series_names) | EXTERNAL_SERIES


# Span attribute keys.
ATTR_PRIMITIVE_TYPE: Final = "tta.primitive.type"
ATTR_PRIMITIVE_NAME: Final = "tta.primitive.name"
ATTR_STATUS: Final = "tta.status"
ATTR_SLO: Final = "tta.slo"
ATTR_WORKFLOW_ID: Final = "tta.workflow.id"
ATTR_CORRELATION_ID: Final = "tta.correlation_id"
ATTR_SESSION_ID: Final = "tta.session_id"
ATTR_AGENT_ID: Final = "tta.agent_id"
ATTR_CODE_FUNCTION: Final = "code.function"
ATTR_CODE_NAMESPACE: Final = "code.namespace"
ATTR_ERROR_TYPE: Final = "error.type"
ATTR_GEN_AI_SYSTEM: Final = "gen_ai.system"
ATTR_GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
ATTR_GEN_AI_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
ATTR_GEN_AI_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"

#: ``primitive_type`` of a plain decorated function.
FUNCTION_TYPE: Final = "function"
#: ``primitive_type`` of an LLM call: a RunBudget counts these.
LLM_TYPE: Final = "llm"

#: ``parent`` label of a workflow's root in ``tta_workflow_edge_info``.
ROOT_PARENT: Final = ""
#: ``limit`` label values of ``tta_run_budget_exceeded_total``.
LIMIT_LLM_CALLS: Final = "llm_calls"
LIMIT_TOKENS: Final = "tokens"
LIMIT_COST_USD: Final = "cost_usd"
BUDGET_LIMITS: Final = (LIMIT_LLM_CALLS, LIMIT_TOKENS, LIMIT_COST_USD)
