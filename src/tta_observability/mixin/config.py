"""The mixin's configuration: what a user may tune without editing generated output.

As in the kubernetes-mixin's ``_config``, every rule is built from one :class:`MixinConfig`; the
committed ``rules/*.yml`` are the output of :data:`DEFAULT`. ``docs/rules.md`` documents each
field and its default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Severity = Literal["critical", "warning", "info", "none"]
#: Severities that notify someone; ``none`` (the TTAWatchdog heartbeat) never does.
NOTIFYING_SEVERITIES: Final = ("critical", "warning", "info")

#: Where each alert's ``runbook_url`` points by default; the file is
#: ``docs/runbooks/<AlertName>.md``.
RUNBOOK_BASE_URL: Final = "https://github.com/tta-dev/tta-observability/blob/main/docs/runbooks/"
#: Environment variable the generator reads the runbook base URL from when no flag gives one.
RUNBOOK_BASE_URL_ENV: Final = "TTA_RUNBOOK_BASE_URL"
#: Jobs that scrape TTA apps match this; the bundled stack names its discovered apps "tta-apps".
TTA_JOB_REGEX: Final = "tta.*"


@dataclass(frozen=True)
class BurnRateWindow:
    """One pair of the multi-window, multi-burn-rate alert (Google SRE workbook, chapter 5)."""

    long: str
    short: str
    burn_rate: float
    severity: Severity
    for_: str
    #: Share of the 30-day budget spent over ``long`` at exactly ``burn_rate``.
    budget_spent: str


DEFAULT_BURN_RATE_WINDOWS: Final = (
    BurnRateWindow("1h", "5m", 14.4, "critical", "2m", "2%"),
    BurnRateWindow("6h", "30m", 6.0, "critical", "2m", "5%"),
    BurnRateWindow("1d", "2h", 3.0, "warning", "15m", "10%"),
    BurnRateWindow("3d", "6h", 1.0, "warning", "15m", "10%"),
)


@dataclass(frozen=True)
class MixinConfig:
    """Selectors, thresholds and windows of the shipped rules (docs/rules.md explains each)."""

    #: Matcher selecting the scrape jobs of the TTA apps, for the ``up``-based alerts.
    job_selector: str = f'job=~"{TTA_JOB_REGEX}"'
    #: Matchers selecting the alert path's own components, for the alerts that watch it.
    prometheus_selector: str = 'job="prometheus"'
    alertmanager_selector: str = 'job="alertmanager"'
    collector_selector: str = 'job="otel-collector"'
    #: Base of every alert's ``runbook_url``; ``<AlertName>.md`` is appended.
    runbook_base_url: str = RUNBOOK_BASE_URL
    #: A burn-rate window must hold at least this many SLO calls before the alert may fire ...
    slo_min_requests: int = 10
    #: ... and at least this many bad calls, so one failure of a dozen calls an hour cannot page.
    slo_min_errors: int = 5
    #: The multi-window burn-rate pairs, fastest first.
    burn_rate_windows: tuple[BurnRateWindow, ...] = DEFAULT_BURN_RATE_WINDOWS
    #: TTAServiceGone warns about a service whose targets all left service discovery, if one of
    #: them was up within this window; after it, the alert resolves.
    service_down_lookback: str = "1h"
    #: Health alerts on ratios need this many calls in 5 minutes, so two failures of three do not
    #: page.
    min_calls_5m: int = 10
    primitive_error_ratio: float = 0.1
    workflow_failure_ratio: float = 0.1
    #: p95 must exceed this factor times its baseline ...
    latency_regression_factor: float = 2.0
    #: ... and this many seconds, so 1 ms turning into 3 ms does not count as a regression.
    latency_regression_min_seconds: float = 0.1
    retry_storm_min_failed_per_second: float = 1.0
    retry_storm_failed_fraction: float = 0.5
    #: LLM spend per service and environment over any rolling hour, in US dollars, for services
    #: that export no ``tta_llm_budget_usd_per_hour`` gauge of their own.
    llm_budget_usd_per_hour: float = 10.0
    #: TTALLMRateLimitLow fires when less than this share of a provider rate limit is left ...
    llm_ratelimit_min_headroom: float = 0.1
    #: ... for this long, while LLM calls are being made.
    llm_ratelimit_for: str = "5m"
    span_export_failure_ratio: float = 0.1
    #: ... of at least this many failed spans in 5 minutes, so one failed span of one does not
    #: count.
    span_export_min_failures_5m: int = 10


#: The configuration of the committed rule files.
DEFAULT: Final = MixinConfig()
