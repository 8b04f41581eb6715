"""The monitoring mixin: the shipped rules and dashboards as code, built from one configuration.

Laid out like the kubernetes-mixin: :mod:`.config` (what users tune), :mod:`.promql` (query
helpers shared by rules and dashboards), :mod:`.rules` (one module per area), :mod:`.grafana`
(the dashboard builder) and :mod:`.dashboards` (one module per dashboard). ``python -m
tta_observability.mixin`` (:mod:`.generate`) writes every generated file; everything is checked
against the metric contract.
"""

from __future__ import annotations

from pathlib import Path


def checkout_root(module_file: str | Path) -> Path | None:
    """Root of the source checkout a ``mixin/`` module runs from, or None when installed.

    Installed from a wheel, a mixin module's grandparent is ``site-packages`` and three levels up
    is ``lib/python3.X``: writing there would scatter files into the virtual environment.
    """
    module = Path(module_file).resolve()
    src, root = module.parents[2], module.parents[3]
    if src.name == "src" and (root / "pyproject.toml").is_file():
        return root
    return None
