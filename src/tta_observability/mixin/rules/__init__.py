"""The shipped Prometheus rules: recording rules, SLO burn-rate rules and health alerts.

This package is the single source of truth for ``rules/*.yml``; ``python -m
tta_observability.mixin`` rewrites them. Every rule is built from a
:class:`~tta_observability.mixin.config.MixinConfig`; metric names come from
:mod:`tta_observability.contract`, and the dashboards read the recorded names from
:mod:`.names`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import yaml

from ... import contract as c
from ..config import (
    DEFAULT,
    RUNBOOK_BASE_URL,
    RUNBOOK_BASE_URL_ENV,
    TTA_JOB_REGEX,
    BurnRateWindow,
    ConfigError,
    MixinConfig,
    Severity,
    check_runbook_base_url,
)
from ..promql import metric_names
from . import names
from .alert_path import WATCHDOG_ALERT, alert_path_alerts
from .health import SERVICE_DOWN_ALERT, SERVICE_GONE_ALERT, health_alerts
from .llm import (
    LLM_BUDGET_BURN_ALERT,
    LLM_RATELIMIT_ALERT,
    budget_groups,
    llm_rules,
    ratelimit_alert,
)
from .model import Alert, Group, Recording, Rule
from .names import SLO_PERIOD, slo_burn_rate, slo_error_ratio, slo_errors, slo_requests
from .recording import primitive_rules, recovery_rules, workflow_rules
from .shape import RUNAWAY_ALERT, map_rules, run_rules, runaway_alerts
from .slo import SLO_BURN_ALERT, SLO_SLOW_INTERVAL, fast_group, slo_windows, slow_group

__all__ = [
    "ALERTS_FILE",
    "ALERT_PATH_FILE",
    "DEFAULT",
    "LLM_BUDGET_BURN_ALERT",
    "LLM_RATELIMIT_ALERT",
    "RECORDING_FILE",
    "RUNAWAY_ALERT",
    "RUNBOOK_BASE_URL",
    "RUNBOOK_BASE_URL_ENV",
    "SERVICE_DOWN_ALERT",
    "SERVICE_GONE_ALERT",
    "SLO_BURN_ALERT",
    "SLO_FILE",
    "SLO_PERIOD",
    "SLO_SLOW_INTERVAL",
    "TTA_JOB_REGEX",
    "WATCHDOG_ALERT",
    "Alert",
    "BurnRateWindow",
    "ConfigError",
    "Group",
    "MixinConfig",
    "Recording",
    "Rule",
    "Severity",
    "alert_runbooks",
    "alerts",
    "all_rules",
    "check_overrides",
    "check_runbook_base_url",
    "metric_names",
    "names",
    "recorded_names",
    "render",
    "rule_files",
    "slo_burn_rate",
    "slo_error_ratio",
    "slo_errors",
    "slo_requests",
    "slo_windows",
    "unknown_metric_names",
]

RECORDING_FILE: Final = "tta-recording.rules.yml"
SLO_FILE: Final = "tta-slo.rules.yml"
ALERTS_FILE: Final = "tta-alerts.rules.yml"
ALERT_PATH_FILE: Final = "tta-alert-path.rules.yml"


def rule_files(config: MixinConfig = DEFAULT) -> dict[str, tuple[Group, ...]]:
    """Every shipped rule file name with its groups, in file order, as ``config`` sets them."""
    return {
        name: tuple(_tuned(g, config) for g in groups) for name, groups in _untuned(config).items()
    }


def _untuned(config: MixinConfig) -> dict[str, tuple[Group, ...]]:
    return {
        RECORDING_FILE: (
            Group("tta-primitives", tuple(primitive_rules())),
            Group("tta-workflows", tuple(workflow_rules())),
            Group("tta-recovery", tuple(recovery_rules())),
            Group("tta-llm", tuple(llm_rules())),
            Group("tta-workflow-map", tuple(map_rules())),
            Group("tta-workflow-runs", tuple(run_rules())),
        ),
        # Rules of a group run in order at one timestamp, so each burn alert sits in the group
        # that records its long window and reads the ratios of the same evaluation.
        SLO_FILE: (fast_group(config), slow_group(config)),
        ALERTS_FILE: (
            Group("tta-health", (*health_alerts(config), ratelimit_alert(config))),
            *budget_groups(config),
            Group("tta-workflow-runaway", tuple(runaway_alerts(config))),
        ),
        ALERT_PATH_FILE: (Group("tta-alert-path", tuple(alert_path_alerts(config))),),
    }


def _tuned(group: Group, config: MixinConfig) -> Group:
    """``group`` with the configuration's per-alert overrides and extra labels applied."""
    rules: list[Rule] = []
    for rule in group.rules:
        if isinstance(rule, Alert):
            rule = replace(
                rule,
                for_=config.alert_for.get(rule.name, rule.for_),
                severity=config.alert_severity.get(rule.name, rule.severity),
                labels={**rule.labels, **config.extra_labels},
            )
        rules.append(rule)
    return replace(group, rules=tuple(rules))


def check_overrides(config: MixinConfig) -> None:
    """Every alert named in ``alert_for`` and ``alert_severity`` exists, and may be tuned so."""
    known = {
        r.name
        for groups in _untuned(config).values()
        for g in groups
        for r in g.rules
        if isinstance(r, Alert)
    }
    for setting in ("alert_for", "alert_severity"):
        for name in getattr(config, setting):
            if name == SLO_BURN_ALERT:
                raise ConfigError(
                    f"{setting}: {name} has one for and severity per window pair: set them in "
                    "burn_rate_windows"
                )
            if name not in known:
                raise ConfigError(
                    f"{setting}: no alert is named {name!r}; the alerts are: "
                    f"{', '.join(sorted(known - {SLO_BURN_ALERT}))}"
                )


def all_rules(config: MixinConfig = DEFAULT) -> list[Rule]:
    return [r for groups in rule_files(config).values() for g in groups for r in g.rules]


def recorded_names(config: MixinConfig = DEFAULT) -> list[str]:
    """Every series name the recording rules produce, in file order."""
    return [r.record for r in all_rules(config) if isinstance(r, Recording)]


def alerts(config: MixinConfig = DEFAULT) -> list[Alert]:
    """Every alert rule (the burn-rate alert appears once per window pair)."""
    return [r for r in all_rules(config) if isinstance(r, Alert)]


def alert_runbooks() -> dict[str, str]:
    """Alert name -> runbook path relative to the repository root."""
    return {a.name: a.runbook for a in alerts()}


_HEADER = (
    "# Generated by `python -m tta_observability.mixin` from "
    "src/tta_observability/mixin/rules/; do not edit.\n"
)


def render(config: MixinConfig = DEFAULT) -> dict[str, str]:
    """File name -> YAML text; with the default config, exactly as committed under ``rules/``."""
    base = check_runbook_base_url(config.runbook_base_url)
    check_overrides(config)
    return {
        name: _HEADER
        + yaml.safe_dump(
            {"groups": [g.to_yaml(base) for g in groups]},
            sort_keys=False,
            width=1_000_000,
            allow_unicode=True,
        )
        for name, groups in rule_files(config).items()
    }


def unknown_metric_names() -> dict[str, set[str]]:
    """Rule name -> names it queries that neither the contract nor a recording rule produces."""
    known = c.known_series() | set(recorded_names())
    out: dict[str, set[str]] = {}
    for rule in all_rules():
        missing = metric_names(rule.expr) - known
        if missing:
            name = rule.record if isinstance(rule, Recording) else rule.name
            out.setdefault(name, set()).update(missing)
    return out
