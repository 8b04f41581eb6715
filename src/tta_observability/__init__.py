"""OpenTelemetry traces and Prometheus SLI metrics for TTA.dev workflow primitives.

>>> import tta_observability
>>> handle = tta_observability.setup("my-agent", metrics_port=None)  # doctest: +SKIP
>>> @tta_observability.observed
... def plan(goal):
...     return goal
"""

from .__about__ import __version__
from .config import ConfigError
from .lifecycle import Handle, metrics_asgi_app, metrics_wsgi_app, setup
from .observed import observe, observed
from .slo import SLO

__all__ = [
    "SLO",
    "ConfigError",
    "Handle",
    "__version__",
    "metrics_asgi_app",
    "metrics_wsgi_app",
    "observe",
    "observed",
    "setup",
]
