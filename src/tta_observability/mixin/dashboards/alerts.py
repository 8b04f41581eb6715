"""The Alerts dashboard: alerts firing and pending, their history and runbooks."""

from __future__ import annotations

from ..config import DEFAULT, NOTIFYING_SEVERITIES, MixinConfig
from ..grafana import (
    Row,
    stat,
    state_timeline,
    table,
    target,
    thresholds,
    timeseries,
    value_text,
)
from ..promql import agg, or_zero, selector
from ._common import (
    NOT_HEARTBEAT,
    SCOPE,
    SERVICE,
    Dashboard,
    alerts_of_scope,
    is_,
    runbook_variable,
)

SEVERITY_COLORS = {"critical": "red", "warning": "orange", "info": "blue"}
#: Alertmanager's own counts (contract.EXTERNAL_SERIES), from the job the stack scrapes.
AM_ALERTS = "alertmanager_alerts"
AM_SILENCES = "alertmanager_silences"
#: Grafana's Alerting pages for the Alertmanager data source the stack provisions (by name).
SILENCES_URL = "/alerting/silences?alertmanager=Alertmanager"
GROUPS_URL = "/alerting/groups?alertmanager=Alertmanager"


def alerts(config: MixinConfig = DEFAULT) -> Dashboard:
    am = config.alertmanager_selector
    firing = alerts_of_scope(is_("alertstate", "firing"), NOT_HEARTBEAT)
    pending = alerts_of_scope(is_("alertstate", "pending"), NOT_HEARTBEAT)
    alert_key = "alertname, severity"
    runbook_link = {
        "matcher": {"id": "byName", "options": "alertname"},
        "properties": [
            {
                "id": "links",
                "value": [
                    {
                        "title": "Runbook for ${__value.text}",
                        "url": "${runbook_base_url}${__value.text}.md",
                        "targetBlank": True,
                    }
                ],
            }
        ],
    }
    # ALERTS_FOR_STATE holds when each alert became active; it has every label of its ALERTS
    # series but alertstate, hence the join ignoring it. No aggregation: every label stays, the
    # escalation tier and the alert an escalation is about included.
    active_for = (
        f"(time() - {selector('ALERTS_FOR_STATE', [SCOPE])})\n"
        f"* ignoring (alertstate) group_left (alertstate)\n{alerts_of_scope()}"
    )
    suppressed = agg("", selector(AM_ALERTS, [am, 'state="suppressed"']), "max")
    silences = agg("", selector(AM_SILENCES, [am, 'state="active"']), "max")
    escalated = alerts_of_scope(is_("alertstate", "firing"), is_("escalation", "tier2"))
    return Dashboard(
        "alerts",
        "TTA.dev / Alerts",
        "The incident view: alerts firing and pending by severity with every label and their "
        "escalation, silences and inhibited alerts in Alertmanager, their history, and links to "
        "their runbooks.",
        [
            *(
                stat(
                    f"{state.capitalize()}: {sev}",
                    f"Alerts of severity {sev} {state} now.",
                    "short",
                    target(
                        or_zero(
                            "count("
                            f"{alerts_of_scope(is_('alertstate', state), is_('severity', sev))})"
                        ),
                        sev,
                    ),
                    thresholds=thresholds((None, "green"), (1, SEVERITY_COLORS[sev])),
                )
                for state in ("firing", "pending")
                for sev in NOTIFYING_SEVERITIES
            ),
            table(
                "Active alerts",
                "Every alert pending or firing now with all its labels (escalation tier, SLO, "
                "primitive, workflow, windows) and how long it has been active; click an alert "
                "name for its runbook.",
                "s",
                target(active_for, "active for"),
                rename={"Value": "Active for"},
                overrides=[runbook_link],
                height=10,
                sort_by="Active for",
                first=("alertname", "alertstate", "severity", "escalation", *SERVICE),
            ),
            Row("Escalation and Alertmanager"),
            stat(
                "Escalated",
                "Critical alerts still firing after 30 minutes, escalated to the second tier "
                "(TTACriticalAlertUnresolved, escalation tier2).",
                "short",
                target(or_zero(f"count({escalated})"), "escalated"),
                thresholds=thresholds((None, "green"), (1, "red")),
            ),
            stat(
                "Silences active",
                "Silences in effect in Alertmanager now; the link opens them in Grafana's "
                "Alerting view of the stack's Alertmanager.",
                "short",
                target(or_zero(silences), "silences"),
                thresholds=thresholds((None, "green"), (1, "orange")),
                links=[("Silences", SILENCES_URL)],
            ),
            stat(
                "Alerts silenced or inhibited",
                "Alerts Alertmanager holds but does not notify, because a silence matches them or "
                "a firing alert inhibits them (TTAServiceDown inhibits its service's other "
                "alerts; a critical alert its warning twin). The link lists them by group.",
                "short",
                target(or_zero(suppressed), "suppressed"),
                thresholds=thresholds((None, "green"), (1, "orange")),
                links=[("Alert groups (silenced and inhibited)", GROUPS_URL)],
            ),
            stat(
                "Alerts in Alertmanager",
                "Alerts Alertmanager holds and notifies (not silenced, not inhibited).",
                "short",
                target(
                    or_zero(agg("", selector(AM_ALERTS, [am, 'state="active"']), "max")), "active"
                ),
                links=[("Alert groups", GROUPS_URL)],
            ),
            timeseries(
                "Silenced or inhibited over time",
                "Alerts Alertmanager held without notifying, and silences in effect, over time.",
                "short",
                target(suppressed, "suppressed alerts"),
                target(silences, "active silences"),
                width=8,
            ),
            Row("History"),
            timeseries(
                "Firing alerts by severity",
                "Alerts firing over time, by severity.",
                "short",
                target(agg("severity", firing, op="count"), "{{severity}}"),
                stack=True,
                bars=True,
            ),
            timeseries(
                "Pending alerts by severity",
                "Alerts whose condition holds but whose 'for' duration has not passed yet.",
                "short",
                target(agg("severity", pending, op="count"), "{{severity}}"),
                stack=True,
                bars=True,
            ),
            state_timeline(
                "Alert history",
                "When each alert was pending (orange) or firing (red) in the time range.",
                "none",
                target(
                    f"2 * {agg(alert_key, firing, op='max')}\nor {agg(alert_key, pending, 'max')}",
                    "{{alertname}} ({{severity}})",
                ),
                mappings=value_text({"1": ("pending", "orange"), "2": ("firing", "red")}),
                thresholds=thresholds((None, "orange"), (2, "red")),
                width=24,
                height=10,
            ),
        ],
        extra_variables=[runbook_variable(config)],
        refresh="1m",
    )
