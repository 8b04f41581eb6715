"""The workflow's shape: the map's per-node series, self time, and runaway runs.

A workflow's nodes are the ``child`` values of its ``tta_workflow_edge_info`` edges. Per-node
figures come from the primitive's own series (by ``primitive_name``), so a primitive shared by
two workflows shows its total in both maps.
"""

from __future__ import annotations

from typing import Final

from ... import contract as c
from ..config import MixinConfig
from ..promql import agg, join, label, rate
from . import names as n
from .model import Alert, Recording

RUNAWAY_ALERT: Final = "TTAWorkflowRunaway"
#: How far back the runaway baseline ends: the last hour is left out, so a runaway does not
#: raise its own baseline while it is being noticed.
RUNAWAY_BASELINE_OFFSET: Final = "1h"

_NODE = (*n.WORKFLOW, "primitive_name")
_BY_NAME = (*n.SERVICE, "primitive_name")


def _nodes() -> str:
    """1 for each (workflow, primitive_name) node of a workflow map."""
    edge = c.WORKFLOW_EDGE_INFO
    child = label(edge, "child")
    return agg(
        _NODE, f'label_replace({edge.name}, "primitive_name", "$1", "{child}", "(.*)")', "max"
    )


def _per_node(by_name: str) -> str:
    """``by_name`` (one series per service and primitive_name) for every node of every map."""
    return f"{_nodes()} * on ({join(_BY_NAME)}) group_left {by_name}"


def map_rules() -> list[Recording]:
    edge = c.WORKFLOW_EDGE_INFO
    edge_labels = (*n.SERVICE, *(label(edge, x) for x in ("workflow", "parent", "child")))
    self_sum = f"{c.PRIMITIVE_SELF_DURATION.name}_sum"
    duration_sum = f"{c.PRIMITIVE_DURATION.name}_sum"
    return [
        Recording(n.WORKFLOW_EDGE_INFO_MAX, agg(edge_labels, edge.name, "max")),
        Recording(
            n.WORKFLOW_NODE_CALLS_RATE5M,
            _per_node(agg(_BY_NAME, n.PRIMITIVE_EXECUTIONS_RATE5M)),
        ),
        Recording(
            n.WORKFLOW_NODE_ERROR_RATIO_RATE5M,
            _per_node(agg(_BY_NAME, n.PRIMITIVE_ERROR_RATIO_RATE5M, "max")),
        ),
        Recording(
            n.WORKFLOW_NODE_DURATION_P95_5M,
            _per_node(agg(_BY_NAME, n.PRIMITIVE_DURATION_P95_5M, "max")),
        ),
        # Primitives that had children record self time; a leaf's self time is its duration.
        Recording(
            n.PRIMITIVE_SELF_SECONDS_RATE5M,
            f"{agg(n.PRIMITIVE, rate(self_sum, '5m'))}"
            f" or {agg(n.PRIMITIVE, rate(duration_sum, '5m'))}",
        ),
        Recording(
            n.WORKFLOW_NODE_SELF_SECONDS_RATE5M,
            _per_node(agg(_BY_NAME, n.PRIMITIVE_SELF_SECONDS_RATE5M)),
        ),
    ]


def _p99(metric: c.Metric, window: str, offset: str = "") -> str:
    shift = f" offset {offset}" if offset else ""
    bucket = f"rate({metric.name}_bucket[{window}]{shift})"
    return f"histogram_quantile(0.99, {agg(('le', *n.WORKFLOW), bucket)})"


def run_rules() -> list[Recording]:
    calls, cost = c.WORKFLOW_RUN_LLM_CALLS, c.WORKFLOW_RUN_COST
    label(calls, "workflow")
    label(cost, "workflow")
    return [
        Recording(n.WORKFLOW_RUN_LLM_CALLS_P99_30M, _p99(calls, "30m")),
        Recording(n.WORKFLOW_RUN_LLM_CALLS_P99_1D, _p99(calls, "1d", RUNAWAY_BASELINE_OFFSET)),
        Recording(n.WORKFLOW_RUN_COST_USD_P99_30M, _p99(cost, "30m")),
        Recording(n.WORKFLOW_RUN_COST_USD_P99_1D, _p99(cost, "1d", RUNAWAY_BASELINE_OFFSET)),
    ]


def _jump(now: str, baseline: str, minimum: float, factor: float, measure: str) -> str:
    return (
        f"label_replace({now} > {factor:g} * {baseline} and {now} >= {minimum:g}, "
        f'"measure", "{measure}", "", "")'
    )


def runaway_expr(config: MixinConfig) -> str:
    f = config.runaway_factor
    return (
        _jump(
            n.WORKFLOW_RUN_LLM_CALLS_P99_30M,
            n.WORKFLOW_RUN_LLM_CALLS_P99_1D,
            config.runaway_min_llm_calls,
            f,
            "llm_calls",
        )
        + " or "
        + _jump(
            n.WORKFLOW_RUN_COST_USD_P99_30M,
            n.WORKFLOW_RUN_COST_USD_P99_1D,
            config.runaway_min_cost_usd,
            f,
            "cost_usd",
        )
    )


def runaway_alerts(config: MixinConfig) -> list[Alert]:
    wf = "{{ $labels.workflow }}"
    svc = "{{ $labels.service_name }} ({{ $labels.environment }})"
    return [
        Alert(
            RUNAWAY_ALERT,
            runaway_expr(config),
            "warning",
            f"Runs of workflow {wf} of {svc} are running away",
            f"The p99 of {{{{ $labels.measure }}}} per run of {wf} is "
            f'{{{{ $value | printf "%.4g" }}}} over the last 30 minutes, more than '
            f"{config.runaway_factor:g} times its p99 over the day before: some runs loop.",
            for_="10m",
        )
    ]
