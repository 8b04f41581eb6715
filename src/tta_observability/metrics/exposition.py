"""From the store's raw samples to prometheus-client families, which render the text formats.

The store describes what it holds as :class:`RawFamily` objects: plain tuples of sample name,
label pairs, value and the raw exemplar (integer ids), cheap to build, to write to a
multiprocess file (:mod:`.values`) and to merge across processes. Label sets, hex ids and
``Exemplar`` objects are made here, only for the samples a scrape returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar

from .. import contract as c

# (trace_id, span_id, observed value, unix time); ids stay integers until a scrape.
RawExemplar = tuple[int, int, float, float]
Labels = tuple[tuple[str, str], ...]
#: (sample name, labels, value, exemplar)
RawSample = tuple[str, Labels, float, RawExemplar | None]


class RawFamily:
    """One metric family's samples, with the ``add_sample`` of prometheus-client's ``Metric``."""

    __slots__ = ("documentation", "name", "samples", "type")

    def __init__(self, name: str, documentation: str, typ: str) -> None:
        self.name = name
        self.documentation = documentation
        self.type = typ
        self.samples: list[RawSample] = []

    def add_sample(
        self,
        name: str,
        labels: dict[str, str],
        value: float,
        exemplar: RawExemplar | None = None,
    ) -> None:
        self.samples.append((name, tuple(labels.items()), value, exemplar))


def new_family(metric: c.Metric) -> RawFamily:
    # prometheus-client names a counter family without its _total suffix.
    name = metric.name.removesuffix("_total") if metric.type == "counter" else metric.name
    return RawFamily(name, metric.help, metric.type)


def describe(metrics: Iterable[c.Metric]) -> list[Metric]:
    out = []
    for metric in metrics:
        raw = new_family(metric)
        out.append(Metric(raw.name, raw.documentation, raw.type))
    return out


def _exemplar(raw: RawExemplar) -> Exemplar:
    trace_id, span_id, value, ts = raw
    return Exemplar(
        {"trace_id": format(trace_id, "032x"), "span_id": format(span_id, "016x")}, value, ts
    )


def to_metrics(families: Iterable[RawFamily]) -> Iterator[Metric]:
    """prometheus-client families for the exposition (OpenMetrics with exemplars, or text)."""
    for raw in families:
        fam = Metric(raw.name, raw.documentation, raw.type)
        for name, labels, value, ex in raw.samples:
            fam.add_sample(name, dict(labels), value, exemplar=_exemplar(ex) if ex else None)
        yield fam
