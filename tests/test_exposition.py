"""The endpoint's pre-rendered exposition is what prometheus-client renders from the same store."""

from __future__ import annotations

import gc
import gzip
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import generate_latest as text_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tta_observability import _state
from tta_observability import contract as c
from tta_observability._call import Instrument
from tta_observability.metrics import MetricStore
from tta_observability.metrics.exposition import Renderer
from tta_observability.metrics.guards import SERIES_LABEL, SERIES_PER_LABEL_VALUE
from tta_observability.metrics.http import scrape, wsgi_app
from tta_observability.metrics.values import (
    Merged,
    Multiprocess,
    _add,
    _dump,
    _samples,
    process_start,
)
from tta_observability.testing import capture

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def _registry() -> CollectorRegistry:
    """A store with calls (exemplars), a workflow, errors, a label needing escapes, and a foreign
    counter."""
    store = MetricStore()
    store.service_name = 'svc "quoted"\\path'
    registry = CollectorRegistry()
    registry.register(store)
    other = Counter("app_requests", "The app's own counter.", registry=registry)
    other.inc(2)
    saved = _state.STATE.tracer
    _state.STATE.tracer = TracerProvider().get_tracer("test")
    try:
        for name in ("a", "b\nline"):
            for _ in range(3):
                inst = Instrument(name, store=store)
                inst.finish(inst.start(), None)
        _run(store, "wf", "step")  # a workflow: its series are rendered as text too
        store.primitive("function", "a").record_error("ValueError")
        store.counter(c.LABEL_OVERFLOW).inc(("m", "l"), 5)
    finally:
        _state.STATE.tracer = saved
    return registry


@pytest.mark.parametrize(
    ("accept", "reference"), [(OPENMETRICS, openmetrics_latest), (None, text_latest)]
)
def test_scrape_is_byte_identical_to_prometheus_client(
    accept: str | None, reference: Callable[[CollectorRegistry], bytes]
) -> None:
    registry = _registry()
    for _ in range(2):  # the second scrape uses the cached prefixes
        body, _ = scrape(registry, accept)
        assert body == reference(registry)
    if accept == OPENMETRICS:
        assert body.count(b"# EOF") == 1 and body.endswith(b"# EOF\n")
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        success = [
            s
            for s in families["tta_primitive_executions"].samples
            if s.labels["primitive_name"] == "a" and s.labels["status"] == "success"
        ]
        assert [s.value for s in success] == [3.0]
        assert success[0].exemplar is not None and success[0].exemplar.value == 1.0
        assert families["app_requests"].samples[0].value == 2.0


def _get(app: Any, query: str = "", **headers: str) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, hdrs: Iterable[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(hdrs)

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": query}
    environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def test_wsgi_app_gzip_and_name_filter() -> None:
    registry = _registry()
    app = wsgi_app(registry)
    status, headers, body = _get(app, accept=OPENMETRICS, accept_encoding="gzip")
    assert status == "200 OK" and headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert gzip.decompress(body) == openmetrics_latest(registry)
    _, _, filtered = _get(app, "name[]=tta_primitive_in_flight")
    names = {line.split("{")[0] for line in filtered.decode().splitlines() if line[:1] != "#"}
    assert names == {"tta_primitive_in_flight"}


def _run(store: MetricStore, root: str, kid: str | None = None) -> None:
    """One run of ``root``, calling ``kid`` inside it when given."""
    outer = Instrument(root, store=store)
    call = outer.start()
    if kid is not None:
        inner = Instrument(kid, store=store)
        inner.finish(inner.start(), None)
    outer.finish(call, None)


def _runs(families: Iterable[Any]) -> dict[str, float]:
    name = c.WORKFLOW_EXECUTIONS.name
    return {
        dict(s[1])["workflow"]: s[2]
        for fam in families
        for s in fam.samples
        if s[0] == name and dict(s[1])["status"] == c.STATUS_SUCCESS
    }


def test_workflow_series_only_for_roots_that_call_something() -> None:
    store = MetricStore()
    _run(store, "plain")
    _run(store, "plain")
    _run(store, "agent")  # a run of one call: not yet a workflow
    assert _runs(store.families()) == {}
    plain = sum(len(f.samples) for f in store.families() if f.samples) // 2
    assert plain == 24  # each of the two functions: its primitive series only
    _run(store, "agent", kid="step")
    _run(store, "agent")
    # Every run of agent counts, those before and after the one that made it a workflow.
    assert _runs(store.families()) == {"agent": 3.0}


def _another_process(directory: Path) -> None:
    """The file of a live process (this one's parent) that ran agent as a workflow, and plain."""
    other = MetricStore()
    _run(other, "agent", kid="step")
    _run(other, "plain")
    parent = os.getppid()
    (directory / f"{parent}-{process_start(parent)}.proc").write_bytes(_dump(other.raw()))


def test_multiprocess_workflow_shaped_in_another_process_counts_every_process(
    tmp_path: Path,
) -> None:
    _another_process(tmp_path)
    store = MetricStore()
    _run(store, "agent")  # never shaped here
    _run(store, "agent")
    _run(store, "plain")
    store.multiprocess = Multiprocess(str(tmp_path), store.raw)
    assert _runs(store.families()) == {"agent": 3.0}


def test_capture_counts_only_runs_made_in_the_block_of_a_root_that_becomes_a_workflow() -> None:
    store = MetricStore()
    _run(store, "agent")  # before the block, not yet a workflow
    with capture(store=store) as cap:
        _run(store, "agent", kid="step")
        assert cap.value(c.WORKFLOW_EXECUTIONS.name, workflow="agent") == 1


def test_series_budget_bounds_label_combinations_and_counts_every_folded_call() -> None:
    store = MetricStore(max_label_values=2)  # each label 2 values, each metric 20 series
    limit = 2 * SERIES_PER_LABEL_VALUE
    for ptype in ("a", "b", "c", "d", "e"):
        for name in ("p", "q"):
            series = store.primitive(ptype, name)
            for error_type in ("E1", "E2"):
                for origin in (c.ORIGIN_RAISED, c.ORIGIN_PROPAGATED):
                    series.record_error(error_type, origin, workflow="w")
                    series.record_error(error_type, origin, workflow="w")
    errors = [s for f in store.families() for s in f.samples if s[0] == c.PRIMITIVE_ERRORS.name]
    folded = [s for s in errors if dict(s[1])["error_type"] == c.OVERFLOW_VALUE]
    # 5 x 2 x 4 = 40 combinations, 2 calls each: 20 kept, the 20 others' 40 calls folded.
    assert len(errors) - len(folded) == limit
    assert sum(s[2] for s in folded) == 40
    overflow = store.counter(c.LABEL_OVERFLOW).get((c.PRIMITIVE_ERRORS.name, SERIES_LABEL))
    assert overflow == 40
    tokens = store.counter(c.LLM_TOKENS)
    for i in range(limit + 5):
        tokens.inc(("w", "prov", "m", f"kind{i}"))  # token_type is not bounded per label
    assert len(tokens.values) == limit + 1  # the kept ones and the one all-__overflow__ series
    assert tokens.values[(c.OVERFLOW_VALUE,) * 4] == 5


def test_a_scrape_keeps_no_per_sample_objects_alive() -> None:
    """The garbage collector never runs for a scrape of one process's store.

    Sample tuples kept alive until the body is joined (about 24 per primitive) made a scrape of
    1,000 primitives run some 30 collections, in a busy app partly in the app's own threads.
    """
    store = MetricStore(max_label_values=1100)
    saved = _state.STATE.tracer
    _state.STATE.tracer = TracerProvider().get_tracer("test")
    try:
        for i in range(1000):
            _run(store, f"p{i}")  # every series with its exemplars
    finally:
        _state.STATE.tracer = saved
    body = store.render(openmetrics=True)  # prefixes made and cached by the first scrape
    me = threading.get_ident()
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and threading.get_ident() == me:
            collections.append(info["generation"])

    threshold = gc.get_threshold()
    gc.collect()
    gc.set_threshold(2000, *threshold[1:])  # 24,000 samples: 12 collections if each lived
    gc.callbacks.append(count)
    try:
        again = store.render(openmetrics=True)
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*threshold)
    assert again.count("\n") == body.count("\n") >= 24 * 1000
    assert collections == []


