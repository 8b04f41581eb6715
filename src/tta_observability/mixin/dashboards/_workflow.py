"""The Developer dashboard's workflow section: the workflow map, where the time goes, and the
shape of runs (LLM calls and cost per run, runs stopped by a budget)."""

from __future__ import annotations

from typing import Final

from ... import contract as c
from ..grafana import JSON, Panel, Row, bar_gauge, node_graph, query_variable, target, timeseries
from ..promql import agg, increase, rate
from ..rules import names as n
from ._common import RATE, SCOPE, quantile, rec, sel

WF: Final = 'workflow=~"$workflow"'
_NODE = (*n.WORKFLOW, "primitive_name")

WORKFLOW_VARIABLE: JSON = {
    **query_variable(
        "workflow",
        "Workflow",
        f"label_values({c.WORKFLOW_EDGE_INFO.name}{{{SCOPE}}}, workflow)",
        "Workflow the map and the per-run panels show (the workflow label: the name of a "
        "run's outermost call).",
        multi=False,
    ),
    # One workflow at a time: the map of several would overlap.
    "includeAll": False,
    "current": {"selected": False, "text": "", "value": ""},
}


def _node(name: str, op: str) -> str:
    return agg("primitive_name", rec(name, _NODE, WF), op)


def workflow_map() -> Panel:
    calls = _node(n.WORKFLOW_NODE_CALLS_RATE5M, "sum")
    edge_labels = (*n.WORKFLOW, "parent", "child")
    # The root's edge (parent "") has no source node.
    edges = agg(
        "parent, child", rec(n.WORKFLOW_EDGE_INFO_MAX, edge_labels, WF, 'parent!=""'), "max"
    )
    return node_graph(
        "Workflow map",
        "The selected workflow as a graph: one node per primitive, one arrow per parent -> child "
        "call. Each node shows its calls per second (large) and p95 latency (small); the red "
        "part of its ring is its error ratio. Figures are the primitive's own over the last "
        "5 minutes.",
        [
            target(f'label_replace({calls}, "title", "$1", "primitive_name", "(.*)")', "calls"),
            target(_node(n.WORKFLOW_NODE_ERROR_RATIO_RATE5M, "max"), "errors"),
            target(_node(n.WORKFLOW_NODE_DURATION_P95_5M, "max"), "p95"),
        ],
        target(f'label_join({edges}, "id", " -> ", "parent", "child")', "edges"),
        join_on="primitive_name",
        rename={
            "primitive_name": "id",
            "Value #A": "mainstat",
            "Value #B": "arc__errors",
            "Value #C": "secondarystat",
            "parent": "source",
            "child": "target",
            "Value #D": "detail__edge",
        },
        options={
            "nodes": {
                "mainStatUnit": "ops",
                "secondaryStatUnit": "s",
                "arcs": [{"field": "arc__errors", "color": "red"}],
            },
            "edges": {},
        },
    )


def where_the_time_goes() -> Panel:
    own = agg("primitive_name", rec(n.WORKFLOW_NODE_SELF_SECONDS_RATE5M, _NODE, WF))
    total = agg("", rec(n.WORKFLOW_NODE_SELF_SECONDS_RATE5M, _NODE, WF))
    return bar_gauge(
        "Where the time goes",
        "Share of the selected workflow's time spent in each primitive itself, not in its "
        "children (self time; overlapping parallel children count once), over the last 5 "
        "minutes, largest first.",
        "percentunit",
        target(f"sort_desc(\n{own}\n/ scalar({total})\n)", "{{primitive_name}}"),
    )


def _per_run(q: float, metric: c.Metric) -> str:
    """The q-quantile of a per-run histogram of the selected workflow, over the panel's step."""
    buckets = rate(sel(metric, WF, suffix="_bucket"), RATE)
    return f"histogram_quantile({q}, {agg('le, workflow', buckets)})"


def self_time() -> Panel:
    return timeseries(
        "Self time percentiles",
        "p50 and p95 of the time calls of each primitive spent in their own code, outside "
        "their observed children, for primitives that have children; exemplar dots link to "
        "the trace of such a call.",
        "s",
        *(
            target(
                quantile(q, c.PRIMITIVE_SELF_DURATION, "primitive_name"),
                f"{{{{primitive_name}}}} p{round(q * 100)}",
                exemplar=True,
            )
            for q in (0.5, 0.95)
        ),
    )


def run_panels() -> list[Panel]:
    per_wf = n.WORKFLOW
    return [
        timeseries(
            "LLM calls per run",
            "p99 of LLM calls per run of the selected workflow over 30 minutes, against its "
            "p99 over the day before (TTAWorkflowRunaway fires at 3 times that), and the "
            "medians of LLM calls and of observed calls per run.",
            "short",
            target(rec(n.WORKFLOW_RUN_LLM_CALLS_P99_30M, per_wf, WF), "{{workflow}} p99"),
            target(
                rec(n.WORKFLOW_RUN_LLM_CALLS_P99_1D, per_wf, WF),
                "{{workflow}} p99, day before",
            ),
            target(_per_run(0.5, c.WORKFLOW_RUN_LLM_CALLS), "{{workflow}} median"),
            target(
                _per_run(0.5, c.WORKFLOW_RUN_PRIMITIVE_CALLS), "{{workflow}} median observed calls"
            ),
        ),
        timeseries(
            "Cost per run",
            "p99 of the LLM spend of one run of the selected workflow over 30 minutes, against "
            "its p99 over the day before, and the median.",
            "currencyUSD",
            target(rec(n.WORKFLOW_RUN_COST_USD_P99_30M, per_wf, WF), "{{workflow}} p99"),
            target(rec(n.WORKFLOW_RUN_COST_USD_P99_1D, per_wf, WF), "{{workflow}} p99, day before"),
            target(_per_run(0.5, c.WORKFLOW_RUN_COST), "{{workflow}} median"),
        ),
        timeseries(
            "Tokens per run",
            "Median and p99 of the LLM tokens (input and output) one run of the selected "
            "workflow used.",
            "short",
            target(_per_run(0.5, c.WORKFLOW_RUN_LLM_TOKENS), "{{workflow}} median"),
            target(_per_run(0.99, c.WORKFLOW_RUN_LLM_TOKENS), "{{workflow}} p99"),
        ),
        timeseries(
            "Runs stopped by budget",
            "Runs a RunBudget stopped in each interval, by the limit they hit (llm_calls, "
            "tokens or cost_usd).",
            "short",
            target(
                agg(
                    "workflow, limit",
                    increase(sel(c.RUN_BUDGET_EXCEEDED, WF), "$__rate_interval"),
                ),
                "{{workflow}} {{limit}}",
            ),
            bars=True,
        ),
    ]


def workflow_section() -> list[Panel | Row]:
    return [
        Row("Workflow"),
        workflow_map(),
        where_the_time_goes(),
        self_time(),
        *run_panels(),
    ]
