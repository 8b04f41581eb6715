"""The Executive dashboard: volume, success, end-to-end latency, SLOs, LLM spend."""

from __future__ import annotations

from ... import contract as c
from ..config import DEFAULT, MixinConfig
from ..grafana import (
    colored,
    stat,
    table,
    target,
    timeseries,
)
from ..promql import agg, increase, or_zero, rate, ratio
from ..rules import names as n
from ._common import (
    BUDGET_COLORS,
    CACHE_HITS,
    GOOD_HIGH,
    RANGE,
    RATE,
    SERVICE,
    SLO_BY,
    SLO_COLUMNS,
    SLO_KEY,
    SLO_LEGEND,
    SVC_BY,
    WF_OK,
    WF_RUNS,
    Dashboard,
    budget,
    cost_of_failure,
    quantile,
    rec,
    sel,
)


def executive(config: MixinConfig = DEFAULT) -> Dashboard:
    slo_ratio_30d = rec(n.slo_error_ratio(n.SLO_PERIOD), SLO_KEY)
    # The hourly spend TTALLMCostOverBudget compares with the budget.
    llm_spend = rec(n.SERVICE_LLM_COST_USD_INCREASE1H, SERVICE)
    return Dashboard(
        "executive",
        "TTA.dev / Executive",
        "Workflow volume and success, end-to-end latency, SLO compliance, LLM spend and cache "
        "savings: the page to open first.",
        [
            stat(
                "Workflow runs",
                "Workflow runs (outermost observed calls that run other observed or LLM "
                "calls) in the selected time range.",
                "short",
                target(agg("", increase(WF_RUNS, RANGE)), "runs"),
            ),
            stat(
                "Workflow success rate",
                "Share of workflow runs in the time range that ended with status success.",
                "percentunit",
                target(
                    ratio(
                        agg("", increase(WF_OK, RANGE)),
                        agg("", increase(WF_RUNS, RANGE)),
                        multiline=True,
                    ),
                    "success",
                ),
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
                target(agg("", budget(), op="min"), "budget"),
                thresholds=BUDGET_COLORS,
                decimals=1,
            ),
            stat(
                "LLM cost",
                "LLM spend in US dollars in the selected time range.",
                "currencyUSD",
                target(or_zero(agg("", increase(sel(c.LLM_COST), RANGE))), "cost"),
                decimals=2,
            ),
            stat(
                "Cache hits",
                "Calls answered from a cache primitive in the time range: work and LLM spend "
                "saved.",
                "short",
                target(or_zero(agg("", increase(CACHE_HITS, RANGE))), "hits"),
            ),
            timeseries(
                "Workflow runs per second",
                "Workflow run rate by workflow.",
                "ops",
                target(agg("workflow", rate(WF_RUNS, RATE)), "{{workflow}}"),
                stack=True,
            ),
            timeseries(
                "Workflow success rate by workflow",
                "Share of workflow runs that succeeded, by workflow.",
                "percentunit",
                target(
                    ratio(
                        agg("workflow", rate(WF_OK, RATE)),
                        agg("workflow", rate(WF_RUNS, RATE)),
                        multiline=True,
                    ),
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
                target(agg(SLO_BY, sel(c.SLO_OBJECTIVE), op="max"), "objective"),
                target(agg(SLO_BY, f"1 - {slo_ratio_30d}", op="min"), "sli"),
                target(agg(SLO_BY, budget(), op="min"), "budget"),
                width=12,
                first=tuple(SLO_COLUMNS),
                rename={
                    **SLO_COLUMNS,
                    "Value #A": "Objective",
                    "Value #B": "SLI (30 d)",
                    "Value #C": "Budget left",
                },
                overrides=[colored("Budget left", BUDGET_COLORS)],
            ),
            timeseries(
                "Error budget left (30 d)",
                "Share of the 30-day error budget left, by service, environment and SLO.",
                "percentunit",
                target(agg(SLO_BY, budget(), op="min"), SLO_LEGEND),
                min_zero=False,
            ),
            timeseries(
                "LLM tokens per day by model",
                "Tokens used in the last 24 hours (rolling), by model and token type.",
                "short",
                target(
                    agg("model, token_type", increase(sel(c.LLM_TOKENS), "1d")),
                    "{{model}} {{token_type}}",
                ),
                stack=True,
            ),
            timeseries(
                "LLM cost per day by model",
                "US dollars spent in the last 24 hours (rolling), by provider and model.",
                "currencyUSD",
                target(
                    agg("provider, model", increase(sel(c.LLM_COST), "1d")),
                    "{{provider}} {{model}}",
                ),
                stack=True,
            ),
            timeseries(
                "LLM spend per hour vs budget",
                "US dollars spent on LLM calls in the last hour (rolling), by service and "
                "environment, and the budget TTALLMCostOverBudget compares it with: "
                "setup(llm_budget_usd_per_hour=...), or the rules' default for a service that "
                f"sets none ({config.llm_budget_usd_per_hour:g} USD).",
                "currencyUSD",
                target(llm_spend, "{{service_name}} {{environment}} spent"),
                target(
                    f"{agg(SVC_BY, sel(c.LLM_BUDGET), op='max')}\nor\n"
                    f"0 * {llm_spend} + {config.llm_budget_usd_per_hour:g}",
                    "{{service_name}} {{environment}} budget",
                ),
            ),
            cost_of_failure(),
            timeseries(
                "Cache savings",
                "Calls per second answered from a cache, so the cached primitive (often an LLM "
                "call) did not run, by cache primitive.",
                "ops",
                target(agg("primitive_name", rate(CACHE_HITS, RATE)), "{{primitive_name}}"),
                stack=True,
            ),
        ],
    )
