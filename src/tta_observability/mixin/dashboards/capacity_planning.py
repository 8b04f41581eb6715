"""The Capacity Planning dashboard: throughput, concurrency, forecasts, headroom."""

from __future__ import annotations

from ... import contract as c
from ..config import DEFAULT, MixinConfig
from ..grafana import (
    Panel,
    stat,
    target,
    thresholds,
    timeseries,
)
from ..promql import agg, increase, rate, ratio
from ..rules import names as n
from ._common import (
    EXECS,
    RANGE,
    RATE,
    SERVICE,
    SERVICE_CALL_RATE,
    SVC_BY,
    WF_RUNS,
    Dashboard,
    rec,
    sel,
    with_app_labels,
)

#: Seconds from now to the end of the month (UTC), from PromQL's calendar functions.
MONTH_LEFT_SECONDS = (
    "(days_in_month() - day_of_month()) * 86400 + 86400 - hour() * 3600 - minute() * 60"
)


def _llm_panels() -> list[Panel]:
    spent = agg(SVC_BY, increase(sel(c.LLM_COST), RANGE))
    day_rate = rec(n.service_llm_cost_rate("1d"), SERVICE)
    headroom = rec(n.LLM_RATELIMIT_HEADROOM_RATIO, n.LLM_RATELIMIT)
    by_limit = "provider, model, resource"
    who = "{{provider}} {{model}} {{resource}}"
    month = stat(
        "LLM spend forecast (month end)",
        "By service: US dollars spent on LLM calls this month so far, the spend at the end of "
        "the month if the last day's rate goes on, and the monthly budget "
        "(setup(llm_budget_usd_per_month=...)) that TTALLMBudgetBurn guards.",
        "currencyUSD",
        target(spent, "{{service_name}} {{environment}} spent"),
        target(
            f"{spent}\n+\n{day_rate} * scalar({MONTH_LEFT_SECONDS})",
            "{{service_name}} {{environment}} forecast",
        ),
        target(
            agg(SVC_BY, sel(c.LLM_BUDGET_MONTH), op="max"),
            "{{service_name}} {{environment}} budget",
        ),
        width=12,
        height=8,
        decimals=2,
    )
    month.time_from = "now/M"
    return [
        month,
        timeseries(
            "LLM rate-limit headroom",
            "Share of each provider rate limit left (lowest remaining over replicas / limit, from "
            "the response headers), now and in an hour if the trend of the last hour goes on. "
            "TTALLMRateLimitLow fires below 10 %.",
            "percentunit",
            target(
                f"{agg(by_limit, sel(c.LLM_RATELIMIT_REMAINING), op='min')}\n/\n"
                f"({agg(by_limit, sel(c.LLM_RATELIMIT_LIMIT), op='max')} > 0)",
                f"{who} now",
            ),
            target(
                agg(by_limit, f"clamp_min(predict_linear({headroom}[1h], 3600), 0)", op="min"),
                f"{who} in 1 h",
            ),
            width=8,
        ),
        stat(
            "Rate-limit headroom runs out in",
            "Time until a provider rate limit is used up at the rate its headroom fell over the "
            "last hour; no value while no limit's headroom is falling.",
            "s",
            target(
                agg(by_limit, f"{headroom}\n/\n(-deriv({headroom}[1h]) > 0)", op="min"),
                who,
            ),
            thresholds=thresholds((None, "red"), (900, "orange"), (3600, "green")),
            width=4,
            height=8,
        ),
    ]


def capacity_planning(config: MixinConfig = DEFAULT) -> Dashboard:
    svc = "service_name"
    svc_rate = rec(SERVICE_CALL_RATE, SERVICE)
    cpu = with_app_labels(rate("process_cpu_seconds_total", RATE))
    return Dashboard(
        "capacity-planning",
        "TTA.dev / Capacity Planning",
        "Throughput and concurrency trends, resources per call, growth forecasts and headroom.",
        [
            timeseries(
                "Throughput",
                "Primitive calls and workflow runs per second, by service.",
                "ops",
                target(agg(svc, rate(EXECS, RATE)), "{{service_name}} calls"),
                target(agg(svc, rate(WF_RUNS, RATE)), "{{service_name}} workflow runs"),
            ),
            timeseries(
                "Concurrency",
                "Most observed calls in flight at any scrape of each interval, by service.",
                "short",
                target(
                    agg(svc, f"max_over_time({sel(c.PRIMITIVE_IN_FLIGHT)}[$__rate_interval])"),
                    "{{service_name}}",
                ),
            ),
            timeseries(
                "CPU per call",
                "CPU seconds used per primitive call, by service.",
                "s",
                target(
                    ratio(agg(svc, cpu), agg(svc, rate(EXECS, RATE)), multiline=True),
                    "{{service_name}}",
                ),
            ),
            timeseries(
                "LLM cost per workflow run",
                "US dollars spent on LLM calls per workflow run, by service.",
                "currencyUSD",
                target(
                    ratio(
                        agg(svc, rate(sel(c.LLM_COST), RATE)),
                        agg(svc, rate(WF_RUNS, RATE)),
                        multiline=True,
                    ),
                    "{{service_name}}",
                ),
            ),
            timeseries(
                "Throughput forecast (7 d)",
                "Call rate now (recorded 5-minute rate) and in 7 days if the trend of the last "
                "6 hours continues (predict_linear).",
                "ops",
                target(agg(svc, svc_rate), "{{service_name}} now"),
                target(
                    agg(svc, f"predict_linear({svc_rate}[6h], 7 * 86400)"),
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
                    ratio(
                        agg(svc, svc_rate),
                        agg(svc, f"max_over_time({svc_rate}[7d])"),
                        multiline=True,
                    ),
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
                        agg(svc, sel(c.PRIMITIVE_IN_FLIGHT)),
                        # Only the denominator is filtered: ``a / b > 0`` would also drop
                        # the moments with nothing in flight, which must read 0 %.
                        f"({agg(svc, f'max_over_time({sel(c.PRIMITIVE_IN_FLIGHT)}[7d])')} > 0)",
                        multiline=True,
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
                    agg("", with_app_labels("(1 - process_open_fds / process_max_fds)"), "min"),
                    "headroom",
                ),
                thresholds=thresholds((None, "red"), (0.1, "orange"), (0.3, "green")),
                width=8,
                height=8,
            ),
            *_llm_panels(),
        ],
        time_from="now-7d",
        refresh="5m",
    )
