"""The mixin's configuration: what a user may tune without editing generated output.

As in the kubernetes-mixin's ``_config``, every rule is built from one :class:`MixinConfig`; the
committed ``rules/*.yml`` are the output of :data:`DEFAULT`. A YAML file with any subset of the
fields (:func:`load`) overrides the defaults; ``docs/rules.md`` documents each field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

import yaml

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
#: The SLO budget period.
SLO_PERIOD_SECONDS: Final = 30 * 86400

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: A label matcher list as written inside ``{...}``: ``job=~"agents-.*"``, ``a="b", c!="d"``.
_MATCHERS = re.compile(
    r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"'
    r'(\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*")*\s*'
)


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


def duration_seconds(window: str) -> int:
    """A Prometheus duration with one unit (``5m``, ``3d``) in seconds."""
    if not isinstance(window, str) or not re.fullmatch(r"[1-9][0-9]*[smhdw]", window):
        raise ValueError(f"{window!r} is not a duration such as 30s, 5m, 1h, 3d or 1w")
    return int(window[:-1]) * _UNITS[window[-1]]


@dataclass(frozen=True)
class BurnRateWindow:
    """One pair of the multi-window, multi-burn-rate alert (Google SRE workbook, chapter 5)."""

    long: str
    short: str
    burn_rate: float
    severity: Severity
    for_: str

    @property
    def budget_spent(self) -> str:
        """Share of the 30-day budget spent over ``long`` at exactly ``burn_rate``."""
        share = self.burn_rate * duration_seconds(self.long) / SLO_PERIOD_SECONDS
        return f"{share * 100:.3g}%"


DEFAULT_BURN_RATE_WINDOWS: Final = (
    BurnRateWindow("1h", "5m", 14.4, "critical", "2m"),
    BurnRateWindow("6h", "30m", 6.0, "critical", "2m"),
    BurnRateWindow("1d", "2h", 3.0, "warning", "15m"),
    BurnRateWindow("3d", "6h", 1.0, "warning", "15m"),
)


@dataclass(frozen=True)
class MixinConfig:
    """Selectors, thresholds and windows of the shipped rules (docs/rules.md explains each)."""

    #: Matchers selecting the scrape jobs of the TTA apps, for the ``up``-based alerts.
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
    #: TTAWorkflowRunaway: the p99 of LLM calls (or cost) per run over the last 30 minutes must
    #: exceed this factor times the p99 of the day before ...
    runaway_factor: float = 3.0
    #: ... and be at least this many LLM calls per run ...
    runaway_min_llm_calls: int = 10
    #: ... or this many US dollars per run, so 1 call becoming 4 does not count.
    runaway_min_cost_usd: float = 0.05
    span_export_failure_ratio: float = 0.1
    #: ... of at least this many failed spans in 5 minutes, so one failed span of one does not
    #: count.
    span_export_min_failures_5m: int = 10
    #: Labels added to every alert (``team``, ``cluster``...); they may not replace the alert's own.
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    #: Pending duration (``for``) per alert name, replacing the shipped one.
    alert_for: Mapping[str, str] = field(default_factory=dict)
    #: Severity per alert name, replacing the shipped one (route a warning to paging, ...).
    alert_severity: Mapping[str, Severity] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(self)


_RATIOS: Final = (
    "primitive_error_ratio",
    "workflow_failure_ratio",
    "retry_storm_failed_fraction",
    "span_export_failure_ratio",
    "llm_ratelimit_min_headroom",
)
_POSITIVE: Final = (
    "latency_regression_factor",
    "latency_regression_min_seconds",
    "retry_storm_min_failed_per_second",
    "llm_budget_usd_per_hour",
    "runaway_factor",
    "runaway_min_cost_usd",
)
_COUNTS: Final = (
    "slo_min_requests",
    "slo_min_errors",
    "min_calls_5m",
    "span_export_min_failures_5m",
    "runaway_min_llm_calls",
)
_SELECTORS: Final = (
    "job_selector",
    "prometheus_selector",
    "alertmanager_selector",
    "collector_selector",
)
#: Labels an alert always sets itself.
RESERVED_LABELS: Final = frozenset({"alertname", "severity", "long_window", "short_window"})


def check_runbook_base_url(url: str) -> str:
    """``url`` as a runbook base: an absolute http(s) URL, ending in ``/``."""
    if not isinstance(url, str):
        raise ValueError(f"runbook base URL {url!r} is not a string")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"runbook base URL {url!r} is not an absolute http:// or https:// URL "
            f"(for example {RUNBOOK_BASE_URL})"
        )
    if parts.query or parts.fragment:
        raise ValueError(
            f"runbook base URL {url!r} has a query or fragment; the alert name is appended to it"
        )
    base = url.strip()
    return base if base.endswith("/") else base + "/"


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_value(name: str, value: Any) -> None:
    if name in _SELECTORS:
        if not isinstance(value, str) or not _MATCHERS.fullmatch(value):
            raise ConfigError(
                f'{name}: {value!r} is not a list of label matchers such as job=~"agents-.*"'
            )
    elif name in _RATIOS:
        if not _number(value) or not 0 < value < 1:
            raise ConfigError(f"{name}: {value!r} is not a ratio between 0 and 1 (0.1 = 10 %)")
    elif name in _POSITIVE:
        if not _number(value) or value <= 0:
            raise ConfigError(f"{name}: {value!r} is not a positive number")
    elif name in _COUNTS:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{name}: {value!r} is not a whole number of calls, 0 or more")
    elif name in ("service_down_lookback", "llm_ratelimit_for"):
        try:
            duration_seconds(value)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None


def check(config: MixinConfig) -> None:
    """Raise :class:`ConfigError` naming the first invalid field of ``config``."""
    for f in fields(config):
        _check_value(f.name, getattr(config, f.name))
    try:
        check_runbook_base_url(config.runbook_base_url)
    except ValueError as exc:
        raise ConfigError(f"runbook_base_url: {exc}") from None
    if not config.burn_rate_windows:
        raise ConfigError("burn_rate_windows: at least one window pair is needed")
    for i, w in enumerate(config.burn_rate_windows):
        where = f"burn_rate_windows[{i}]"
        try:
            long, short = duration_seconds(w.long), duration_seconds(w.short)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if short >= long:
            raise ConfigError(f"{where}: short window {w.short} is not shorter than {w.long}")
        if long > SLO_PERIOD_SECONDS:
            raise ConfigError(f"{where}: long window {w.long} is longer than the 30d budget")
        if not _number(w.burn_rate) or w.burn_rate <= 0:
            raise ConfigError(f"{where}: burn_rate {w.burn_rate!r} is not a positive number")
        if w.severity not in get_args(Severity):
            raise ConfigError(f"{where}: severity {w.severity!r} is not one of critical, warning")
        try:
            duration_seconds(w.for_)
        except ValueError as exc:
            raise ConfigError(f"{where}: for: {exc}") from None
    for key, value in config.extra_labels.items():
        if not isinstance(key, str) or not _LABEL_NAME.fullmatch(key) or key.startswith("__"):
            raise ConfigError(f"extra_labels: {key!r} is not a Prometheus label name")
        if key in RESERVED_LABELS:
            raise ConfigError(f"extra_labels: {key!r} is set by the alerts themselves")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"extra_labels: the value of {key!r} must be a non-empty string")
    for name, value in config.alert_for.items():
        try:
            if value != "0m":
                duration_seconds(value)
        except ValueError as exc:
            raise ConfigError(f"alert_for: {name}: {exc}") from None
    for name, sev in config.alert_severity.items():
        if sev not in get_args(Severity):
            raise ConfigError(
                f"alert_severity: {name}: {sev!r} is not one of {', '.join(get_args(Severity))}"
            )


#: The configuration of the committed rule files.
DEFAULT: Final = MixinConfig()

_WINDOW_KEYS: Final = {"long", "short", "burn_rate", "severity", "for"}


def _window(i: int, item: object) -> BurnRateWindow:
    if not isinstance(item, Mapping) or set(item) != _WINDOW_KEYS:
        raise ConfigError(
            f"burn_rate_windows[{i}]: expected a mapping with exactly the keys "
            f"{', '.join(sorted(_WINDOW_KEYS))}, got {item!r}"
        )
    return BurnRateWindow(
        str(item["long"]), str(item["short"]), item["burn_rate"], item["severity"], str(item["for"])
    )


def from_mapping(data: Mapping[str, Any], base: MixinConfig = DEFAULT) -> MixinConfig:
    """``base`` with the fields ``data`` names replaced (the YAML file's layout)."""
    names = {f.name for f in fields(MixinConfig)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(
                f"unknown setting {key!r}; the settings are: {', '.join(sorted(names))}"
            )
        if key == "burn_rate_windows":
            if not isinstance(value, list):
                raise ConfigError("burn_rate_windows: expected a list of window pairs")
            value = tuple(_window(i, item) for i, item in enumerate(value))
        elif key in ("extra_labels", "alert_for", "alert_severity"):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key}: expected a mapping, got {value!r}")
            value = {str(k): v if key == "extra_labels" else str(v) for k, v in value.items()}
        changes[key] = value
    return replace(base, **changes)


def load(path: str | Path) -> MixinConfig:
    """The configuration in the YAML file ``path``: the defaults with its settings applied."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the mixin configuration {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return DEFAULT
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    try:
        return from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
