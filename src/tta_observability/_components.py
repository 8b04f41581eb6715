"""Where the stack's programs are: the built components directory first, then ``PATH``.

``scripts/build-components.sh`` builds pinned versions of the OpenTelemetry Collector, Jaeger v2,
Prometheus 3 (with promtool) and Alertmanager (with amtool) into
``$TTA_COMPONENTS_DIR`` (default ``~/.cache/tta-observability/components``) and links each
program into its ``bin/``. The native stack and the tests look there before ``PATH``, so the
pinned builds win over older distribution packages (Debian's Prometheus 2.42, Alertmanager 0.25).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

COMPONENTS_DIR_ENV = "TTA_COMPONENTS_DIR"

#: Each program's names: in the components directory first, then each name on PATH.
PROGRAMS: dict[str, tuple[str, ...]] = {
    "prometheus": ("prometheus",),
    "promtool": ("promtool",),
    "alertmanager": ("alertmanager", "prometheus-alertmanager"),
    "amtool": ("amtool",),
    "pushgateway": ("pushgateway", "prometheus-pushgateway"),
    "victoriametrics": ("victoria-metrics",),
    "jaeger": ("jaeger",),
    # Ours (exactly the shipped config's components), then the upstream contrib distribution.
    "otel-collector": ("otelcol", "otelcol-contrib"),
}


def components_dir() -> Path:
    """``$TTA_COMPONENTS_DIR``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)/tta-observability/…"""
    env = os.environ.get(COMPONENTS_DIR_ENV)
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "tta-observability" / "components"


def find_program(program: str) -> str | None:
    """The absolute path of ``program`` (a key of :data:`PROGRAMS`), or None if absent."""
    names = PROGRAMS[program]
    built = components_dir() / "bin"
    for name in names:
        candidate = built / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


_VERSION = re.compile(r"version\s+v?(\d+)\.(\d+)\.(\d+)")


@lru_cache(maxsize=32)
def program_version(path: str) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` from ``path --version`` (Prometheus-style), None if unknown."""
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out.stdout + out.stderr)
    if match is None:
        return None
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch
