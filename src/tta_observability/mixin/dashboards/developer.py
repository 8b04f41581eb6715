"""The Developer dashboard: per-primitive rate, errors, latency and recovery primitives."""

from __future__ import annotations

from ... import contract as c
from ..config import DEFAULT, MixinConfig
from ..grafana import (
    JSON,
    Row,
    heatmap,
    state_timeline,
    table,
    target,
    thresholds,
    timeseries,
    unit,
    value_text,
)
from ..promql import agg, increase, rate, ratio, ratio_or_zero
from ._common import (
    CACHE_HITS,
    EXECS,
    FAILED,
    PT,
    RANGE,
    RATE,
    Dashboard,
    alert_annotation,
    cost_of_failure,
    quantile,
    sel,
)
from ._workflow import WORKFLOW_VARIABLE, workflow_section


def _quantiles(metric: c.Metric, label: str) -> list[JSON]:
    return [
        target(quantile(q, metric, label), f"{{{{{label}}}}} p{round(q * 100)}", exemplar=True)
        for q in (0.5, 0.95, 0.99)
    ]


CIRCUIT_STATES = {"0": ("closed", "green"), "1": ("half-open", "orange"), "2": ("open", "red")}


def developer(config: MixinConfig = DEFAULT) -> Dashboard:
    cache = sel(c.CACHE_REQUESTS)
    dur = c.PRIMITIVE_DURATION
    return Dashboard(
        "developer",
        "TTA.dev / Developer",
        "Per primitive: rate, errors, latency with exemplars linking to traces, and what the "
        "recovery primitives (retry, fallback, timeout, cache, circuit breaker, router) did. "
        "Per workflow: its map, where its time goes, and the shape of its runs.",
        [
            Row("Calls"),
            timeseries(
                "Call rate",
                "Calls per second, by primitive type and name.",
                "ops",
                target(agg(PT, rate(EXECS, RATE)), "{{primitive_type}} {{primitive_name}}"),
            ),
            timeseries(
                "Error ratio",
                "Share of calls that failed (status error or timeout), by primitive.",
                "percentunit",
                target(
                    ratio(
                        agg("primitive_name", rate(FAILED, RATE)),
                        agg("primitive_name", rate(EXECS, RATE)),
                        multiline=True,
                    ),
                    "{{primitive_name}}",
                ),
            ),
            timeseries(
                "Errors by type",
                "Failed calls per second, by primitive and exception class; a failure counts at "
                "every observed level it passes through.",
                "ops",
                target(
                    agg("primitive_name, error_type", rate(sel(c.PRIMITIVE_ERRORS), RATE)),
                    "{{primitive_name}} {{error_type}}",
                ),
                stack=True,
            ),
            timeseries(
                "Calls by status",
                "Calls per second by outcome: success, error, timeout, cancelled.",
                "ops",
                target(agg("status", rate(EXECS, RATE)), "{{status}}"),
                stack=True,
            ),
            timeseries(
                "Where failures start",
                "Failures per second that started in each primitive (origin raised), by workflow "
                "run: a failure passed on by the primitives above it counts once, here, as "
                "TTAPrimitiveErrorRateSpike counts it.",
                "ops",
                target(
                    agg(
                        "workflow, primitive_name",
                        rate(sel(c.PRIMITIVE_ERRORS, f'origin="{c.ORIGIN_RAISED}"'), RATE),
                    ),
                    "{{workflow}}: {{primitive_name}}",
                ),
                stack=True,
                width=24,
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
                agg("le", rate(sel(dur, suffix="_bucket"), RATE)),
            ),
            timeseries(
                "Time to first item",
                "p50, p95 and p99 time from a generator's first request to its first item (the "
                "time to first token of a streamed LLM answer), by primitive; only generators and "
                "async generators record it. Exemplar dots link to the trace.",
                "s",
                *_quantiles(c.PRIMITIVE_TIME_TO_FIRST_ITEM, "primitive_name"),
            ),
            table(
                "Slowest primitives",
                "Primitives with the highest p95 duration over the time range, with their "
                "mean duration and call count.",
                "s",
                target(f"topk(10, {quantile(0.95, dur, PT, '$__range')})", "p95"),
                target(
                    ratio(
                        agg(PT, rate(sel(dur, suffix="_sum"), "$__range")),
                        agg(PT, rate(sel(dur, suffix="_count"), "$__range")),
                        multiline=True,
                    ),
                    "mean",
                ),
                target(agg(PT, increase(sel(dur, suffix="_count"), RANGE)), "calls"),
                rename={"Value #A": "p95", "Value #B": "Mean", "Value #C": "Calls"},
                overrides=[unit("Calls", "short", 0)],
                sort_by="p95",
            ),
            Row("Recovery primitives"),
            timeseries(
                "Retry attempts",
                "Attempts made by retry primitives per second, by outcome.",
                "ops",
                target(
                    agg("primitive_name, outcome", rate(sel(c.RETRY_ATTEMPTS), RATE)),
                    "{{primitive_name}} {{outcome}}",
                ),
                width=8,
            ),
            timeseries(
                "Fallbacks",
                "Times per second a fallback primitive ran its fallback branch.",
                "ops",
                target(
                    agg("primitive_name", rate(sel(c.FALLBACK_ACTIVATIONS), RATE)),
                    "{{primitive_name}}",
                ),
                width=8,
            ),
            timeseries(
                "Compensations",
                "Compensations saga primitives ran after a failed forward step, per second, "
                "by outcome.",
                "ops",
                target(
                    agg("primitive_name, outcome", rate(sel(c.COMPENSATIONS), RATE)),
                    "{{primitive_name}} {{outcome}}",
                ),
                width=8,
            ),
            timeseries(
                "Timeouts",
                "Calls cut off by a timeout primitive per second.",
                "ops",
                target(agg("primitive_name", rate(sel(c.TIMEOUTS), RATE)), "{{primitive_name}}"),
                width=8,
            ),
            timeseries(
                "Cache hit ratio",
                "Share of cache lookups answered from the cache, by cache primitive.",
                "percentunit",
                target(
                    ratio_or_zero(
                        agg("primitive_name", rate(CACHE_HITS, RATE)),
                        agg("primitive_name", rate(cache, RATE)),
                        multiline=True,
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
                    agg("primitive_name", sel(c.CIRCUIT_BREAKER_STATE), op="max"),
                    "{{primitive_name}}",
                ),
                mappings=value_text(CIRCUIT_STATES),
                thresholds=thresholds((None, "green"), (1, "orange"), (2, "red")),
                width=8,
            ),
            timeseries(
                "Circuit breaker transitions",
                "State changes per breaker in each interval.",
                "short",
                target(
                    agg(
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
                    agg("primitive_name, route", rate(sel(c.ROUTER_DECISIONS), RATE)),
                    "{{primitive_name}} {{route}}",
                ),
                stack=True,
                width=12,
            ),
            cost_of_failure(),
            timeseries(
                "Wasted LLM tokens",
                "LLM tokens (input and output) that bought nothing in the last hour (rolling), by "
                "workflow and reason; counted also for models without a price.",
                "short",
                target(
                    agg("workflow, reason", increase(sel(c.LLM_WASTED_TOKENS), "1h")),
                    "{{workflow}} {{reason}}",
                ),
                stack=True,
                width=12,
            ),
            *workflow_section(),
        ],
        extra_variables=[WORKFLOW_VARIABLE],
        extra_annotations=[alert_annotation()],
    )
