"""The metric store: value storage (:mod:`.values`), series (:mod:`.store`), exposition.

``STORE`` is the process-wide store: ``@observed`` records there whether or not ``setup()`` has
run, and ``setup()`` registers it with a registry. In multiprocess mode (``setup(
multiprocess_dir=...)``) every process also writes its values to its own file, and a scrape of
any process serves the sum of all of them.
"""

from __future__ import annotations

from .store import (
    STATUS_INDEX,
    STORE,
    Histogram,
    LabeledCounter,
    LabelGuard,
    MetricStore,
    OutcomeSeries,
    PrimitiveSeries,
    RunHistograms,
    SLOSeries,
    WorkflowSeries,
    snapshot,
)

__all__ = [
    "STATUS_INDEX",
    "STORE",
    "Histogram",
    "LabelGuard",
    "LabeledCounter",
    "MetricStore",
    "OutcomeSeries",
    "PrimitiveSeries",
    "RunHistograms",
    "SLOSeries",
    "WorkflowSeries",
    "snapshot",
]