def test_multiprocess_merge_sums_counters_keeps_the_latest_exemplar_and_live_gauges() -> None:
    lab = (("k", "v"),)
    in_flight = c.PRIMITIVE_IN_FLIGHT.name
    merged: Merged = {}
    _add(
        merged,
        [
            ("c", "counter", [("c_total", lab, 2.0, None)]),
            ("g", "gauge", [("g", lab, 1.0, None)]),
            (in_flight, "gauge", [(in_flight, lab, 1.0, None)]),
        ],
        live=True,
    )
    _add(
        merged,
        [
            ("c", "counter", [("c_total", lab, 3.0, (1, 2, 1.0, 10.0))]),
            ("g", "gauge", [("g", lab, 5.0, None)]),
            (in_flight, "gauge", [(in_flight, lab, 2.0, None)]),
        ],
        live=True,
    )
    _add(  # an exited process: its counter counts, its gauges do not; its exemplar is older
        merged,
        [
            ("c", "counter", [("c_total", lab, 4.0, (3, 4, 1.0, 5.0))]),
            ("g", "gauge", [("g", lab, 9.0, None)]),
            (in_flight, "gauge", [(in_flight, lab, 7.0, None)]),
        ],
        live=False,
    )
    assert _samples(merged["c"]) == [("c_total", lab, 9.0, (1, 2, 1.0, 10.0))]
    assert _samples(merged["g"]) == [("g", lab, 5.0, None)]  # the largest of the live ones
    assert _samples(merged[in_flight]) == [(in_flight, lab, 3.0, None)]  # summed over live


def test_multiprocess_render_is_the_merged_families_rendered(tmp_path: Path) -> None:
    """The endpoint renders the merge's cells as they are: the same text as their samples."""
    saved = _state.STATE.tracer
    _state.STATE.tracer = TracerProvider().get_tracer("test")  # sampled: exemplars everywhere
    try:
        _another_process(tmp_path)
        store = MetricStore()
        _run(store, "agent")  # a workflow here because it is one in the other process
        _run(store, "plain")
        _run(store, "solo")  # a workflow nowhere
    finally:
        _state.STATE.tracer = saved
    store.multiprocess = Multiprocess(str(tmp_path), store.raw)
    for openmetrics in (True, False):
        body = store.render(openmetrics)
        assert body == Renderer().render(store.families(), openmetrics)
    assert 'tta_primitive_executions_total{environment="dev",primitive_name="plain"' in body
    success = 'status="success",workflow="agent"} 2.0'  # one run here, one there
    assert success in body and 'workflow="solo"' not in body
    assert " # {span_id=" in store.render(openmetrics=True)
