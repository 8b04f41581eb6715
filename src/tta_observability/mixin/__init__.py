"""Generators for the shipped rules and dashboards.

One source of truth, checked against the metric contract.
"""

from __future__ import annotations

from pathlib import Path


def checkout_dir(folder: str, module_file: str | Path) -> Path | None:
    """``folder`` of the source checkout ``module_file`` runs from, or None when installed.

    Installed from a wheel, a mixin module's grandparent is ``site-packages`` and three levels up
    is ``lib/python3.X``: writing there would scatter files into the virtual environment.
    """
    module = Path(module_file).resolve()
    src, root = module.parents[2], module.parents[3]
    if src.name == "src" and (root / "pyproject.toml").is_file():
        return root / folder
    return None
