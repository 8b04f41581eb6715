"""Recording rules for the dashboards and the health alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ... import contract as c
from ..promql import agg, join, label, one_of, rate, ratio_or_zero
from ..promql import eq as matcher
from . import names as n
from .model import Recording


def _histogram_rules(
    metric: c.Metric, labels: Sequence[str], quantiles: Mapping[float, str]
) -> list[Recording]:
    bucket = f"{metric.name}_bucket"
    return [
        Recording(name, f"histogram_quantile({q}, {agg(('le', *labels), rate(bucket, '5m'))})")
        for q, name in quantiles.items()
    ]


def _ratio(labels: Sequence[str], part: str, whole: str) -> str:
    return ratio_or_zero(agg(labels, part), agg(labels, whole))


def primitive_rules() -> list[Recording]:
    execs = c.PRIMITIVE_EXECUTIONS
    failed = f"{n.PRIMITIVE_EXECUTIONS_RATE5M}{one_of(execs, 'status', n.FAILED_STATUSES)}"
    dur, errors = c.PRIMITIVE_DURATION, c.PRIMITIVE_ERRORS
    bucket_labels = ("le", *n.PRIMITIVE)
    return [
        Recording(
            n.PRIMITIVE_EXECUTIONS_RATE5M,
            agg((*n.PRIMITIVE, label(execs, "status")), rate(execs.name, "5m")),
        ),
        Recording(
            n.PRIMITIVE_ERROR_RATIO_RATE5M,
            _ratio(n.PRIMITIVE, failed, n.PRIMITIVE_EXECUTIONS_RATE5M),
        ),
        Recording(
            n.PRIMITIVE_ERRORS_RATE5M,
            agg(
                (*n.PRIMITIVE, label(c.PRIMITIVE_ERRORS, "error_type")),
                rate(c.PRIMITIVE_ERRORS.name, "5m"),
            ),
        ),
        # Where failures start: ancestors that only passed a failure on (origin propagated) are
        # left out, so one failing leaf makes one primitive fail, not every frame above it.
        Recording(
            n.PRIMITIVE_RAISED_ERRORS_RATE5M,
            agg(
                (*n.PRIMITIVE, label(errors, "workflow")),
                rate(errors.name + matcher(errors, "origin", c.ORIGIN_RAISED), "5m"),
            ),
        ),
        # The ratio is over all of the primitive's calls, whichever workflow made them (a shared
        # LLM step failing 30 % in five workflows is a 30 % spike, not five 6 % ones); the
        # workflow whose runs raised the most is attached as a label, to say where to look.
        Recording(
            n.PRIMITIVE_RAISED_ERROR_RATIO_RATE5M,
            f"{agg(n.PRIMITIVE, n.PRIMITIVE_RAISED_ERRORS_RATE5M)}"
            f" / on ({join(n.PRIMITIVE)}) {agg(n.PRIMITIVE, n.PRIMITIVE_EXECUTIONS_RATE5M)}"
            f" * on ({join(n.PRIMITIVE)}) group_left (workflow)"
            f" (topk by ({join(n.PRIMITIVE)}) (1, {n.PRIMITIVE_RAISED_ERRORS_RATE5M}) * 0 + 1)",
        ),
        Recording(
            n.PRIMITIVE_DURATION_BUCKET_RATE5M,
            agg(bucket_labels, rate(f"{dur.name}_bucket", "5m")),
        ),
        *(
            Recording(
                name,
                f"histogram_quantile({q}, "
                f"{agg(bucket_labels, n.PRIMITIVE_DURATION_BUCKET_RATE5M)})",
            )
            for q, name in (
                (0.5, n.PRIMITIVE_DURATION_P50_5M),
                (0.95, n.PRIMITIVE_DURATION_P95_5M),
                (0.99, n.PRIMITIVE_DURATION_P99_5M),
            )
        ),
        # A 5-minute window without calls records p95 NaN, which would make the whole average
        # NaN; ">= 0" drops those samples, so the baseline covers the times with traffic.
        Recording(
            n.PRIMITIVE_DURATION_P95_5M_AVG1D,
            f"avg_over_time(({n.PRIMITIVE_DURATION_P95_5M} >= 0)[1d:5m])",
        ),
        Recording(
            n.PRIMITIVE_DURATION_MEAN_5M,
            f"{agg(n.PRIMITIVE, rate(f'{dur.name}_sum', '5m'))}"
            f" / {agg(n.PRIMITIVE, rate(f'{dur.name}_count', '5m'))}",
        ),
        Recording(n.PRIMITIVE_IN_FLIGHT_SUM, agg(n.PRIMITIVE, c.PRIMITIVE_IN_FLIGHT.name)),
        Recording(
            n.SERVICE_PRIMITIVE_EXECUTIONS_RATE5M, agg(n.SERVICE, n.PRIMITIVE_EXECUTIONS_RATE5M)
        ),
    ]


def workflow_rules() -> list[Recording]:
    execs = c.WORKFLOW_EXECUTIONS
    runs = n.WORKFLOW_EXECUTIONS_RATE5M
    return [
        Recording(runs, agg((*n.WORKFLOW, label(execs, "status")), rate(execs.name, "5m"))),
        Recording(
            n.WORKFLOW_SUCCESS_RATIO_RATE5M,
            _ratio(n.WORKFLOW, f"{runs}{matcher(execs, 'status', c.STATUS_SUCCESS)}", runs),
        ),
        Recording(
            n.WORKFLOW_FAILURE_RATIO_RATE5M,
            _ratio(n.WORKFLOW, f"{runs}{one_of(execs, 'status', n.FAILED_STATUSES)}", runs),
        ),
        *_histogram_rules(
            c.WORKFLOW_DURATION,
            n.WORKFLOW,
            {
                0.5: n.WORKFLOW_DURATION_P50_5M,
                0.95: n.WORKFLOW_DURATION_P95_5M,
                0.99: n.WORKFLOW_DURATION_P99_5M,
            },
        ),
        Recording(n.SERVICE_WORKFLOW_EXECUTIONS_RATE5M, agg(n.SERVICE, runs)),
    ]


def recovery_rules() -> list[Recording]:
    cache = c.CACHE_REQUESTS
    by_name = (*n.SERVICE, "primitive_name")

    def per(metric: c.Metric, *extra: str) -> str:
        labels = (*n.SERVICE, *(label(metric, x) for x in ("primitive_name", *extra)))
        return agg(labels, rate(metric.name, "5m"))

    return [
        Recording(n.CACHE_REQUESTS_RATE5M, per(cache, "result")),
        Recording(
            n.CACHE_HIT_RATIO_RATE5M,
            _ratio(
                by_name,
                f"{n.CACHE_REQUESTS_RATE5M}{matcher(cache, 'result', 'hit')}",
                n.CACHE_REQUESTS_RATE5M,
            ),
        ),
        Recording(n.RETRY_ATTEMPTS_RATE5M, per(c.RETRY_ATTEMPTS, "outcome")),
        Recording(n.FALLBACK_ACTIVATIONS_RATE5M, per(c.FALLBACK_ACTIVATIONS)),
        Recording(n.TIMEOUTS_RATE5M, per(c.TIMEOUTS)),
        Recording(n.ROUTER_DECISIONS_RATE5M, per(c.ROUTER_DECISIONS, "route")),
    ]
