"""The Alerts dashboard: alerts firing and pending, their history and runbooks."""

from __future__ import annotations

from ..config import NOTIFYING_SEVERITIES
from ..grafana import (
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
    RUNBOOK_VARIABLE,
    SCOPE,
    Dashboard,
    alerts_of_scope,
    is_,
)

SEVERITY_COLORS = {"critical": "red", "warning": "orange", "info": "blue"}


def alerts() -> Dashboard:
    firing = alerts_of_scope(is_("alertstate", "firing"))
    pending = alerts_of_scope(is_("alertstate", "pending"))
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
    # series but alertstate, hence the join ignoring it.
    active_for = (
        f"(time() - {selector('ALERTS_FOR_STATE', [SCOPE])})\n"
        f"* ignoring (alertstate) group_left (alertstate)\n{alerts_of_scope()}"
    )
    return Dashboard(
        "alerts",
        "TTA.dev / Alerts",
        "Alerts firing and pending by severity, their history, and links to their runbooks.",
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
                "Every alert pending or firing now and how long it has been active; click an "
                "alert name for its runbook.",
                "s",
                target(
                    agg(
                        "alertname, alertstate, severity, service_name, environment, slo, "
                        "primitive_name, workflow",
                        active_for,
                        op="max",
                    ),
                    "active for",
                ),
                rename={"Value": "Active for"},
                overrides=[runbook_link],
                height=10,
                sort_by="Active for",
            ),
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
        extra_variables=[RUNBOOK_VARIABLE],
        refresh="1m",
    )
