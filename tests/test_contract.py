"""The contract module is the one source of metric names: the docs and the emitted series agree."""

from __future__ import annotations

import re
from pathlib import Path

import tta_observability as tto
from tta_observability import contract as c
from tta_observability._call import Instrument
from tta_observability.metrics import MetricStore

ROOT = Path(__file__).resolve().parents[1]
METRIC_NAME = re.compile(
    r"\btta_(?:primitive|slo|workflow|retry|fallback|timeouts|circuit|cache|router|llm|ci_step|"
    r"deployment|build|observability_(?:label|spans))[a-z0-9_]*"
)


def test_docs_table_matches_contract() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text()
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\| `(tta_\w+)` \| (\w+) \| ([^|]*) \|", line)
        if m:
            labels = tuple(re.findall(r"`(\w+)`", m.group(3).split("(common:")[0]))
            rows[m.group(1)] = (m.group(2), labels)
    expected = {m.name: (m.type, m.labels) for m in c.METRICS}
    assert rows == expected


def test_every_metric_name_in_docs_is_in_the_contract() -> None:
    known = c.known_series() | set(c.METRICS_BY_NAME)
    unknown = {}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for name in set(METRIC_NAME.findall(path.read_text())):
            if name not in known:
                unknown.setdefault(str(path.relative_to(ROOT)), []).append(name)
    assert unknown == {}


def test_emitted_series_are_exactly_the_contracts() -> None:
    store = MetricStore()
    inst = Instrument(
        "contract_fn", slo=tto.SLO("contract", 0.99, latency_threshold=1.0), store=store
    )
    call = inst.start()
    inst.finish(call, None)
    call = inst.start()
    inst.finish(call, ValueError("x"))
    store.build_info = ("1", "abc", tto.__version__)
    inst.series.record_self(0.01, 0, 0)
    store.workflow("contract_wf").record_run(3, 1, 120, 0.002, 0, 0)
    store.edge("contract_wf", "", "contract_wf")
    for metric in c.METRICS:
        if metric.group in ("recovery", "llm", "export", "budget") and metric.type == "counter":
            store.counter(metric).inc(tuple("v" for _ in metric.labels))
    emitted: dict[str, set[str]] = {}
    bounds: dict[str, set[float]] = {}
    for fam in store.collect():
        for s in fam.samples:
            emitted.setdefault(s.name, set()).update(s.labels)
            if "le" in s.labels:
                bounds.setdefault(s.name.removesuffix("_bucket"), set()).add(float(s.labels["le"]))
    for name, les in bounds.items():
        assert les == {*(c.METRICS_BY_NAME[name].buckets or ()), float("inf")}, name
    known = c.known_series()
    assert set(emitted) <= known
    for name, labels in emitted.items():
        metric = next(m for m in c.METRICS if name in m.series_names)
        extra = {"le"} if name.endswith("_bucket") else set()
        assert labels == set(metric.all_labels) | extra, name
    # Everything @observed is responsible for is emitted.
    groups = ("core", "slo", "workflow", "shape", "budget")
    core = {s for m in c.METRICS if m.group in groups for s in m.series_names}
    assert core - {c.LABEL_OVERFLOW.name} <= set(emitted)


def test_buckets_span_one_millisecond_to_two_minutes() -> None:
    b = c.DURATION_BUCKETS_SECONDS
    assert b[0] == 0.001 and b[-1] == 120.0 and list(b) == sorted(set(b))


def test_run_buckets_fit_agent_runs() -> None:
    calls, tokens, cost = c.RUN_CALLS_BUCKETS, c.RUN_TOKENS_BUCKETS, c.RUN_COST_BUCKETS_USD
    assert calls[0] == 1 and calls[-1] == 1000 and list(calls) == sorted(set(calls))
    assert cost[0] == 0.0001 and cost[-1] == 100 and list(cost) == sorted(set(cost))
    assert list(tokens) == sorted(set(tokens))
    for m in (c.WORKFLOW_RUN_PRIMITIVE_CALLS, c.WORKFLOW_RUN_LLM_CALLS):
        assert m.buckets == calls
    assert c.WORKFLOW_RUN_COST.buckets == cost and c.WORKFLOW_RUN_LLM_TOKENS.buckets == tokens


def test_metric_names_follow_prometheus_conventions() -> None:
    for m in c.METRICS:
        assert re.fullmatch(r"tta_[a-z0-9_]+", m.name)
        if m.type == "counter":
            assert m.name.endswith("_total"), m.name
        else:
            assert not m.name.endswith("_total"), m.name
        assert "le" not in m.labels and len(set(m.all_labels)) == len(m.all_labels)
