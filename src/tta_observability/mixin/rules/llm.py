"""LLM economics rules: spend and tokens per hour, the share of spend wasted, the monthly budget's
burn rate and its multi-window alert, and provider rate-limit headroom.

The budget alert is the SLO burn-rate alert applied to dollars: a service's spend rate over a
window, divided by the rate that spends ``tta_llm_budget_usd_per_month`` evenly over 30 days,
is its burn rate; the same window pairs, thresholds and severities as
:data:`~tta_observability.mixin.config.DEFAULT_BURN_RATE_WINDOWS` page on a fast burn (the
month's budget gone in days) and open a ticket on a slow one.
"""

from __future__ import annotations

from typing import Final

from ... import contract as c
from ..config import BurnRateWindow, MixinConfig
from ..promql import agg, increase, join, label, rate, seconds
from . import names as n
from .model import Alert, Group, Recording

LLM_BUDGET_BURN_ALERT: Final = "TTALLMBudgetBurn"
LLM_RATELIMIT_ALERT: Final = "TTALLMRateLimitLow"
#: Windows this long or longer read days of raw samples: their own, slower group, as for SLOs.
_SLOW_FROM: Final = "3d"
_SLOW_INTERVAL: Final = "2m"
_SVC = "{{ $labels.service_name }} ({{ $labels.environment }})"


def llm_rules() -> list[Recording]:
    """Hourly tokens and spend by model, spend and waste by workflow, rate-limit headroom."""
    tokens, cost, wasted = c.LLM_TOKENS, c.LLM_COST, c.LLM_WASTED_COST
    model = (*n.SERVICE, label(cost, "provider"), label(cost, "model"))
    limit, remaining = c.LLM_RATELIMIT_LIMIT, c.LLM_RATELIMIT_REMAINING
    by_limit = [label(limit, x) for x in n.LLM_RATELIMIT]
    return [
        Recording(
            n.LLM_TOKENS_INCREASE1H,
            agg((*model, label(tokens, "token_type")), increase(tokens.name, "1h")),
        ),
        Recording(n.LLM_COST_USD_INCREASE1H, agg(model, increase(cost.name, "1h"))),
        Recording(n.SERVICE_LLM_COST_USD_INCREASE1H, agg(n.SERVICE, n.LLM_COST_USD_INCREASE1H)),
        # Replicas of one service export the same budget; max keeps one series per service.
        Recording(
            n.LLM_BUDGET_USD_PER_HOUR_MAX,
            f"max by ({join([label(c.LLM_BUDGET, x) for x in n.SERVICE])}) ({c.LLM_BUDGET.name})",
        ),
        Recording(
            n.WORKFLOW_LLM_COST_USD_INCREASE1H,
            agg([label(cost, x) for x in n.LLM_WORKFLOW], increase(cost.name, "1h")),
        ),
        Recording(
            n.LLM_WASTED_COST_USD_INCREASE1H,
            agg([label(wasted, x) for x in n.LLM_WASTE], increase(wasted.name, "1h")),
        ),
        Recording(
            n.LLM_WASTED_COST_RATIO_INCREASE1H,
            f"{n.LLM_WASTED_COST_USD_INCREASE1H} / on ({join(n.LLM_WORKFLOW)}) group_left ()"
            f" ({n.WORKFLOW_LLM_COST_USD_INCREASE1H} > 0)",
        ),
        # The most pessimistic replica's remaining (they share the provider's limit) over the
        # limit; a limit of 0 would divide by zero and is left out.
        Recording(
            n.LLM_RATELIMIT_HEADROOM_RATIO,
            f"min by ({join(by_limit)}) ({remaining.name})"
            f" / max by ({join(by_limit)}) ({limit.name} > 0)",
        ),
    ]


def budget_windows(config: MixinConfig) -> tuple[str, ...]:
    windows = {w for b in config.burn_rate_windows for w in (b.long, b.short)}
    return tuple(sorted(windows, key=seconds))


def _slow(window: str) -> bool:
    return seconds(window) >= seconds(_SLOW_FROM)


