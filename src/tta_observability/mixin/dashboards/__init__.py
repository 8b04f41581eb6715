"""The Grafana dashboard suite as code: the one source of ``dashboards/*.json``.

One module per dashboard; :mod:`._common` holds the suite's conventions and
:mod:`tta_observability.mixin.grafana` the generic builder. ``python -m tta_observability.mixin``
regenerates the JSON.
"""

from __future__ import annotations

import json

from ..config import DEFAULT, MixinConfig
from ..grafana import DS, JSON
from ._common import SERVICE, SERVICE_CALL_RATE, SLO_KEY, TAG, Dashboard, render
from .alerts import alerts
from .capacity_planning import capacity_planning
from .developer import developer
from .executive import executive
from .platform_health import platform_health
from .sre import sre

__all__ = [
    "DASHBOARDS",
    "DS",
    "SERVICE",
    "SERVICE_CALL_RATE",
    "SLO_KEY",
    "TAG",
    "Dashboard",
    "build",
    "dumps",
    "render",
]

DASHBOARDS = (executive, platform_health, developer, sre, capacity_planning, alerts)


def build(config: MixinConfig = DEFAULT) -> dict[str, JSON]:
    """File name -> dashboard model, for every dashboard of the suite, as ``config`` sets it."""
    return {d.filename: render(d) for d in (make(config) for make in DASHBOARDS)}


def dumps(model: JSON) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"
