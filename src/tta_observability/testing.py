"""Assert in your own tests what your workflow emits.

``capture()`` is a context manager; under pytest the ``tta_capture`` fixture gives the same.
Inside it, the library's spans go to an in-memory exporter (every call sampled unless you pass a
sampler) and metric values are read as increases since the capture began::

    from tta_observability.testing import capture

    def test_plan_is_observed():
        with capture() as cap:
            plan("goal")
        assert cap.value("tta_primitive_executions_total", primitive_name="plan",
                         status="success") == 1
        assert [s.name for s in cap.spans] == ["plan"]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler

from . import __about__, contract
from ._state import INSTRUMENTATION_NAME, STATE
from .metrics import STORE, MetricStore
from .metrics.exposition import to_metrics

if TYPE_CHECKING:
    from prometheus_client.samples import Exemplar

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def _read(
    store: MetricStore, every_workflow: bool = False
) -> tuple[dict[SampleKey, float], dict[str, str], dict[SampleKey, Exemplar]]:
    values: dict[SampleKey, float] = {}
    types: dict[str, str] = {}
    exemplars: dict[SampleKey, Exemplar] = {}
    for fam in to_metrics(store.families(every_workflow)):
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            values[key] = s.value
            types[s.name] = fam.type
            if s.exemplar is not None:
                exemplars[key] = s.exemplar
    return values, types, exemplars


def _without_service(key: SampleKey) -> SampleKey:
    name, items = key
    return name, tuple(item for item in items if item[0] not in contract.COMMON_LABELS)


def _check_names(sample: str, labels: dict[str, str]) -> None:
    """A misspelt metric or label would otherwise read as 0 and let ``== 0`` pass unchecked."""
    metric = next((m for m in contract.METRICS if sample in m.series_names), None)
    if metric is None:
        known = sorted(s for m in contract.METRICS for s in m.series_names)
        raise KeyError(f"no metric sample named {sample!r}; samples are: {', '.join(known)}")
    allowed = {*metric.all_labels, *(("le",) if sample.endswith("_bucket") else ())}
    unknown = sorted(set(labels) - allowed)
    if unknown:
        raise KeyError(f"{sample} has no label {', '.join(unknown)}; its labels: {sorted(allowed)}")


class Capture:
    """Spans finished and metric increases since the capture began."""

    def __init__(self, exporter: InMemorySpanExporter, store: MetricStore) -> None:
        self._exporter = exporter
        self._store = store
        # With the runs of roots not (yet) exposed as workflows: one that becomes a workflow
        # inside the block shows all its runs, and only those made in the block count.
        before, _, _ = _read(store, every_workflow=True)
        # Keyed without the service's own labels: a setup() inside the block (the demo, an app
        # under test) renames the service, and its series must still count from where they stood.
        self._before = {_without_service(key): value for key, value in before.items()}

    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        return list(self._exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``; an error if there are none or several."""
        found = [s for s in self.spans if s.name == name]
        if len(found) != 1:
            names = sorted({s.name for s in self.spans})
            raise AssertionError(f"expected one span {name!r}, found {len(found)} among {names}")
        return found[0]

    def _matching(self, sample: str, labels: dict[str, str]) -> Iterator[tuple[SampleKey, float]]:
        _check_names(sample, labels)
        now, types, _ = _read(self._store)
        want = {k: str(v) for k, v in labels.items()}
        for key, value in now.items():
            name, items = key
            if name != sample or not want.items() <= dict(items).items():
                continue
            if types.get(name) == "gauge":
                yield key, value
            else:
                yield key, value - self._before.get(_without_service(key), 0.0)

    def value(self, sample: str, **labels: str) -> float:
        """Sum over the series of ``sample`` whose labels include ``labels``.

        Counters and histogram samples give their increase during the capture; gauges give their
        current value.
        """
        return sum(v for _, v in self._matching(sample, labels))

    def series(self, sample: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Each matching series' value (as :meth:`value`), keyed by its sorted labels."""
        return {key[1]: v for key, v in self._matching(sample, labels)}

    def exemplars(self, sample: str, **labels: str) -> list[Exemplar]:
        """Current exemplars of the matching series (only series that have one)."""
        _check_names(sample, labels)
        _, _, exemplars = _read(self._store)
        want = {k: str(v) for k, v in labels.items()}
        return [
            ex
            for (name, items), ex in exemplars.items()
            if name == sample and want.items() <= dict(items).items()
        ]


@contextmanager
def capture(sampler: Sampler = ALWAYS_ON, store: MetricStore = STORE) -> Iterator[Capture]:
    """Capture the library's spans and metric increases inside the ``with`` block.

    The library's spans go to an in-memory exporter for the duration; the application's
    tracer provider is left as it was and is used again afterwards.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = STATE.tracer
    STATE.tracer = provider.get_tracer(INSTRUMENTATION_NAME, __about__.__version__)
    try:
        yield Capture(exporter, store)
    finally:
        STATE.tracer = previous
        provider.shutdown()


try:
    import pytest
except ImportError:  # pragma: no cover - the fixture is only for pytest users
    pass
else:

    @pytest.fixture
    def tta_capture() -> Iterator[Capture]:
        """A :class:`Capture` for the test's duration."""
        with capture() as cap:
            yield cap
