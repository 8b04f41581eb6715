"""The endpoint's pre-rendered exposition is what prometheus-client renders from the same store."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
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
from tta_observability.metrics.http import scrape, wsgi_app

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def _registry() -> CollectorRegistry:
    """A store with calls (exemplars), errors, a label needing escapes, and a foreign counter."""
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
