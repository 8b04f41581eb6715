"""``doctor``'s verdict on the TTAWatchdog heartbeat, from what the APIs answered.

The heartbeat is the dead man's switch of the alert path: Prometheus evaluates an always-firing
rule and sends it to Alertmanager, which routes it to the heartbeat receiver. When it is missing
from Alertmanager, Prometheus' side usually says where the path broke: the rule is not loaded
(or does not evaluate), or it fires but is not delivered. These functions only read answers, so
every verdict's text can be tested without staging its failure; ``doctor`` does the requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..mixin.rules import ALERT_PATH_FILE, WATCHDOG_ALERT

NAME: Final = f"{WATCHDOG_ALERT} heartbeat active"
#: Alertmanager's /api/v2/alerts filter for the heartbeat.
FILTER: Final = f'alertname="{WATCHDOG_ALERT}"'
_MISSING: Final = f"{WATCHDOG_ALERT} is not in Alertmanager"
_RUNBOOK: Final = f"the {WATCHDOG_ALERT} runbook"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str
    fix: str = ""


def in_alertmanager(alerts: Any) -> Verdict | None:
    """The verdict from Alertmanager's ``/api/v2/alerts`` answer; None when it lacks the alert."""
    found = [
        a
        for a in (alerts if isinstance(alerts, list) else [])
        if isinstance(a, dict) and (a.get("labels") or {}).get("alertname") == WATCHDOG_ALERT
    ]
    active = [a for a in found if (a.get("status") or {}).get("state") == "active"]
    if active:
        receivers = sorted({r.get("name", "?") for a in active for r in a.get("receivers") or []})
        since = min(str(a.get("startsAt", "?")) for a in active)
        many = f" ({len(active)} alerts, one per sending Prometheus)" if len(active) > 1 else ""
        return Verdict(True, f"active since {since}, receiver {', '.join(receivers)}{many}")
    if not found:
        return None
    status = found[0].get("status") or {}
    silences = [str(s) for s in status.get("silencedBy") or []]
    if silences:
        return Verdict(
            False,
            f"{WATCHDOG_ALERT} is silenced in Alertmanager (silence {', '.join(silences)}): the "
            "heartbeat receiver gets nothing, so the dead man's switch raises the alarm",
            f"expire the silence (`amtool silence expire {silences[0]}` or Alertmanager's "
            "Silences page): the heartbeat must never be silenced",
        )
    if status.get("inhibitedBy"):
        return Verdict(
            False,
            f"{WATCHDOG_ALERT} is inhibited in Alertmanager by another firing alert: the "
            "heartbeat receiver gets nothing",
            f"no inhibit_rules entry of alertmanager.yml may match alertname={WATCHDOG_ALERT} "
            "in its target_matchers (the shipped configuration's do not)",
        )
    return Verdict(
        False,
        f"{WATCHDOG_ALERT} is in Alertmanager but {status.get('state', 'not active')}",
        "it has just arrived: run doctor again in a few seconds",
    )


def find_rule(groups: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The heartbeat rule in Prometheus' ``/api/v1/rules`` groups, or None when not loaded."""
    for group in groups:
        rules: list[Mapping[str, Any]] = group.get("rules") or []
        for rule in rules:
            if rule.get("name") == WATCHDOG_ALERT and rule.get("type", "alerting") == "alerting":
                return rule
    return None


def prometheus_unchecked(why: str) -> Verdict:
    return Verdict(
        False,
        f"{_MISSING}: no Prometheus delivers the heartbeat here (Prometheus is {why}, so "
        "which side is broken is not known)",
        f"check that Prometheus loads {ALERT_PATH_FILE} and lists this Alertmanager under "
        "alerting.alertmanagers in prometheus.yml; run doctor with --prometheus URL to tell "
        f"which side is broken ({_RUNBOOK})",
    )


def prometheus_unreachable(prometheus: str) -> Verdict:
    return Verdict(
        False,
        f"{_MISSING}: Prometheus at {prometheus} does not answer, so nothing evaluates the "
        "heartbeat rule",
        "start Prometheus (see its check above), or pass --prometheus URL of the Prometheus "
        "that sends alerts to this Alertmanager",
    )


def lost(
    prometheus: str,
    rule: Mapping[str, Any] | None,
    senders: Sequence[str],
    reaches_us: bool,
    alertmanager: str,
) -> Verdict:
    """Why the heartbeat is missing, from Prometheus' side.

    ``rule`` is the heartbeat rule as ``/api/v1/rules`` shows it; ``senders`` the Alertmanagers
    Prometheus sends to (``/api/v1/alertmanagers``), ``reaches_us`` whether this one is among
    them.
    """
    if rule is None:
        return Verdict(
            False,
            f"{_MISSING}: Prometheus at {prometheus} has no {WATCHDOG_ALERT} rule, so the "
            f"alert-path rules ({ALERT_PATH_FILE}) are not loaded and the heartbeat is never "
            "evaluated",
            f"add the shipped rules to rule_files (`tta-observability export rules DIR`, "
            f"{ALERT_PATH_FILE} among them) and reload Prometheus (POST /-/reload or SIGHUP)",
        )
    if rule.get("health") == "err":
        return Verdict(
            False,
            f"{_MISSING}: Prometheus at {prometheus} fails to evaluate {WATCHDOG_ALERT}: "
            f"{rule.get('lastError')}",
            "see the rule's lastError on Prometheus' /rules page",
        )
    if rule.get("state") != "firing":
        return Verdict(
            False,
            f"{_MISSING}: Prometheus at {prometheus} has loaded {WATCHDOG_ALERT} but it is "
            f"{rule.get('state', 'not firing')} (rule health {rule.get('health', '?')}): rule "
            "evaluation has not run yet or is stuck",
            "wait one evaluation interval and run doctor again; if it stays, check Prometheus' "
            "rule evaluation (its /rules page, TTAPrometheusRuleFailures)",
        )
    firing = f"{WATCHDOG_ALERT} fires in Prometheus at {prometheus} but is not in this Alertmanager"
    if not senders:
        return Verdict(
            False,
            f"{firing}: Prometheus sends alerts to no Alertmanager, so delivery is broken",
            "add alerting.alertmanagers to prometheus.yml (the shipped compose config has it) "
            "and reload Prometheus",
        )
    if not reaches_us:
        return Verdict(
            False,
            f"{firing}: Prometheus sends alerts to {', '.join(senders)}, not to {alertmanager}",
            f"list {alertmanager} under alerting.alertmanagers in prometheus.yml and reload "
            "Prometheus, or pass --alertmanager URL of the Alertmanager it sends to",
        )
    return Verdict(
        False,
        f"{firing}, though Prometheus sends to it: delivery from Prometheus to Alertmanager "
        "fails, or has not been retried since Prometheus found this Alertmanager",
        "Prometheus resends a firing alert once per --rules.alert.resend-delay (1m by "
        "default): run doctor again in a minute; if it is still missing, look for "
        "prometheus_notifications_dropped_total and notification errors in Prometheus' log "
        "(TTAPrometheusAlertmanagerUnreachable)",
    )
