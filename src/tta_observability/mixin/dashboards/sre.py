"""The SRE dashboard: SLIs, burn rates, error budgets and burn alerts."""

from __future__ import annotations

from ... import contract as c
from ..config import DEFAULT, MixinConfig
from ..grafana import (
    colored,
    table,
    target,
    timeseries,
    unit,
    value_text,
)
from ..promql import agg, rate, ratio
from ..rules import names as n
from ..rules.slo import SLO_BURN_ALERT
from ._common import (
    BUDGET_COLORS,
    RATE,
    SLO,
    SLO_BY,
    SLO_COLUMNS,
    SLO_KEY,
    SLO_LEGEND,
    SLO_VARIABLE,
    Dashboard,
    alert_annotation,
    alerts_of_scope,
    budget,
    burn_windows,
    is_,
    rec,
    sel,
)


def _spaced(window: str) -> str:
    return f"{window[:-1]} {window[-1]}"


def _pairs(config: MixinConfig) -> str:
    """``14.4 (1 h, 5 m), 6 (6 h, 30 m) or 1 (3 d, 6 h)``: each pair's factor and windows."""
    pairs = [
        f"{w.burn_rate:g} ({_spaced(w.long)}, {_spaced(w.short)})" for w in config.burn_rate_windows
    ]
    return ", ".join(pairs[:-1]) + " or " + pairs[-1] if len(pairs) > 1 else pairs[0]


def sre(config: MixinConfig = DEFAULT) -> Dashboard:
    requests = sel(c.SLO_REQUESTS, SLO)
    errors = sel(c.SLO_ERRORS, SLO)
    burn_alert = is_("alertname", SLO_BURN_ALERT)
    sli_ratio = ratio(
        agg(SLO_BY, rate(errors, RATE)), agg(SLO_BY, rate(requests, RATE)), multiline=True
    )
    objective = agg(SLO_BY, sel(c.SLO_OBJECTIVE, SLO), op="max")
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
                    agg(SLO_BY, f"1 - {rec(n.slo_error_ratio('1h'), SLO_KEY, SLO)}", "min"),
                    "sli",
                ),
                target(agg(SLO_BY, rec(n.slo_burn_rate("1h"), SLO_KEY, SLO), "max"), "burn"),
                target(agg(SLO_BY, budget(SLO), op="min"), "budget"),
                target(agg(SLO_BY, f"{budget(SLO)} > bool 0", op="min"), "status"),
                target(agg(SLO_BY, sel(c.SLO_LATENCY_THRESHOLD, SLO), op="max"), "threshold"),
                first=tuple(SLO_COLUMNS),
                rename={
                    **SLO_COLUMNS,
                    "Value #A": "Objective",
                    "Value #B": "SLI (1 h)",
                    "Value #C": "Burn rate (1 h)",
                    "Value #D": "Budget left (30 d)",
                    "Value #E": "Status",
                    "Value #F": "Latency threshold",
                },
                overrides=[
                    unit("Latency threshold", "s"),
                    colored("Budget left (30 d)", BUDGET_COLORS),
                    unit("Burn rate (1 h)", "x", 2),
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
                    f"1 - (\n{sli_ratio}\n)",
                    SLO_LEGEND,
                ),
                target(objective, f"{SLO_LEGEND} objective"),
                min_zero=False,
            ),
            timeseries(
                "Burn rate per window",
                "How fast each SLO spends its error budget, per alerting window (1 = on track to "
                "spend exactly the budget in 30 days). The burn alerts fire when a long and a "
                f"short window both exceed {_pairs(config)}.",
                "x",
                *(
                    target(
                        agg(SLO_BY, rec(n.slo_burn_rate(w), SLO_KEY, SLO), op="max"),
                        f"{SLO_LEGEND} {w}",
                    )
                    for w in burn_windows(config)
                ),
            ),
            timeseries(
                "Error budget remaining (30 d)",
                "Share of the 30-day error budget left, per service, environment and SLO; below 0 "
                "the SLO is breached.",
                "percentunit",
                target(agg(SLO_BY, budget(SLO), op="min"), SLO_LEGEND),
                min_zero=False,
            ),
            timeseries(
                "Bad calls",
                "SLO calls per second that failed or ran over the latency threshold.",
                "ops",
                target(agg(SLO_BY, rate(errors, RATE)), SLO_LEGEND),
                stack=True,
            ),
            table(
                "Burn alerts firing",
                "SLO burn-rate alerts firing now, with the window pair that fired.",
                "short",
                target(
                    agg(
                        f"{SLO_BY}, severity, long_window, short_window",
                        alerts_of_scope(is_("alertstate", "firing"), burn_alert, SLO),
                        op="max",
                    ),
                    "alerts",
                ),
                width=12,
                first=tuple(SLO_COLUMNS),
                rename={**SLO_COLUMNS, "Value": "Firing"},
            ),
            timeseries(
                "Burn alerts over time",
                "SLO burn-rate alerts pending or firing, by service, environment, SLO, long window "
                "and state.",
                "short",
                target(
                    agg(
                        f"{SLO_BY}, long_window, alertstate",
                        alerts_of_scope(burn_alert, SLO),
                        op="count",
                    ),
                    f"{SLO_LEGEND} {{{{long_window}}}} {{{{alertstate}}}}",
                ),
                bars=True,
            ),
        ],
        extra_variables=[SLO_VARIABLE],
        extra_annotations=[alert_annotation()],
    )
