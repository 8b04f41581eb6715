"""OpenTelemetry traces and Prometheus SLI metrics for TTA.dev workflow primitives.

>>> import tta_observability
>>> handle = tta_observability.setup("my-agent", metrics_port=None)  # doctest: +SKIP
>>> @tta_observability.observed
... def plan(goal):
...     return goal
"""

from .__about__ import __version__
from .budget import RunBudget, RunBudgetExceeded
from .config import ConfigError
from .context import extract, inject
from .lifecycle import Handle, metrics_asgi_app, metrics_wsgi_app, setup
from .llm import record_llm_usage
from .observed import observe, observed
from .primitives import instrument, instrument_primitives, uninstrument, uninstrument_primitives
from .slo import SLO

__all__ = [
    "SLO",
    "ConfigError",
    "Handle",
    "RunBudget",
    "RunBudgetExceeded",
    "__version__",
    "extract",
    "inject",
    "instrument",
    "instrument_primitives",
    "metrics_asgi_app",
    "metrics_wsgi_app",
    "observe",
    "observed",
    "record_llm_usage",
    "setup",
    "uninstrument",
    "uninstrument_primitives",
]
