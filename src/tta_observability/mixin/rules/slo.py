"""SLO rules: per-window ratios and burn rates, and the multi-window burn-rate alert.

SLO rules are static and generic: they aggregate ``tta_slo_*`` by ``service_name``,
``environment`` and ``slo`` and take each objective from the ``tta_slo_objective_ratio`` gauge,
so an SLO declared in code needs no regeneration. ``docs/rules.md`` explains the maths.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ... import contract as c
from ..config import BurnRateWindow, MixinConfig
from ..promql import agg, join, rate, seconds
from . import names as n
from .model import Alert, Group, Recording

SLO_BURN_ALERT: Final = "TTASLOErrorBudgetBurn"
#: Windows whose ``rate()`` reads days of raw samples (this long or longer). They get their own
#: group, evaluated every :data:`SLO_SLOW_INTERVAL`, so that an overrunning long query cannot
#: make the fast-burn group skip evaluations (and pages). The interval stays under the 5-minute
#: lookback, so instant queries of these series never fall into a gap between two evaluations.
SLO_SLOW_FROM: Final = "3d"
SLO_SLOW_INTERVAL: Final = "2m"


def slo_windows(config: MixinConfig) -> tuple[str, ...]:
    """Every window an SLO ratio is recorded over: each burn-rate pair's and the budget period."""
    windows = {w for b in config.burn_rate_windows for w in (b.long, b.short)} | {n.SLO_PERIOD}
    return tuple(sorted(windows, key=seconds))


def _slow(window: str) -> bool:
    return seconds(window) >= seconds(SLO_SLOW_FROM)


def _window_rules(windows: Iterable[str]) -> list[Recording]:
    rules: list[Recording] = []
    for w in windows:
        rules += [
            Recording(n.slo_requests(w), agg(n.SLO_KEY, rate(c.SLO_REQUESTS.name, w))),
            # No error series exists before the first bad call; read that as 0 bad calls.
            Recording(
                n.slo_errors(w),
                f"{agg(n.SLO_KEY, rate(c.SLO_ERRORS.name, w))} or 0 * {n.slo_requests(w)}",
            ),
            Recording(n.slo_error_ratio(w), f"{n.slo_errors(w)} / {n.slo_requests(w)}"),
            Recording(
                n.slo_burn_rate(w),
                f"{n.slo_error_ratio(w)} / on ({join(n.SLO_KEY)}) (1 - {n.SLO_OBJECTIVE})",
            ),
        ]
    return rules


def fast_group(config: MixinConfig) -> Group:
    windows = [w for w in slo_windows(config) if not _slow(w)]
    return Group(
        "tta-slo",
        (
            Recording(n.SLO_OBJECTIVE, f"max by ({join(n.SLO_KEY)}) ({c.SLO_OBJECTIVE.name})"),
            *_window_rules(windows),
            *(burn_alert(w, config) for w in config.burn_rate_windows if not _slow(w.long)),
        ),
    )


def slow_group(config: MixinConfig) -> Group:
    # Its burn alert reads the short window (6h) from the fast group: at most one fast
    # evaluation old, which a ticket alert pending for 15 minutes does not notice.
    return Group(
        "tta-slo-long-windows",
        (
            *_window_rules(w for w in slo_windows(config) if _slow(w)),
            Recording(n.SLO_ERROR_BUDGET_REMAINING, f"1 - {n.slo_burn_rate(n.SLO_PERIOD)}"),
            *(burn_alert(w, config) for w in config.burn_rate_windows if _slow(w.long)),
        ),
        interval=SLO_SLOW_INTERVAL,
    )


def burn_alert(w: BurnRateWindow, config: MixinConfig) -> Alert:
    threshold = f"{w.burn_rate:g}"
    expr = (
        f"{n.slo_burn_rate(w.long)} > {threshold}"
        f" and {n.slo_burn_rate(w.short)} > {threshold}"
        f" and {n.slo_requests(w.long)} * {seconds(w.long)} >= {config.slo_min_requests}"
        f" and {n.slo_errors(w.long)} * {seconds(w.long)} >= {config.slo_min_errors}"
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
            f"Burning at {threshold} spends {w.budget_spent} of the {n.SLO_PERIOD} budget "
            f"in {w.long}."
        ),
        for_=w.for_,
        labels={"long_window": w.long, "short_window": w.short},
    )
