"""Names the rules aggregate by and the series they record (the dashboards read these)."""

from __future__ import annotations

from typing import Final

from ... import contract as c

# Labels the rules aggregate by. Everything else (job, instance, pod) is summed away so that
# replicas of one service form one series.
SERVICE: Final = ("service_name", "environment")
PRIMITIVE: Final = (*SERVICE, "primitive_type", "primitive_name")
SLO_KEY: Final = (*SERVICE, "slo")
WORKFLOW: Final = (*SERVICE, "workflow")

#: Outcomes that count against a primitive or workflow; ``cancelled`` means the caller gave up.
FAILED_STATUSES: Final = (c.STATUS_ERROR, c.STATUS_TIMEOUT)

#: The SLO budget period, the longest window recorded.
SLO_PERIOD: Final = "30d"

PRIMITIVE_EXECUTIONS_RATE5M: Final = "tta:primitive_executions:rate5m"
PRIMITIVE_ERRORS_RATE5M: Final = "tta:primitive_errors:rate5m"
PRIMITIVE_ERROR_RATIO_RATE5M: Final = "tta:primitive_error_ratio:rate5m"
#: Failures that started in the primitive (origin raised), per workflow run ...
PRIMITIVE_RAISED_ERRORS_RATE5M: Final = "tta:primitive_raised_errors:rate5m"
#: ... as a share of all the primitive's calls: what TTAPrimitiveErrorRateSpike alerts on.
PRIMITIVE_RAISED_ERROR_RATIO_RATE5M: Final = "tta:primitive_raised_error_ratio:rate5m"
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
LLM_BUDGET_USD_PER_MONTH_MAX: Final = "tta:llm_budget_usd_per_month:max"
#: Labels of the per-workflow LLM spend and waste series.
LLM_WORKFLOW: Final = (*SERVICE, "workflow")
LLM_WASTE: Final = (*LLM_WORKFLOW, "reason")
WORKFLOW_LLM_COST_USD_INCREASE1H: Final = "tta:workflow_llm_cost_usd:increase1h"
LLM_WASTED_COST_USD_INCREASE1H: Final = "tta:llm_wasted_cost_usd:increase1h"
LLM_WASTED_COST_RATIO_INCREASE1H: Final = "tta:llm_wasted_cost_ratio:increase1h"
#: Labels of the rate-limit series, and the recorded share of the limit left.
LLM_RATELIMIT: Final = (*SERVICE, "provider", "model", "resource")
LLM_RATELIMIT_HEADROOM_RATIO: Final = "tta:llm_ratelimit_headroom:ratio"
#: The monthly LLM budget's period: spending the budget evenly over it is a burn rate of 1.
LLM_BUDGET_PERIOD: Final = "30d"
#: The workflow map: its edges without replica labels, and per node (``primitive_name``) of each
#: workflow its call rate, error ratio, p95 latency and self time.
WORKFLOW_EDGE_INFO_MAX: Final = "tta:workflow_edge_info:max"
WORKFLOW_NODE_CALLS_RATE5M: Final = "tta:workflow_node_calls:rate5m"
WORKFLOW_NODE_ERROR_RATIO_RATE5M: Final = "tta:workflow_node_error_ratio:rate5m"
WORKFLOW_NODE_DURATION_P95_5M: Final = "tta:workflow_node_duration_seconds:p95_5m"
#: Seconds of self time per second: the self-time histogram where a primitive has one (it had
#: children), else its duration (a leaf's self time is its duration).
PRIMITIVE_SELF_SECONDS_RATE5M: Final = "tta:primitive_self_seconds:rate5m"
WORKFLOW_NODE_SELF_SECONDS_RATE5M: Final = "tta:workflow_node_self_seconds:rate5m"
#: Per-run shape: p99 of LLM calls and cost per run over 30 minutes, and over the day before.
WORKFLOW_RUN_LLM_CALLS_P99_30M: Final = "tta:workflow_run_llm_calls:p99_30m"
WORKFLOW_RUN_LLM_CALLS_P99_1D: Final = "tta:workflow_run_llm_calls:p99_1d"
WORKFLOW_RUN_COST_USD_P99_30M: Final = "tta:workflow_run_cost_usd:p99_30m"
WORKFLOW_RUN_COST_USD_P99_1D: Final = "tta:workflow_run_cost_usd:p99_1d"
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


def service_llm_cost_rate(window: str) -> str:
    """Name of the recorded LLM spend rate of a service over ``window`` (USD per second)."""
    return f"tta:service_llm_cost_usd:rate{window}"


def llm_budget_burn_rate(window: str) -> str:
    """Name of the recorded monthly-budget burn rate over ``window`` (1 = on budget)."""
    return f"tta:llm_budget_burn_rate:rate{window}"