def _window_rules(windows: list[str]) -> list[Recording]:
    cost = c.LLM_COST
    out = []
    for w in windows:
        out += [
            Recording(
                n.service_llm_cost_rate(w),
                agg([label(cost, x) for x in n.SERVICE], rate(cost.name, w)),
            ),
            Recording(
                n.llm_budget_burn_rate(w),
                f"{n.service_llm_cost_rate(w)} * {seconds(n.LLM_BUDGET_PERIOD)}"
                f" / on ({join(n.SERVICE)}) {n.LLM_BUDGET_USD_PER_MONTH_MAX}",
            ),
        ]
    return out


def budget_groups(config: MixinConfig) -> tuple[Group, Group]:
    """The burn rates and TTALLMBudgetBurn: fast windows, and (every 2 minutes) the 3-day one."""
    budget = c.LLM_BUDGET_MONTH
    windows = budget_windows(config)
    fast = Group(
        "tta-llm-budget",
        (
            Recording(
                n.LLM_BUDGET_USD_PER_MONTH_MAX,
                f"max by ({join([label(budget, x) for x in n.SERVICE])}) ({budget.name})",
            ),
            *_window_rules([w for w in windows if not _slow(w)]),
            *(budget_alert(w) for w in config.burn_rate_windows if not _slow(w.long)),
        ),
    )
    slow = Group(
        "tta-llm-budget-long-windows",
        (
            *_window_rules([w for w in windows if _slow(w)]),
            *(budget_alert(w) for w in config.burn_rate_windows if _slow(w.long)),
        ),
        interval=_SLOW_INTERVAL,
    )
    return fast, slow


def budget_alert(w: BurnRateWindow) -> Alert:
    threshold = f"{w.burn_rate:g}"
    days = seconds(n.LLM_BUDGET_PERIOD) / 86400 / w.burn_rate
    pace = "fast" if w.severity == "critical" else "steadily"
    return Alert(
        LLM_BUDGET_BURN_ALERT,
        f"{n.llm_budget_burn_rate(w.long)} > {threshold}"
        f" and {n.llm_budget_burn_rate(w.short)} > {threshold}",
        w.severity,
        summary=f"LLM spend of {_SVC} is burning its monthly budget {pace}",
        description=(
            f"{_SVC} spends on LLM calls {{{{ $value | humanize }}}} times the rate its monthly "
            f"budget ({c.LLM_BUDGET_MONTH.name}) allows, over the last {w.long} (threshold "
            f"{threshold}, also exceeded over {w.short}). At {threshold} times, the budget "
            f"lasts {days:.3g} days."
        ),
        for_=w.for_,
        labels={"long_window": w.long, "short_window": w.short},
    )


def ratelimit_alert(config: MixinConfig) -> Alert:
    tokens = c.LLM_TOKENS
    by_model = [label(tokens, x) for x in (*n.SERVICE, "provider", "model")]
    # Only while calls are made: the gauges keep the last response's values, which go stale
    # (and recover at the provider) once the calls stop.
    calling = f"{agg(by_model, rate(tokens.name, '5m'))} > 0"
    return Alert(
        LLM_RATELIMIT_ALERT,
        f"{n.LLM_RATELIMIT_HEADROOM_RATIO} < {config.llm_ratelimit_min_headroom:g}"
        f" and on ({join(by_model)}) {calling}",
        "warning",
        summary=(
            f"{_SVC} is close to the {{{{ $labels.provider }}}} rate limit on "
            "{{ $labels.resource }}"
        ),
        description=(
            f"{_SVC} has {{{{ $value | humanizePercentage }}}} of its {{{{ $labels.provider }}}} "
            "{{ $labels.resource }} rate limit left for model {{ $labels.model }} (threshold "
            f"{config.llm_ratelimit_min_headroom:.0%}, for {config.llm_ratelimit_for}); past it "
            "the provider answers 429 and calls fail or wait."
        ),
        for_=config.llm_ratelimit_for,
    )
