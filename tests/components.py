"""The programs the tests run: the pinned builds of scripts/build-components.sh and what PATH has.

``versions_of(program)`` lists each distinct program found (the built one in
``$TTA_COMPONENTS_DIR/bin`` and the one on PATH, e.g. Debian's Prometheus 2.42), for tests that
must pass on both. ``built(program)`` is the pinned build or a skip naming the build script.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tta_observability._components import PROGRAMS, components_dir, program_version

REPO = Path(__file__).resolve().parents[1]
VERSIONS_FILE = REPO / "tools" / "components" / "versions.env"


def pinned_versions() -> dict[str, str]:
    """``tools/components/versions.env`` as a dict."""
    out = {}
    for line in VERSIONS_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def built(program: str) -> str:
    """The built program, or skip: the build script puts it in the components directory."""
    for name in PROGRAMS[program]:
        path = components_dir() / "bin" / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    pytest.skip(
        f"{program} not built in {components_dir() / 'bin'}: run scripts/build-components.sh "
        "(scripts/test.sh does)"
    )


def versions_of(program: str) -> list[pytest.ParameterSet]:
    """One parameter per distinct ``program`` available (built and on PATH), id'd by version."""
    found: dict[str, str] = {}
    for name in PROGRAMS[program]:
        for path in (components_dir() / "bin" / name, shutil.which(name)):
            if path is not None and Path(path).is_file() and os.access(path, os.X_OK):
                real = str(Path(path).resolve())
                found.setdefault(real, str(path))
    params = []
    for path in found.values():
        version = program_version(path)
        label = ".".join(map(str, version)) if version else Path(path).name
        params.append(pytest.param(path, id=f"{program}-{label}"))
    if not params:
        params.append(
            pytest.param(
                program,
                id=f"{program}-missing",
                marks=pytest.mark.skip(reason=f"{program} is neither built nor on PATH"),
            )
        )
    return params
